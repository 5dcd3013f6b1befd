"""Conv, matrix products and means that onnxruntime leaves in float between
DequantizeLinear and QuantizeLinear (ops whose numerics are OrtFloat, ir/numerics.py).

On x86-64 without VNNI onnxruntime converts int8 QDQ activations to uint8 one Q/DQ pair
at a time (single-consumer pairs only) and does not fuse a group whose tensors were
converted in part: it dequantizes, runs the float op and quantizes. Its float Conv, Gemm
and MatMul are MLAS SGEMMs (a conv on NCHW im2col columns: input channel, then ky, then
kx; one group at a time), and which SGEMM kernel runs decides the float32 rounding:

- more than one output row per group (M > 1): the FMA3 kernel, a chain of fused
  multiply-adds from zero along the reduction axis;
- one output row (M == 1: a depthwise conv with multiplier 1, a group with one output
  channel, a Gemm/MatMul on one input row): MlasSgemmKernelM1Avx, no FMA: products
  rounded, summed four at a time ((p0 + p1) + p2) + p3 and each block added to the
  output (which starts as the Gemm's bias, else zero), then a pair, then a single;
- a Gemm with transB=1 on one row: MlasSgemmKernelM1TransposeBAvx, eight lanes over
  the reduction (lane j sums products k = j mod 8 in order), reduced in the tree its
  output position (4-, 2- or 1-row block of the units) dictates, plus the bias.

A conv's float bias is added after the product (MlasActivation); then QuantizeLinear.
A MEAN over H and W sums each channel in the order of its kernel: GlobalAveragePool's
MlasPoolGlobalKernel (four lanes) or ReduceMean's Eigen sum (aligned SSE packets, which
depend on where the channel's row starts in memory).
Measured byte-exact against the pinned onnxruntime's float outputs (tests/frontend/test_onnx_layers.py,
tests/frontend/test_onnx_float_groups.py, tests/frontend/test_onnx_reduce_mean.py).
"""
from __future__ import annotations

import numpy as np

from ..op import Op
from ..ort_numerics import fma_f32, int_to_f32, quantize_linear
from .common import groups, pad_spatial, windows


def _dequantized(t, values: np.ndarray) -> np.ndarray:
    """DequantizeLinear: float32(q - zero_point) * scale (per channel along the last axis)."""
    scale = t.quant.scale.astype(np.float32)
    return int_to_f32(values.astype(np.int64) - t.quant.zero_point.astype(np.int64)) * scale


def _bias(op: Op, inputs: list[np.ndarray], channels: int) -> np.ndarray | None:
    if len(inputs) < 3 or inputs[2] is None:
        return None
    b_t = op.inputs[2]
    return int_to_f32(inputs[2].astype(np.int64)) * np.broadcast_to(b_t.quant.scale.astype(np.float32), (channels,))


def quantize_with_clamp(op: Op, values: np.ndarray) -> np.ndarray:
    """QuantizeLinear of a float op's result, then the op's fused clamp. Used by
    AVERAGE_POOL_2D left in float: MLAS's NCHWc average pool (channel counts that are a
    multiple of its block) sums the window's valid taps in row-major order and divides by
    the count, the same float mean as QLinearAveragePool's, so only the output rounding
    differs (tests/frontend/test_onnx_float_groups.py)."""
    return _quantize(op, values)


def _quantize(op: Op, acc: np.ndarray) -> np.ndarray:
    y_t = op.output
    info = np.iinfo(np.dtype(y_t.dtype))
    y = quantize_linear(acc, y_t.quant.scale[0], y_t.quant.scalar_zero_point, int(info.min), int(info.max))
    return np.clip(y, op.attrs.act_min, op.attrs.act_max).astype(y_t.dtype)


SGEMM_STRIDE_N = SGEMM_STRIDE_K = 128  # MLAS_SGEMM_STRIDEN / MLAS_SGEMM_STRIDEK


def sgemm_k_block(n: int, k: int) -> int:
    """How many reduction terms MlasSgemmOperation (and MlasConvOperation) hand the FMA3
    kernel at a time for N output columns: all of them when N >= K, else 128, doubled
    while halving the N stride (down to 16) still covers N. Each block is a fused
    multiply-add chain from zero, then added to the output in one rounding."""
    if n >= k:
        return k
    stride_n, stride_k = SGEMM_STRIDE_N, SGEMM_STRIDE_K
    while stride_n > 16 and stride_n // 2 >= n:
        stride_k, stride_n = stride_k * 2, stride_n // 2
    return stride_k


SGEMM_THREAD_COMPLEXITY = 64 * 1024  # MLAS_SGEMM_THREAD_COMPLEXITY
SGEMM_STRIDE_N_THREAD_ALIGN = 16
MAXIMUM_THREAD_COUNT = 16  # MLAS_MAXIMUM_THREAD_COUNT


def conv_segments(n_out: int, filters: int, k: int, groups: int, threads: int) -> list[tuple[int, int]]:
    """How MlasConvPrepare/MlasConv slice a conv's N output columns among threads
    (MlasConvAlgorithmExpandThenGemmSegmented with one group; pointwise and wide-filter
    convs go through MlasGemm on all columns, grouped convs run each group whole):
    (start, count) segments, each a MlasConvOperation with its own reduction blocks."""
    if groups > 1:
        return [(0, n_out)]
    complexity = filters * n_out * k
    target = complexity // SGEMM_THREAD_COMPLEXITY + 1 if complexity < SGEMM_THREAD_COMPLEXITY * MAXIMUM_THREAD_COUNT \
        else MAXIMUM_THREAD_COUNT
    target = min(target, threads)
    stride = -(-n_out // target)
    if target > 1:
        stride = -(-stride // SGEMM_STRIDE_N_THREAD_ALIGN) * SGEMM_STRIDE_N_THREAD_ALIGN
    if stride >= n_out:
        return [(0, n_out)]
    return [(start, min(stride, n_out - start)) for start in range(0, n_out, stride)]


def gemm_segments(m: int, n: int, k: int, threads: int) -> list[tuple[int, int]]:
    """MlasGemmBatch's column ranges: with more columns than rows, N is cut into blocks
    of 16 shared out evenly (MlasPartitionWork) among min(M*N*K / 64Ki + 1, threads)
    threads, each running its own MlasSgemmOperation; else the rows are split and every
    thread sees all N columns."""
    target = min(m * n * k // SGEMM_THREAD_COMPLEXITY + 1, threads)
    if n <= m or target <= 1:
        return [(0, n)]
    blocked = -(-n // SGEMM_STRIDE_N_THREAD_ALIGN)
    target = min(target, blocked)
    per, extra = divmod(blocked, target)
    segments = []
    for t in range(target):
        start = (per + 1) * t if t < extra else per * t + extra
        count = per + 1 if t < extra else per
        first, last = start * SGEMM_STRIDE_N_THREAD_ALIGN, min(n, (start + count) * SGEMM_STRIDE_N_THREAD_ALIGN)
        if last > first:
            segments.append((first, last - first))
    return segments


def conv_k_blocks(op: Op) -> np.ndarray:
    """The FMA3 reduction block of every output column (oh * ow, row-major) of a float
    CONV_2D with more than one output channel per group."""
    _, oh, ow, oc = op.output.shape
    w = op.inputs[1]
    g = groups(op)
    k = w.shape[1] * w.shape[2] * w.shape[3]
    n_out = oh * ow
    a = op.attrs
    gemm_direct = (w.shape[1] == w.shape[2] == 1 and a.stride == (1, 1)
                   and (a.padding.top, a.padding.bottom, a.padding.left, a.padding.right) == (0, 0, 0, 0))
    threads = max(1, a.numerics.threads)
    blocks = np.empty(n_out, np.int64)
    if gemm_direct and g > 1:  # MlasConvGemmDirectThreaded: one MlasSgemmOperation per group
        segments = [(0, n_out)]
    elif gemm_direct or oc // g > n_out:  # MlasGemm (GemmDirect, ExpandThenGemm)
        segments = gemm_segments(oc // g, n_out, k, threads)
    else:  # ExpandThenGemmSegmented
        segments = conv_segments(n_out, oc // g, k, g, threads)
    for start, count in segments:
        blocks[start:start + count] = sgemm_k_block(count, k)
    return blocks


def fma3_sum(pairs: list[tuple[np.ndarray, np.ndarray]], block: int, start: np.ndarray | None = None) -> np.ndarray:
    """MLAS's FMA3 SGEMM kernel over (a, b) pairs in reduction order: per block of
    `block` terms a fused multiply-add chain from zero, added to the output (which
    starts as `start`, or is the first block when there is none)."""
    out = start
    for first in range(0, len(pairs), block):
        acc = np.float32(0.0)
        for a, b in pairs[first:first + block]:
            acc = fma_f32(a, b, acc)
        out = acc if out is None else (acc + out).astype(np.float32)
    return np.asarray(out, np.float32)


def m1_sum(products: list[np.ndarray], start: np.ndarray | float = 0.0) -> np.ndarray:
    """MlasSgemmKernelM1Avx's order over rounded products p[0..K): blocks of four summed
    ((p0 + p1) + p2) + p3 and added to the output, then a pair, then a single one."""
    out = np.asarray(start, np.float32)
    k, total = 0, len(products)
    while total - k >= 4:
        out = (((products[k] + products[k + 1]) + products[k + 2]) + products[k + 3]) + out
        k += 4
    if total - k >= 2:
        out = (products[k] + products[k + 1]) + out
        k += 2
    if total - k == 1:
        out = products[k] + out
    return out.astype(np.float32)


def m1_transposed_b(row: np.ndarray, weights: np.ndarray, start: np.ndarray) -> np.ndarray:
    """MlasSgemmKernelM1TransposeBAvx: row [K], weights [N, K] -> [N] (+ start)."""
    n_out, depth = weights.shape
    lanes = np.zeros((n_out, 8), np.float32)
    for k in range(depth):
        lanes[:, k % 8] = lanes[:, k % 8] + (weights[:, k] * row[k]).astype(np.float32)
    l = [lanes[:, j] for j in range(8)]
    four = (((l[0] + l[1]) + l[2]) + l[3]) + (((l[4] + l[5]) + l[6]) + l[7])
    two = ((l[0] + l[2]) + (l[4] + l[6])) + ((l[1] + l[3]) + (l[5] + l[7]))
    one = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
    position = np.arange(n_out)
    in_four = position < n_out // 4 * 4
    in_two = ~in_four & (position < n_out // 4 * 4 + (n_out % 4) // 2 * 2)
    total = np.where(in_four, four, np.where(in_two, two, one))
    return (total + np.asarray(start, np.float32)).astype(np.float32)


def conv_float(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    """CONV_2D (weights OHWI) as onnxruntime's float Conv computes it, bias included."""
    a = op.attrs
    x = pad_spatial(_dequantized(op.inputs[0], inputs[0]), a.padding, 0.0)
    w = inputs[1]
    weights = _dequantized(op.inputs[1], np.moveaxis(w, 0, -1))  # [KH, KW, I, O]: scales along O
    _, oh, ow, oc = op.output.shape
    kh, kw, cin_g = w.shape[1], w.shape[2], w.shape[3]
    g = groups(op)
    cout_g = oc // g
    cols = windows(x, kh, kw, oh, ow, a.stride, a.dilation)  # [N, OH, OW, KH, KW, C]
    acc = np.zeros(op.output.shape, np.float32)
    for gi in range(g):
        out = slice(gi * cout_g, (gi + 1) * cout_g)
        taps = [(weights[ky, kx, c, out], cols[:, :, :, ky, kx, gi * cin_g + c][..., None])
                for c in range(cin_g) for ky in range(kh) for kx in range(kw)]
        if cout_g == 1:
            acc[..., out] = m1_sum([(wv * xv).astype(np.float32) for wv, xv in taps])
            continue
        blocks = conv_k_blocks(op).reshape(oh, ow)[None, :, :, None]
        for block in np.unique(blocks):
            acc[..., out] = np.where(blocks == block, fma3_sum(taps, int(block)), acc[..., out])
    bias = _bias(op, inputs, oc)
    return acc if bias is None else acc + bias


def depthwise_float(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    """DEPTHWISE_CONV_2D (weights [1, KH, KW, C*m]) as onnxruntime's float grouped Conv."""
    a = op.attrs
    x = pad_spatial(_dequantized(op.inputs[0], inputs[0]), a.padding, 0.0)
    weights = _dequantized(op.inputs[1], inputs[1][0])  # [KH, KW, C*m]
    _, oh, ow, oc = op.output.shape
    kh, kw = weights.shape[0], weights.shape[1]
    cols = windows(x, kh, kw, oh, ow, a.stride, a.dilation)
    source = np.repeat(np.arange(inputs[0].shape[3]), a.depth_multiplier)
    taps = [(weights[ky, kx], cols[:, :, :, ky, kx, source]) for ky in range(kh) for kx in range(kw)]
    if a.depth_multiplier == 1:  # one output row per group: the M == 1 kernel
        acc = m1_sum([(wv * xv).astype(np.float32) for wv, xv in taps])
    else:
        acc = np.broadcast_to(fma3_sum(taps, sgemm_k_block(oh * ow, len(taps))), op.output.shape)
    bias = _bias(op, inputs, oc)
    return acc if bias is None else acc + bias


def fully_connected_float(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    """FULLY_CONNECTED (weights [units, depth]) as onnxruntime's float Gemm/MatMul: [rows, units]."""
    w = inputs[1]
    rows = _dequantized(op.inputs[0], inputs[0]).reshape(-1, w.shape[1])
    weights = _dequantized(op.inputs[1], w.T)  # [depth, units]: scales along units
    bias = _bias(op, inputs, w.shape[0])
    start = np.zeros(w.shape[0], np.float32) if bias is None else bias
    if rows.shape[0] == 1 and op.attrs.numerics.gemm_transposed_b:
        return m1_transposed_b(rows[0], np.ascontiguousarray(weights.T), start)[None]
    if rows.shape[0] == 1:  # Gemm's bias is its C: the M == 1 kernel adds blocks onto it
        return m1_sum([(rows[0, k] * weights[k]).astype(np.float32) for k in range(w.shape[1])], start)[None]
    # More rows: the FMA3 kernel, a Gemm's bias being the output it accumulates onto.
    pairs = [(rows[:, k:k + 1], weights[k]) for k in range(w.shape[1])]
    out = fma3_sum(pairs, sgemm_k_block(w.shape[0], w.shape[1]), bias)
    return np.broadcast_to(out, (rows.shape[0], w.shape[0])).astype(np.float32)


def conv(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    return _quantize(op, conv_float(op, inputs))


def depthwise(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    return _quantize(op, depthwise_float(op, inputs))


def fully_connected(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    return _quantize(op, fully_connected_float(op, inputs)).reshape(op.output.shape)


def global_average_pool_float(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    """MEAN over H and W (a GlobalAveragePool) as onnxruntime's float MlasPool computes it
    (MlasPoolGlobalKernel): per channel, the H*W dequantized values in NCHW order summed
    in four float32 lanes (value i into lane i mod 4, whole blocks of four), the lanes
    reduced as (l0 + l2) + (l1 + l3), the remaining values added one by one, then divided
    by float32(H*W): [N, C] float32."""
    x = _dequantized(op.inputs[0], inputs[0])  # [N, H, W, C]
    n, h, w, c = x.shape
    values = np.moveaxis(x.reshape(n, h * w, c), 1, -1)  # [N, C, H*W]
    count = h * w
    full = count // 4 * 4
    lanes = np.zeros((n, c, 4), np.float32)
    for first in range(0, full, 4):
        lanes = lanes + values[..., first:first + 4]
    total = (lanes[..., 0] + lanes[..., 2]) + (lanes[..., 1] + lanes[..., 3])
    for i in range(full, count):
        total = total + values[..., i]
    return (total / np.float32(count)).astype(np.float32)  # [N, C]


# onnxruntime's core is compiled for SSE2, so Eigen's float packet is Packet4f: 4 floats,
# 16-byte aligned loads (an AVX Packet8f order disagrees with the pinned onnxruntime on
# most shapes; tests/frontend/test_onnx_reduce_mean.py measures this one bit-exact).
EIGEN_PACKET = 4


def eigen_first_aligned(row: int, count: int) -> int:
    """Eigen's first_default_aligned for row `row` of a [rows, count] float32 tensor whose
    base is 16-byte aligned (onnxruntime's allocations are 64-byte aligned): the index of
    the row's first element on a 16-byte boundary, or `count` when it has none."""
    return min((-row * count) % EIGEN_PACKET, count)


def eigen_sum(values: np.ndarray, first_aligned: int) -> np.ndarray:
    """Eigen's vectorized sum (redux_impl, LinearVectorizedTraversal) over the last axis
    of float32 `values` [..., count] whose element a = `first_aligned` is every row's first
    on a packet (16-byte) boundary.

    Fewer than one whole packet from a on: a sequential sum from element 0. Otherwise the
    packets P0 = [a, a + 4), P1 = [a + 4, a + 8), ... are summed lane-wise: P0 alone, or
    with two or more, P0 and P1 start two accumulators, P2k goes to the first and P2k+1 to
    the second up to the last whole pair, the two are added, then an odd last packet; the
    packet is reduced as (l0 + l2) + (l1 + l3) (predux on SSE); then the unaligned head
    elements [0, a) are added one by one, then the tail after the last packet."""
    count = values.shape[-1]
    a = first_aligned
    packets = (count - a) // EIGEN_PACKET
    if packets == 0:
        total = values[..., 0]
        for i in range(1, count):
            total = total + values[..., i]
        return np.asarray(total, np.float32)

    def packet(k: int) -> np.ndarray:
        return values[..., a + k * EIGEN_PACKET:a + (k + 1) * EIGEN_PACKET]

    acc0 = packet(0)
    if packets > 1:
        acc1 = packet(1)
        for k in range(2, packets // 2 * 2, 2):
            acc0, acc1 = acc0 + packet(k), acc1 + packet(k + 1)
        acc0 = acc0 + acc1
        if packets % 2:
            acc0 = acc0 + packet(packets - 1)
    total = (acc0[..., 0] + acc0[..., 2]) + (acc0[..., 1] + acc0[..., 3])
    for i in [*range(a), *range(a + packets * EIGEN_PACKET, count)]:
        total = total + values[..., i]
    return np.asarray(total, np.float32)


def reduce_mean_float(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    """MEAN over H and W as onnxruntime's float ReduceMean computes it (ReduceAggregatorMean,
    FastReduceKR): the NCHW input is [N * C, H * W] rows; row d (channel d % C of image
    d // C) starts at float offset d * H * W of a 64-byte aligned buffer, and is summed with
    Eigen's `.sum()` (eigen_sum, whose packet alignment depends on that offset); then each
    sum is divided by float32(H * W): [N, C] float32."""
    x = _dequantized(op.inputs[0], inputs[0])  # [N, H, W, C]
    n, h, w, c = x.shape
    count = h * w
    rows = np.moveaxis(x.reshape(n, count, c), 1, -1).reshape(n * c, count)  # NCHW rows
    total = np.empty(n * c, np.float32)
    phases = np.array([eigen_first_aligned(d, count) for d in range(n * c)])
    for first_aligned in np.unique(phases):
        chosen = phases == first_aligned
        total[chosen] = eigen_sum(rows[chosen], int(first_aligned))
    return (total / np.float32(count)).astype(np.float32).reshape(n, c)


def float_mean(op: Op, inputs: list[np.ndarray], kernel_float) -> np.ndarray:
    """MEAN over H and W as one of onnxruntime's float kernels (global_average_pool_float
    or reduce_mean_float), then QuantizeLinear."""
    y_t = op.output
    info = np.iinfo(np.dtype(y_t.dtype))
    y = quantize_linear(kernel_float(op, inputs), y_t.quant.scale[0], y_t.quant.scalar_zero_point,
                        int(info.min), int(info.max))
    return y.reshape(y_t.shape).astype(y_t.dtype)
