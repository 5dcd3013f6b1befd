"""The oracle for ONNX models: onnxruntime's CPU execution provider with default session
options (all graph optimizations on: its QDQ fusions decide which QLinear* kernels run,
and so what "bit-exact" means).

onnxruntime always runs the model as it is (NCHW); a model compiled with `--layout nhwc`
takes and gives its 4-D tensors NHWC, and this oracle is the one place that moves them:
4-D inputs to NCHW before onnxruntime, its 4-D outputs to NHWC after."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from mcuc.ir.errors import MCUCError

NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as e:  # pragma: no cover - depends on the install
        raise MCUCError("the oracle for ONNX models is onnxruntime; install the test extras: "
                        "pip install -e '.[test]'") from e
    return onnxruntime


class OnnxOracle:
    """One onnxruntime session, reusable over many inputs: a list of arrays in the model's
    input order (the model's own dtypes; 4-D tensors in `layout`) -> the list of its
    outputs (4-D ones in `layout`)."""

    def __init__(self, model_bytes: bytes, layout: str = "nchw"):
        if layout not in ("nchw", "nhwc"):
            raise MCUCError(f"unknown layout {layout!r} for the onnxruntime oracle; choose nchw or nhwc")
        self.nhwc = layout == "nhwc"
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings about optimizations are not the user's concern
        try:
            self._session = ort.InferenceSession(bytes(model_bytes), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise MCUCError(f"onnxruntime cannot load this model: {e}") from None
        self._inputs = [i.name for i in self._session.get_inputs()]
        self._input_ranks = [len(i.shape) for i in self._session.get_inputs()]
        self.num_outputs = len(self._session.get_outputs())

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self._inputs):
            raise MCUCError(f"the model takes {len(self._inputs)} inputs, got {len(inputs)}")
        if self.nhwc:
            inputs = [self._to_nchw(name, x) if rank == 4 else x
                      for name, rank, x in zip(self._inputs, self._input_ranks, inputs)]
        feed = {name: np.ascontiguousarray(x) for name, x in zip(self._inputs, inputs)}
        outputs = [np.asarray(y) for y in self._session.run(None, feed)]
        if self.nhwc:
            outputs = [np.ascontiguousarray(y.transpose(NCHW_TO_NHWC)) if y.ndim == 4 else y for y in outputs]
        return outputs

    @staticmethod
    def _to_nchw(name: str, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 4:
            raise MCUCError(f"input {name!r} is 4-D in the model; with layout nhwc give it as a 4-D NHWC array, "
                            f"got shape {list(x.shape)}")
        return x.transpose(NHWC_TO_NCHW)
