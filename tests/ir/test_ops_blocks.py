"""A realistic int8 block built from the newer ops, against tflite-micro on every backend:
an embedding lookup (GATHER of a constant table with token ids given at run time), a
layer norm (MEAN, SQUARED_DIFFERENCE, ADD, RSQRT, SUB, MUL), two heads cut with SPLIT,
restacked with PACK, STRIDED_SLICE with a negative stride, REDUCE_MAX and ARG_MAX. The
planner places multi-output, view and int32 tensors in one arena.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.ir.test_ops_compare import assert_matches_oracle
from tests.support.tflite_builder import ModelBuilder

TOKENS, WIDTH, VOCAB = 8, 16, 32


def layer_norm_block() -> bytes:
    rng = np.random.default_rng(7)
    mb = ModelBuilder("embedding + layer norm + heads")
    table = mb.tensor("table", (VOCAB, WIDTH), "int8", 0.05, 0, data=rng.integers(-128, 128, (VOCAB, WIDTH)))
    ids = mb.tensor("ids", (1, TOKENS), "int32")
    x = mb.tensor("x", (1, TOKENS, WIDTH), "int8", 0.05, 0)
    mb.op("GATHER", [table, ids], [x], axis=0)
    last = mb.const("last", [2])
    mean = mb.tensor("mean", (1, TOKENS, 1), "int8", 0.05, 0)
    mb.op("MEAN", [x, last], [mean], keep_dims=True)
    sq = mb.tensor("sq", (1, TOKENS, WIDTH), "int8", 0.63, -128)
    mb.op("SQUARED_DIFFERENCE", [x, mean], [sq])
    var = mb.tensor("var", (1, TOKENS, 1), "int8", 0.63, -128)
    mb.op("MEAN", [sq, last], [var], keep_dims=True)
    eps = mb.tensor("eps", (1,), "int8", 0.63, -128, data=np.array([-127]))
    var_eps = mb.tensor("var_eps", (1, TOKENS, 1), "int8", 0.63, -128)
    mb.op("ADD", [var, eps], [var_eps])
    inv = mb.tensor("inv", (1, TOKENS, 1), "int8", 0.005, -128)
    mb.op("RSQRT", [var_eps], [inv])
    centred = mb.tensor("centred", (1, TOKENS, WIDTH), "int8", 0.1, 0)
    mb.op("SUB", [x, mean], [centred])
    normed = mb.tensor("normed", (1, TOKENS, WIDTH), "int8", 0.0625, 0)
    mb.op("MUL", [centred, inv], [normed])
    axis = mb.const("axis", [2])
    heads = [mb.tensor(f"head{k}", (1, TOKENS, WIDTH // 2), "int8", 0.0625, 0) for k in range(2)]
    mb.op("SPLIT", [axis, normed], heads, num_splits=2)
    stacked = mb.tensor("stacked", (1, 2, TOKENS, WIDTH // 2), "int8", 0.0625, 0)
    mb.op("PACK", heads, [stacked], values_count=2, axis=1)
    flipped = mb.tensor("flipped", (1, 2, TOKENS // 2, WIDTH // 2), "int8", 0.0625, 0)
    mb.op("STRIDED_SLICE", [stacked, mb.const("b", [0, 0, -1, 0]), mb.const("e", [1, 2, 0, 8]),
                            mb.const("s", [1, 1, -2, 1])], [flipped], end_mask=0)
    peak = mb.tensor("peak", (1, 2, TOKENS // 2), "int8", 0.0625, 0)
    mb.op("REDUCE_MAX", [flipped, mb.const("ax3", [3])], [peak])
    best = mb.tensor("best", (1, 2), "int32")
    mb.op("ARG_MAX", [peak, mb.const("ax2", [-1])], [best])
    model = mb.build_model([ids], [normed, peak, best])
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    from tests.support.tflite_builder import pack
    for op in model.subgraphs[0].operators:  # REDUCE_MAX's ReducerOptions (the builder has no table for it)
        if model.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.REDUCE_MAX:
            op.builtinOptionsType = schema.BuiltinOptions.ReducerOptions
            op.builtinOptions = schema.ReducerOptionsT()
    return pack(model)


def test_embedding_layer_norm_heads_match_oracle_on_every_backend():
    model = layer_norm_block()
    rng = np.random.default_rng(3)
    backends = ("reference", "llvm", "c-host") + (("cortex-m4",) if shutil.which("arm-none-eabi-gcc") else ())
    for _ in range(3):
        ids = rng.integers(0, VOCAB, (1, TOKENS)).astype(np.int32)
        assert_matches_oracle(model, [ids], backends, "layer norm block")


@pytest.mark.parametrize("seed", [11, 12])
def test_embedding_layer_norm_heads_reference_matches_oracle(seed):
    model = layer_norm_block()
    ids = np.random.default_rng(seed).integers(0, VOCAB, (1, TOKENS)).astype(np.int32)
    assert_matches_oracle(model, [ids], ("reference",), "layer norm block")


# -- a small attention block --------------------------------------------------------------------

HEADS, HEAD_WIDTH = 2, WIDTH // 2


def attention_block() -> bytes:
    """Pre-norm single-layer self-attention with two heads: layer norm (MEAN,
    SQUARED_DIFFERENCE, ADD, RSQRT, SUB, MUL), Q/K/V projections (FULLY_CONNECTED with
    keep_num_dims), heads by RESHAPE + TRANSPOSE, scores Q.K^T (BATCH_MATMUL adj_y over
    both computed operands), SOFTMAX, probabilities . V (BATCH_MATMUL), heads merged back,
    an output projection and the residual ADD."""
    rng = np.random.default_rng(17)
    mb = ModelBuilder("attention block")
    x = mb.tensor("x", (1, TOKENS, WIDTH), "int8", 0.05, 2)
    last = mb.const("last", [2])
    mean = mb.tensor("mean", (1, TOKENS, 1), "int8", 0.05, 2)
    mb.op("MEAN", [x, last], [mean], keep_dims=True)
    sq = mb.tensor("sq", (1, TOKENS, WIDTH), "int8", 0.1, -128)
    mb.op("SQUARED_DIFFERENCE", [x, mean], [sq])
    var = mb.tensor("var", (1, TOKENS, 1), "int8", 0.1, -128)
    mb.op("MEAN", [sq, last], [var], keep_dims=True)
    eps = mb.tensor("eps", (1,), "int8", 0.1, -128, data=np.array([-127]))
    var_eps = mb.tensor("var_eps", (1, TOKENS, 1), "int8", 0.1, -128)
    mb.op("ADD", [var, eps], [var_eps])
    inv = mb.tensor("inv", (1, TOKENS, 1), "int8", 0.02, -128)
    mb.op("RSQRT", [var_eps], [inv])
    centred = mb.tensor("centred", (1, TOKENS, WIDTH), "int8", 0.05, 0)
    mb.op("SUB", [x, mean], [centred])
    normed = mb.tensor("normed", (1, TOKENS, WIDTH), "int8", 0.03, 0)
    mb.op("MUL", [centred, inv], [normed])

    def projection(name, source, scale, out_scale, zp=0):
        w = mb.tensor(f"w{name}", (WIDTH, WIDTH), "int8", [scale] * WIDTH, [0] * WIDTH,
                      data=rng.integers(-127, 128, (WIDTH, WIDTH)))
        b = mb.tensor(f"b{name}", (WIDTH,), "int32", data=rng.integers(-300, 300, WIDTH))
        y = mb.tensor(name, (1, TOKENS, WIDTH), "int8", out_scale, zp)
        mb.op("FULLY_CONNECTED", [source, w, b], [y], keep_num_dims=True)
        return y

    def heads(name, source, scale, zp=0):
        split = mb.tensor(f"{name}_split", (1, TOKENS, HEADS, HEAD_WIDTH), "int8", scale, zp)
        mb.op("RESHAPE", [source, mb.const(f"{name}_shape", [1, TOKENS, HEADS, HEAD_WIDTH])], [split])
        y = mb.tensor(f"{name}_heads", (1, HEADS, TOKENS, HEAD_WIDTH), "int8", scale, zp)
        mb.op("TRANSPOSE", [split, mb.const(f"{name}_perm", [0, 2, 1, 3])], [y])
        return y

    q = heads("q", projection("q", normed, 0.01, 0.06), 0.06)
    k = heads("k", projection("k", normed, 0.01, 0.06), 0.06)
    v = heads("v", projection("v", normed, 0.01, 0.05, 3), 0.05, 3)
    scores = mb.tensor("scores", (1, HEADS, TOKENS, TOKENS), "int8", 0.08, -10)
    mb.op("BATCH_MATMUL", [q, k], [scores], adj_y=True)
    probs = mb.tensor("probs", (1, HEADS, TOKENS, TOKENS), "int8", 1 / 256, -128)
    mb.op("SOFTMAX", [scores], [probs], beta=1.0)
    context = mb.tensor("context", (1, HEADS, TOKENS, HEAD_WIDTH), "int8", 0.03, 1)
    mb.op("BATCH_MATMUL", [probs, v], [context])
    merged = mb.tensor("merged", (1, TOKENS, HEADS, HEAD_WIDTH), "int8", 0.03, 1)
    mb.op("TRANSPOSE", [context, mb.const("back", [0, 2, 1, 3])], [merged])
    flat = mb.tensor("flat", (1, TOKENS, WIDTH), "int8", 0.03, 1)
    mb.op("RESHAPE", [merged, mb.const("flat_shape", [1, TOKENS, WIDTH])], [flat])
    attended = projection("attended", flat, 0.01, 0.05, -2)
    out = mb.tensor("out", (1, TOKENS, WIDTH), "int8", 0.07, 1)
    mb.op("ADD", [x, attended], [out])
    return mb.build([x], [out, probs])


def test_attention_block_matches_oracle_on_every_backend():
    model = attention_block()
    rng = np.random.default_rng(5)
    backends = ("reference", "llvm", "c-host") + (("cortex-m4", "cortex-m0") if shutil.which("arm-none-eabi-gcc")
                                                  else ())
    x = rng.integers(-128, 128, (1, TOKENS, WIDTH)).astype(np.int8)
    assert_matches_oracle(model, [x], backends, "attention block")
