"""Op kinds are named constants, and what passes may do with an op is a trait of its
definition (ir/ops Trait), not a list of kinds inside a pass."""
from __future__ import annotations

from mcuc.ir.ops import Trait, kinds, kinds_with, op_def, supported_kinds


def test_every_registered_kind_has_its_constant():
    assert sorted(kinds.ALL) == supported_kinds()
    for kind in kinds.ALL:
        assert getattr(kinds, kind) == kind
        assert op_def(kind).kind == kind


def test_trait_sets():
    """The sets the planner and the patch transformation act on (their arenas and stages
    depend on exactly these)."""
    assert kinds_with(Trait.ELEMENTWISE) == {
        kinds.ADD, kinds.SUB, kinds.MUL, kinds.RELU, kinds.RELU6, kinds.LOGISTIC, kinds.HARD_SWISH, kinds.QUANTIZE,
        kinds.ABS, kinds.LEAKY_RELU, kinds.TANH, kinds.ELU, kinds.RSQRT, kinds.MAXIMUM, kinds.MINIMUM,
        kinds.SQUARED_DIFFERENCE, kinds.PRELU}
    assert kinds_with(Trait.VIEW) == {kinds.RESHAPE, kinds.SQUEEZE, kinds.EXPAND_DIMS}
    assert kinds_with(Trait.WINDOW) == {
        kinds.CONV_2D, kinds.DEPTHWISE_CONV_2D, kinds.AVERAGE_POOL_2D, kinds.MAX_POOL_2D}
    assert kinds_with(Trait.POSITIONAL) == kinds_with(Trait.ELEMENTWISE) | {kinds.DEQUANTIZE, kinds.SOFTMAX,
                                                                       kinds.LOG_SOFTMAX, kinds.L2_NORMALIZATION}
    assert kinds_with(Trait.ABSORBS_PAD) == {kinds.CONV_2D, kinds.DEPTHWISE_CONV_2D}
    assert kinds_with(Trait.PATCHABLE) == (kinds_with(Trait.WINDOW) | kinds_with(Trait.POSITIONAL)
                                           | {kinds.PAD, kinds.CONCATENATION, kinds.RESIZE_NEAREST_NEIGHBOR,
                                              kinds.RESIZE_BILINEAR, kinds.TRANSPOSE_CONV})
    assert kinds_with(Trait.STATEFUL) == {kinds.SVDF, kinds.UNIDIRECTIONAL_SEQUENCE_LSTM}


def test_traits_imply_each_other_where_the_code_relies_on_it():
    """An elementwise op is positional; window and positional ops are evaluated on
    regions by ir/patches.region_op, so they are patchable; a conv absorbing a PAD has
    the explicit window padding fold_pad writes into."""
    for kind in supported_kinds():
        d = op_def(kind)
        assert not d.has(Trait.ELEMENTWISE) or d.has(Trait.POSITIONAL), kind
        assert not (d.has(Trait.WINDOW) or d.has(Trait.POSITIONAL)) or d.has(Trait.PATCHABLE), kind
        assert not d.has(Trait.ABSORBS_PAD) or d.has(Trait.WINDOW), kind
        assert not (d.has(Trait.VIEW) and d.has(Trait.PATCHABLE)), kind
        # an op keeping state runs whole, once per invocation: never inside a patch stage
        assert not (d.has(Trait.STATEFUL) and d.has(Trait.PATCHABLE)), kind
        assert d.has(Trait.STATEFUL) == bool(d.state_inputs), kind
        assert isinstance(d.traits, frozenset)
