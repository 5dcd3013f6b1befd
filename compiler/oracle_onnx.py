"""The oracle for ONNX models: onnxruntime's CPU execution provider with default session
options (all graph optimizations on: its QDQ fusions decide which QLinear* kernels run,
and so what "bit-exact" means)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from mcuc.ir.errors import MCUCError


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as e:  # pragma: no cover - depends on the install
        raise MCUCError("the oracle for ONNX models is onnxruntime; install the test extras: "
                        "pip install -e '.[test]'") from e
    return onnxruntime


class OnnxOracle:
    """One onnxruntime session, reusable over many inputs: a list of arrays in the model's
    input order (the model's own dtypes and layout) -> the list of its outputs."""

    def __init__(self, model_bytes: bytes):
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings about optimizations are not the user's concern
        try:
            self._session = ort.InferenceSession(bytes(model_bytes), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise MCUCError(f"onnxruntime cannot load this model: {e}") from None
        self._inputs = [i.name for i in self._session.get_inputs()]
        self.num_outputs = len(self._session.get_outputs())

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self._inputs):
            raise MCUCError(f"the model takes {len(self._inputs)} inputs, got {len(inputs)}")
        feed = {name: np.ascontiguousarray(x) for name, x in zip(self._inputs, inputs)}
        return [np.asarray(y) for y in self._session.run(None, feed)]
