"""The oracles that define "bit-exact": tflite-micro for TFLite models (its reference
kernels), onnxruntime's CPU execution provider for ONNX models.

tflite-micro runs in a worker process of its own (`_Worker`): a malformed model can make
its C++ crash, and that must not take mcuc down. One worker runs at a time, started on
first use; every TFLiteOracle talks to it over a pipe, and it keeps the last few models
loaded. `TFLiteOracle(..., fresh_process=True)` (what `mcuc verify` uses: once per verify)
replaces it by a new one first, so nothing another model did to the worker's memory (out
of bounds writes of a broken model do not always crash) can change this model's answers,
and a crash is this model's. When the worker dies the caller gets an MCUCError saying the
oracle crashed, and the next oracle starts a new worker.

A model with state (variable tensors: SVDF, LSTM) answers each invocation from the ones
before it. Its oracle keeps the inputs of the stream so far, and when the worker has
dropped the model (evicted it, or was replaced) it loads it again and replays them, so the
next answer continues the stream instead of silently starting again from a reset state."""
from __future__ import annotations

import atexit
import itertools
import os
import signal
import subprocess
import sys
import threading
from collections import OrderedDict
from multiprocessing.connection import Connection
from typing import Sequence

import numpy as np
import tflite

from mcuc.ir.errors import MCUCError

# Generous: the oracle's arena must hold any model we are asked to verify.
_ORACLE_ARENA_BYTES = 16 * 1024 * 1024
# How long one load or invoke may take before the worker counts as hung (the largest
# shared model invokes in about a second).
ORACLE_TIMEOUT_SECONDS = 300
# Models the worker keeps loaded (oracles that outlive this many others reload theirs).
_WORKER_MODELS = 8

_INSTALL_ADVICE = ("the oracle for TFLite models is the tflite-micro package; "
                   "install the test extras: pip install -e '.[test]'")


# -- the worker process ----------------------------------------------------------------

def _count_outputs(interpreter) -> int:
    n = 0
    while True:
        try:
            interpreter.get_output_details(n)
        except (RuntimeError, ValueError, IndexError):
            return n
        n += 1


def _arena_bytes(runtime, model_bytes: bytes) -> int:
    """tflite-micro's RecordingMicroAllocator total for the model, read from the
    allocation report it prints to fd 2 (redirected to a file for the read)."""
    import re
    import tempfile

    with tempfile.TemporaryFile(mode="w+") as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            it = runtime.Interpreter.from_bytes(bytes(model_bytes), arena_size=_ORACLE_ARENA_BYTES)
            it.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        m = re.search(r"\[RecordingMicroAllocator\] Arena allocation total (\d+) bytes", log.read())
    if m is None:
        raise RuntimeError("tflite-micro did not report its arena size")
    return int(m.group(1))


def _serve(read_fd: int, write_fd: int) -> None:
    """The worker's loop: requests in, ("ok", value) / ("error", text) / ("unknown", None)
    out. tflite-micro's C++ prints to fds 1 and 2; both go to /dev/null here."""
    requests, replies = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        runtime = None
    loaded: OrderedDict[int, tuple[object, int]] = OrderedDict()
    while True:
        try:
            request = requests.recv()
        except (EOFError, OSError):
            return
        kind = request[0]
        try:
            if runtime is None:
                replies.send(("missing", None))
                continue
            if kind == "load":
                _, key, model_bytes, *preserve = request
                # preserve: keep every tensor readable after invoke (`mcuc validate --per-layer`)
                config = (runtime.InterpreterConfig.kPreserveAllTensors if preserve and preserve[0]
                          else runtime.InterpreterConfig.kAllocationRecording)
                interpreter = runtime.Interpreter.from_bytes(bytes(model_bytes), arena_size=_ORACLE_ARENA_BYTES,
                                                             intrepreter_config=config)
                interpreter.reset()  # variable tensors (state) start from tflite-micro's reset values
                loaded[key] = (interpreter, _count_outputs(interpreter))
                while len(loaded) > _WORKER_MODELS:
                    loaded.popitem(last=False)
                replies.send(("ok", loaded[key][1]))
            elif kind == "run":
                _, key, inputs, *tensors = request
                if key not in loaded:
                    replies.send(("unknown", None))
                    continue
                loaded.move_to_end(key)
                interpreter, n_outputs = loaded[key]
                for i, x in enumerate(inputs):
                    interpreter.set_input(np.ascontiguousarray(x), i)
                interpreter.invoke()
                outputs = [np.array(interpreter.get_output(i)) for i in range(n_outputs)]
                if tensors:  # also these tensors (by index), of a model loaded with preserve
                    outputs = (outputs, [np.array(interpreter.GetTensor(int(i), 0)["tensor_data"])
                                         for i in tensors[0]])
                replies.send(("ok", outputs))
            elif kind == "arena":
                replies.send(("ok", _arena_bytes(runtime, request[1])))
            else:
                replies.send(("error", f"unknown request {kind!r}"))
        except Exception as e:  # the model's fault, reported to the caller
            replies.send(("error", f"{type(e).__name__}: {e}"))


class _Crashed(Exception):
    pass


class _Worker:
    """One worker process running `_serve`, reached through two pipes."""

    def __init__(self):
        parent_read, child_write = os.pipe()
        child_read, parent_write = os.pipe()
        code = f"from mcuc.oracle import _serve; _serve({child_read}, {child_write})"
        try:
            self.process = subprocess.Popen([sys.executable, "-c", code], pass_fds=(child_read, child_write),
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
        finally:
            os.close(child_read)
            os.close(child_write)
        self.replies = Connection(parent_read, writable=False)
        self.requests = Connection(parent_write, readable=False)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def call(self, request: tuple, timeout: float):
        try:
            self.requests.send(request)
            if not self.replies.poll(timeout):
                self.close()
                raise MCUCError(f"tflite-micro (the oracle) did not answer within {timeout:.0f} s; it was stopped")
            return self.replies.recv()
        except (EOFError, OSError):
            raise _Crashed(self._death()) from None

    def _death(self) -> str:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.close()
            return "stopped answering"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exited with status {code}"

    def close(self) -> None:
        for conn in (self.requests, self.replies):
            try:
                conn.close()
            except OSError:
                pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


_lock = threading.Lock()
_worker: _Worker | None = None
_keys = itertools.count()


def _call(request: tuple, what: str, timeout: float = ORACLE_TIMEOUT_SECONDS, fresh: bool = False):
    """Send one request to the worker (starting it if needed, or anew with `fresh`);
    MCUCError when the worker dies on it, with `what` naming what it was doing."""
    global _worker
    with _lock:
        if fresh and _worker is not None:
            _worker.close()
            _worker = None
        if _worker is None or not _worker.alive:
            _worker = _Worker()
        try:
            status, value = _worker.call(request, timeout)
        except _Crashed as e:
            _worker = None
            raise MCUCError(f"the oracle crashed: tflite-micro {e} while {what}; mcuc cannot verify this model "
                            "against it (a malformed model? `mcuc inspect` shows how mcuc reads it)") from None
    if status == "missing":
        raise MCUCError(_INSTALL_ADVICE)
    return status, value


@atexit.register
def _stop_worker() -> None:
    global _worker
    if _worker is not None:
        _worker.close()
        _worker = None


# -- the API ---------------------------------------------------------------------------

class TFLiteOracle:
    """tflite-micro's interpreter on one model, reusable over many inputs (it runs in
    the worker process; `fresh_process`: in a new one, see the module docstring)."""

    def __init__(self, model_bytes: bytes, fresh_process: bool = False, preserve_tensors: bool = False):
        self._bytes = bytes(model_bytes)
        self._key = next(_keys)
        self._preserve = preserve_tensors
        # a stateful model's inputs so far: the state to rebuild if the worker drops the model
        self._stream: list[list[np.ndarray]] | None = [] if keeps_state(self._bytes) else None
        self.num_outputs = self._load(fresh_process)

    def _load(self, fresh: bool = False) -> int:
        status, value = _call(("load", self._key, self._bytes, self._preserve), "loading the model", fresh=fresh)
        if status != "ok":
            raise MCUCError(f"tflite-micro cannot load this model: {value}")
        return value

    def run_with_tensors(self, inputs: Sequence[np.ndarray], tensors: Sequence[int]):
        """(outputs, values of the subgraph-0 tensors at `tensors`) of one run; the oracle
        must have been made with `preserve_tensors=True` (intermediates are kept)."""
        return self(inputs, tensors)

    def __call__(self, inputs: Sequence[np.ndarray], _tensors: Sequence[int] | None = None) -> list[np.ndarray]:
        request = ("run", self._key, [np.ascontiguousarray(x) for x in inputs],
                   *(() if _tensors is None else ([int(i) for i in _tensors],)))
        status, value = _call(request, "running the model")
        if status == "unknown":  # the worker dropped it (or is a new one): load it again
            self._load()
            for earlier in self._stream or ():
                replayed, why = _call(("run", self._key, earlier), "replaying the stream so far")
                if replayed != "ok":
                    raise MCUCError(f"tflite-micro failed replaying this model's stream: {why}")
            status, value = _call(request, "running the model")
        if status != "ok":
            raise MCUCError(f"tflite-micro failed running this model: {value}")
        if self._stream is not None:
            self._stream.append(request[2])
        return value


def keeps_state(model_bytes: bytes) -> bool:
    """Whether a .tflite model has variable tensors (state kept between invocations). A
    file this cannot read counts as stateless: loading it tells what is wrong."""
    try:
        model = tflite.Model.GetRootAsModel(model_bytes, 0)
        subgraphs = [model.Subgraphs(k) for k in range(model.SubgraphsLength())]
        return any(g.Tensors(i).IsVariable() for g in subgraphs if g is not None for i in range(g.TensorsLength()))
    except Exception:  # a malformed file, whatever the flatbuffers reader raises on it
        return False


def tflm_arena_bytes(model_bytes: bytes) -> int:
    """The arena tflite-micro needs for the model (its RecordingMicroAllocator's total),
    read from the allocation report it prints after an invoke."""
    status, value = _call(("arena", bytes(model_bytes)), "measuring the model's arena")
    if status != "ok":
        raise MCUCError(f"tflite-micro cannot measure this model's arena: {value}")
    return value
