"""Backends choose a kernel per (op kind, numerics type): an op is compiled under its own
rule or refused naming the rule, never run with another rule's kernel."""
from __future__ import annotations

import numpy as np
import pytest

from mcuc.backends.cortexm import get_target
from mcuc.backends.cortexm.kernels import emit_step
from mcuc.backends.llvm.kernels import emitter_for
from mcuc.ir.errors import MCUCError
from mcuc.ir.numerics import ORT_INTEGER, TFLITE_Q31, OrtFloat
from mcuc.ir.ops.add import AddAttrs
from mcuc.passes import plan

from tests.support.memory_graphs import GraphBuilder


def _binary(kind: str, numerics):
    b = GraphBuilder(np.random.default_rng(1))
    x = b.activation((1, 4, 4, 2), "x")
    y = b.add_op(kind, [x, x], AddAttrs(numerics=numerics))
    return plan(b.graph([x], [y]))


@pytest.mark.parametrize("numerics", [TFLITE_Q31, ORT_INTEGER, OrtFloat()])
def test_each_rule_has_its_own_add_kernel(numerics):
    program = _binary("ADD", numerics)
    emitters = {emitter_for(_binary("ADD", n).steps[0].op, 0) for n in (TFLITE_Q31, ORT_INTEGER, OrtFloat())}
    assert len(emitters) == 3  # three rules, three kernels
    code = emit_step(0, program.steps[0], program, get_target("cortex-m4"))
    assert ("mcuc_ort" in code.decls) == (numerics is not TFLITE_Q31)


def test_a_rule_without_a_kernel_is_refused_naming_it():
    program = _binary("SUB", ORT_INTEGER)  # SUB exists only under TFLite's rule
    with pytest.raises(MCUCError, match="no SUB kernel under OrtInteger numerics"):
        emitter_for(program.steps[0].op, 0)
    with pytest.raises(MCUCError, match="no SUB kernel under OrtInteger numerics"):
        emit_step(0, program.steps[0], program, get_target("cortex-m4"))


def test_an_op_without_numerics_follows_tflites_rule():
    """A QUANTIZE the frontend makes for a uint8 graph edge carries no attributes: like
    rule_of, the registries read it as TFLite's rule (an exact table)."""
    from mcuc.ir.op import Op
    from mcuc.ir.tensor import Quantization, Tensor

    q = Quantization(np.float32([0.5]), np.int64([0]))
    x = Tensor("x", (1, 4), "uint8", Quantization(np.float32([0.5]), np.int64([128])))
    y = Tensor("y", (1, 4), "int8", q)
    op = Op("QUANTIZE", (x,), (y,), None, name="q")
    assert emitter_for(op, 0).__name__ == "quantize"
