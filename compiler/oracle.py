"""The oracles that define "bit-exact": tflite-micro for TFLite models (its reference
kernels), onnxruntime's CPU execution provider for ONNX models."""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Sequence

import numpy as np

from mcuc.ir.errors import MCUCError

# Generous: the oracle's arena must hold any model we are asked to verify.
_ORACLE_ARENA_BYTES = 16 * 1024 * 1024


def _tflite_micro_runtime():
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as e:  # pragma: no cover - depends on the install
        raise MCUCError("the oracle for TFLite models is the tflite-micro package; "
                        "install the test extras: pip install -e '.[test]'") from e
    return runtime


@contextlib.contextmanager
def _quiet_stderr():
    """tflite-micro's C++ side prints allocation chatter to fd 2; keep the CLI clean."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class TFLiteOracle:
    """tflite-micro's interpreter on one model, reusable over many inputs."""

    def __init__(self, model_bytes: bytes):
        runtime = _tflite_micro_runtime()
        try:
            with _quiet_stderr():
                self._interpreter = runtime.Interpreter.from_bytes(bytes(model_bytes), arena_size=_ORACLE_ARENA_BYTES)
        except (RuntimeError, ValueError) as e:
            raise MCUCError(f"tflite-micro cannot load this model: {e}") from None
        self.num_outputs = self._count(self._interpreter.get_output_details)

    @staticmethod
    def _count(details) -> int:
        n = 0
        with _quiet_stderr():
            while True:
                try:
                    details(n)
                except (RuntimeError, ValueError, IndexError):
                    return n
                n += 1

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        for i, x in enumerate(inputs):
            self._interpreter.set_input(np.ascontiguousarray(x), i)
        with _quiet_stderr():
            self._interpreter.invoke()
        return [np.array(self._interpreter.get_output(i)) for i in range(self.num_outputs)]


def tflm_arena_bytes(model_bytes: bytes) -> int:
    """The arena tflite-micro needs for the model (its RecordingMicroAllocator's total),
    read from the allocation report it prints after an invoke."""
    runtime = _tflite_micro_runtime()
    import re
    import tempfile

    with tempfile.TemporaryFile(mode="w+") as log:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            it = runtime.Interpreter.from_bytes(bytes(model_bytes), arena_size=_ORACLE_ARENA_BYTES)
            it.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        text = log.read()
    m = re.search(r"\[RecordingMicroAllocator\] Arena allocation total (\d+) bytes", text)
    if m is None:
        raise MCUCError("tflite-micro did not report its arena size")
    return int(m.group(1))
