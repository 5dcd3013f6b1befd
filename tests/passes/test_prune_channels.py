"""passes/prune_channels: channels no reader uses are removed, and the outputs are the same bytes.

1. Hypothesis: conv 1x1 -> depthwise (3x3 or 5x5, stride 1 or 2) -> conv (1x1 or 3x3)
   -> fully connected chains whose readers have random all-zero input channels (as
   structured pruning leaves them) and random all-zero output channels; the pruned graph
   against the graph as read on mcuc's reference interpreter, and the MACs removed
   against a count from the weights.
2. A chain with a reader the pass cannot see through (ADD) and a graph output keeps
   every channel.
3. vww_96_int8 (structured-pruned, 83% zero weights): the MACs removed, bit-exact with
   tflite-micro on c-host and cortex-m4.
4. The comparison can fail: a pass that also drops one used channel is caught.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcuc.frontend.tflite import load_tflite
from mcuc.ir.interpreter import run
from mcuc.ir.ops import op_def
from mcuc.model import load_model
from mcuc.passes import prune_channels, removed_macs
from mcuc.verify import verify

from tests.support.paths import shared_model_path
from tests.support.tflite_builder import ModelBuilder, int8_weights, int32_bias, random_quant

module = importlib.import_module("mcuc.passes.prune_channels")


def _weights(mb: ModelBuilder, rng, name: str, shape, axis: int, in_q: float, dead_in=(), dead_out=()):
    """int8 weights (per channel along `axis`) with zero input/output channels, and their bias."""
    w, s = int8_weights(rng, shape, axis=axis)
    if len(dead_in):
        w[..., list(dead_in)] = 0
    if len(dead_out):
        index = [slice(None)] * len(shape)
        index[axis] = list(dead_out)
        w[tuple(index)] = 0
    channels = shape[axis]
    wt = mb.tensor(name, shape, "int8", s, np.zeros(channels, np.int64), axis=axis, data=w)
    b = mb.tensor(name + "_b", (channels,), "int32", (in_q * s).astype(np.float32), np.zeros(channels, np.int64),
                  data=int32_bias(rng, channels))
    return wt, b, w


def _chain(seed: int, ch: int, dw_kernel: int, stride: int, k2: int, dead2, dead_out1, dead_fc, add: bool):
    """x (1x9x9x4) -> conv1 1x1 (ch channels, `dead_out1` of them all-zero) -> depthwise
    (SAME) -> conv2 k2 x k2 to 6 channels (input channels `dead2` all-zero, RELU) -> [ADD
    of itself] -> RESHAPE -> FULLY_CONNECTED to 3 (inputs `dead_fc` all-zero, behind a
    RESHAPE the pass does not see through). Returns the model bytes."""
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    q = [random_quant(rng) for _ in range(6)]
    x = mb.tensor("x", (1, 9, 9, 4), "int8", *q[0])
    w1, b1, _ = _weights(mb, rng, "w1", (ch, 1, 1, 4), 0, q[0][0], dead_out=dead_out1)
    h1 = mb.tensor("h1", (1, 9, 9, ch), "int8", *q[1])
    mb.op("CONV_2D", [x, w1, b1], [h1], padding="VALID")
    w2, b2, _ = _weights(mb, rng, "w2", (1, dw_kernel, dw_kernel, ch), 3, q[1][0])
    side = -(-9 // stride)
    h2 = mb.tensor("h2", (1, side, side, ch), "int8", *q[2])
    mb.op("DEPTHWISE_CONV_2D", [h1, w2, b2], [h2], padding="SAME", depth_multiplier=1, stride_h=stride,
          stride_w=stride)
    w3, b3, _ = _weights(mb, rng, "w3", (6, k2, k2, ch), 0, q[2][0], dead_in=dead2)
    h3 = mb.tensor("h3", (1, side, side, 6), "int8", *q[3])
    mb.op("CONV_2D", [h2, w3, b3], [h3], padding="SAME", fused_activation_function="RELU")
    out = h3
    if add:
        out = mb.tensor("sum", (1, side, side, 6), "int8", *q[4])
        mb.op("ADD", [h3, h3], [out])
    flat = mb.tensor("flat", (1, side * side * 6), "int8", *(q[4] if add else q[3]))
    mb.op("RESHAPE", [out, mb.const("shape", [1, side * side * 6])], [flat])
    wf, bf, _ = _weights(mb, rng, "wf", (3, side * side * 6), 0, (q[4] if add else q[3])[0], dead_in=dead_fc)
    y = mb.tensor("y", (1, 3), "int8", *q[5])
    mb.op("FULLY_CONNECTED", [flat, wf, bf], [y])
    return mb.build([x], [y])


def _same_outputs(graph, pruned, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(3):
        inputs = [rng.integers(-128, 128, t.shape).astype(np.int8) for t in graph.inputs]
        for want, got in zip(run(graph, inputs), run(pruned, inputs)):
            assert want.tobytes() == got.tobytes()


def _macs(graph) -> int:
    return sum(int(op_def(op.kind).macs(op)) for op in graph.ops)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**16), ch=st.integers(2, 10), dw_kernel=st.sampled_from([3, 5]),
       stride=st.sampled_from([1, 2]), k2=st.sampled_from([1, 3]), data=st.data())
def test_pruned_chain_computes_the_same_bytes(seed, ch, dw_kernel, stride, k2, data):
    dead2 = data.draw(st.lists(st.integers(0, ch - 1), unique=True, max_size=ch), "dead inputs of conv2")
    dead_out1 = data.draw(st.lists(st.integers(0, ch - 1), unique=True, max_size=ch), "dead outputs of conv1")
    graph = load_tflite(_chain(seed, ch, dw_kernel, stride, k2, dead2, dead_out1, [], add=False))
    pruned = prune_channels(graph)
    _same_outputs(graph, pruned, seed)
    kept = ch - len(dead2) if len(dead2) < ch else 1
    conv1 = next(op for op in pruned.ops if op.kind == "CONV_2D")
    assert conv1.outputs[0].shape[-1] == kept
    # conv1, the depthwise and conv2 each lose the dead channels' share of their MACs
    side = -(-9 // stride)
    dropped = ch - kept
    assert removed_macs(graph, pruned) == dropped * (81 * 4 + side * side * dw_kernel**2 + side * side * 6 * k2 * k2)
    assert _macs(graph) - _macs(pruned) == removed_macs(graph, pruned)


def test_readers_the_pass_cannot_see_through_keep_every_channel():
    """conv2's output goes to an ADD (not a pointwise reader): nothing of it is pruned;
    conv1's channels still are (their only readers are the depthwise and conv2)."""
    graph = load_tflite(_chain(3, 6, 3, 1, 1, [1, 4], [], [0, 1, 2], add=True))
    pruned = prune_channels(graph)
    _same_outputs(graph, pruned, 3)
    shapes = {op.outputs[0].name: op.outputs[0].shape for op in pruned.ops}
    assert shapes["h1"][-1] == 4 and shapes["h2"][-1] == 4
    assert shapes["h3"][-1] == 6 and shapes["sum"][-1] == 6
    # a graph whose every channel is read comes back as it was
    full = load_tflite(_chain(3, 6, 3, 1, 1, [], [], [], add=False))
    assert prune_channels(full) is full


def test_a_pass_that_drops_a_used_channel_is_caught(monkeypatch):
    original = module._input_channels_used

    def one_short(op, kept):
        used = original(op, kept).copy()
        used[np.flatnonzero(used)[0]] = False  # pretend a used channel is unused
        return used

    graph = load_tflite(_chain(5, 6, 3, 1, 1, [2], [], [], add=False))
    monkeypatch.setattr(module, "_input_channels_used", one_short)
    with pytest.raises(AssertionError):
        _same_outputs(graph, prune_channels(graph), 5)


def test_vww_96_skips_its_dead_channels_bit_exact():
    model = load_model(shared_model_path("vww_96_int8"))
    pruned = prune_channels(model.graph)
    assert removed_macs(model.graph, pruned) == 3_690_837  # of 7,489,664
    report = verify(model, ["c-host", "cortex-m4"], samples=2, seed=4)
    assert all(report["backends"][b]["bit_exact"] for b in ("c-host", "cortex-m4")), report
