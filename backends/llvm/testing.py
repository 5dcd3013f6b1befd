"""Programs without a memory planner: every activation at its own arena offset.

The plan-independent baseline for testing kernels alone (a kernel that is right here
and wrong under mcuc.passes.plan points at the plan or at in-place handling)."""
from __future__ import annotations

from mcuc.ir.graph import Graph
from mcuc.ir.program import Program, Step


def separate_buffers_program(graph: Graph, align: int = 16) -> Program:
    """Each activation tensor in its own aligned interval; no aliasing, no in-place."""
    offsets = {}
    cursor = 0
    for t in graph.activations:
        offsets[t] = cursor
        cursor += (t.nbytes + align - 1) // align * align
    return Program(graph, tuple(Step(op) for op in graph.ops), offsets, cursor)


# -- the LLVM fixed-point functions as array kernels, for property tests -------------

FIXEDPOINT_FUNCTIONS = ("saturating_rounding_doubling_high_mul", "rounding_divide_by_pot",
                        "multiply_by_quantized_multiplier")


class FixedPointKernels:
    """The fixed-point helpers of backends/llvm/fixedpoint.py JIT-compiled as loops over
    int32 arrays: `kernels(name, a, b, c)` applies one of FIXEDPOINT_FUNCTIONS
    elementwise (b, c unused where the function takes fewer arguments; for
    multiply_by_quantized_multiplier, a = x, b = multiplier, c = TFLite shift)."""

    def __init__(self, length: int = 4096):
        import numpy as np

        from . import fixedpoint as fp
        from .emitter import I32, Emitter, ModuleContext
        from .jit import jit_compile

        self.length = length
        ctx = ModuleContext("fixedpoint_kernels")
        for name in FIXEDPOINT_FUNCTIONS:
            em = Emitter(ctx, name)
            base = em.b.bitcast(em.arena, I32.as_pointer())
            with em.loop(length, "i") as i:
                a = em.load(base, i)
                b = em.load(base, em.b.add(i, em.i64(length)))
                c = em.load(base, em.b.add(i, em.i64(2 * length)))
                if name == "saturating_rounding_doubling_high_mul":
                    y = fp.saturating_rounding_doubling_high_mul(em, a, b)
                elif name == "rounding_divide_by_pot":
                    y = fp.rounding_divide_by_pot(em, a, b)
                else:
                    left = em.smax(c, em.i32(0))
                    right = em.smax(em.b.neg(c), em.i32(0))
                    y = fp.multiply_by_quantized_multiplier(em, a, b, left, right)
                em.store(y, base, em.b.add(i, em.i64(3 * length)))
            em.finish()
        self._jit, _ = jit_compile(str(ctx.module))
        import ctypes
        self._functions = {name: self._jit.function(name, None, ctypes.c_void_p) for name in FIXEDPOINT_FUNCTIONS}
        self._np = np

    def __call__(self, name: str, a, b=0, c=0):
        np = self._np
        a, b, c = np.broadcast_arrays(*(np.asarray(v, np.int64) for v in (a, b, c)))
        out = np.empty(a.shape, np.int64)
        flat_a, flat_b, flat_c, flat_out = a.reshape(-1), b.reshape(-1), c.reshape(-1), out.reshape(-1)
        n = self.length
        for start in range(0, flat_a.size, n):
            stop = min(start + n, flat_a.size)
            buf = np.zeros(4 * n, np.int32)
            buf[0:stop - start] = flat_a[start:stop]
            buf[n:n + stop - start] = flat_b[start:stop]
            buf[2 * n:2 * n + stop - start] = flat_c[start:stop]
            self._functions[name](buf.ctypes.data)
            flat_out[start:stop] = buf[3 * n:3 * n + stop - start]
        return out
