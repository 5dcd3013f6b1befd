"""The small IR-building vocabulary every kernel emitter uses: typed pointers into the
arena, constant globals, counted loops, scalar slots, clamps.

Kernels are written as Python loops over `Emitter.loop`, which emit LLVM loops with
constant trip counts; LLVM then unrolls and vectorizes them (all shapes, strides and
offsets are compile-time constants, so the optimizer sees the whole index arithmetic).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import numpy as np
from llvmlite import ir

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I16 = ir.IntType(16)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
F32 = ir.FloatType()
F64 = ir.DoubleType()
VOID = ir.VoidType()

# numpy dtype name -> LLVM element type, for arena tensors and constants.
ELEMENT_TYPES: dict[str, ir.Type] = {
    "int8": I8, "uint8": I8, "int16": I16, "int32": I32, "int64": I64,
    "float32": F32, "bool": I8,
}


def element_type(dtype: str) -> ir.Type:
    return ELEMENT_TYPES[dtype]


def is_unsigned(dtype: str) -> bool:
    return dtype in ("uint8", "bool")


class ModuleContext:
    """One LLVM module under construction: owns the constant globals, deduplicated by
    content so two ops sharing a weight tensor share one global.

    `caller_buffers` (ir.program.CallerBuffer, a program whose graph inputs and outputs
    live outside the arena): every function then takes a second argument, `i8** io`,
    the caller's pointer of each buffer in that order, and `Emitter.arena_ptr` maps an
    address inside one of them to that pointer. `state` (base, bytes) is the program's
    state area (Program.state_base, state_bytes): when it is not empty `io` holds its
    pointer after the caller buffers'."""

    def __init__(self, name: str, caller_buffers: Sequence = (), state: tuple[int, int] = (0, 0)):
        self.module = ir.Module(name=name)
        self.caller_buffers = tuple(caller_buffers)
        self.state = state
        self._constants: dict[tuple[bytes, str], ir.GlobalVariable] = {}
        self._intrinsics: dict[str, ir.Function] = {}

    @property
    def has_io_table(self) -> bool:
        """Whether the functions take the `io` table (caller buffers or a state area)."""
        return bool(self.caller_buffers) or self.state[1] > 0

    def constant(self, data: np.ndarray, hint: str) -> ir.GlobalVariable:
        """A read-only global holding `data`'s bytes (any dtype, C order), aligned to 64
        bytes so vector loads of it are aligned. Returned as an i8 array global."""
        raw = np.ascontiguousarray(data).tobytes()
        key = (raw, str(np.asarray(data).dtype))
        found = self._constants.get(key)
        if found is not None:
            return found
        name = f"const.{len(self._constants)}.{_sanitize(hint)}"
        array_type = ir.ArrayType(I8, max(len(raw), 1))
        gv = ir.GlobalVariable(self.module, array_type, name=name)
        gv.initializer = ir.Constant(array_type, bytearray(raw or b"\0"))
        gv.global_constant = True
        gv.linkage = "internal"
        gv.align = 64
        self._constants[key] = gv
        return gv

    def intrinsic(self, name: str, return_type: ir.Type, arg_types: Sequence[ir.Type]) -> ir.Function:
        found = self._intrinsics.get(name)
        if found is None:
            found = ir.Function(self.module, ir.FunctionType(return_type, list(arg_types)), name=name)
            self._intrinsics[name] = found
        return found


def function_args(ctx: ModuleContext) -> list[ir.Type]:
    """The arguments of every function of the module: the arena, and with caller buffers
    or a state area the table of their pointers."""
    return [I8.as_pointer(), I8.as_pointer().as_pointer()] if ctx.has_io_table else [I8.as_pointer()]


def _sanitize(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._" else "_" for ch in text)[:48]


class Emitter:
    """Builds the body of one function `void f(i8* arena)` (`void f(i8* arena, i8** io)`
    when the module's program has caller buffers)."""

    def __init__(self, ctx: ModuleContext, name: str):
        self.ctx = ctx
        fn_type = ir.FunctionType(VOID, function_args(ctx))
        self.function = ir.Function(ctx.module, fn_type, name=name)
        self.function.args[0].name = "arena"
        self.function.args[0].add_attribute("noalias")
        self.io = None
        if ctx.has_io_table:
            self.io = self.function.args[1]
            self.io.name = "io"
        self.entry = self.function.append_basic_block("entry")
        body = self.function.append_basic_block("body")
        self.b = ir.IRBuilder(self.entry)
        jump = self.b.branch(body)
        # Stack slots go into the entry block, before its jump, where SROA finds them.
        self._entry = ir.IRBuilder(self.entry)
        self._entry.position_before(jump)
        self.b.position_at_end(body)
        self.arena = self.function.args[0]

    def finish(self) -> None:
        self.b.ret_void()

    # -- constants and pointers ------------------------------------------------------

    @staticmethod
    def i32(v: int) -> ir.Constant:
        return ir.Constant(I32, int(v))

    @staticmethod
    def i64(v: int) -> ir.Constant:
        return ir.Constant(I64, int(v))

    @property
    def args(self) -> list:
        """This function's arguments, to pass on to a function it calls."""
        return list(self.function.args)

    def base_of(self, address: int) -> tuple[ir.Value, int]:
        """(i8 pointer, its address) of the memory holding the plan's `address`: the
        arena at 0, the caller's buffer holding it or the state area (its pointer loaded
        from `io`)."""
        base, size = self.ctx.state
        if size and base <= address <= base + size:
            slot = self.b.gep(self.io, [self.i64(len(self.ctx.caller_buffers))], inbounds=True)
            return self.b.load(slot), base
        for k, b in enumerate(self.ctx.caller_buffers):
            if b.base <= address < b.end or (address == b.end and not any(
                    c.base <= address < c.end for c in self.ctx.caller_buffers)):
                slot = self.b.gep(self.io, [self.i64(k)], inbounds=True)
                return self.b.load(slot), b.base
        return self.arena, 0

    def arena_ptr(self, offset: int, dtype: str) -> ir.Value:
        """A typed pointer to the plan's address `offset` (a constant from the plan): arena
        + offset, or inside the caller buffer holding it."""
        base, start = self.base_of(offset) if self.ctx.has_io_table and offset >= 0 else (self.arena, 0)
        p = self.b.gep(base, [self.i64(offset - start)], inbounds=True)
        return self.b.bitcast(p, element_type(dtype).as_pointer())

    def const_ptr(self, data: np.ndarray, hint: str, dtype: str | None = None) -> ir.Value:
        """A typed pointer to a constant global holding `data`."""
        dtype = dtype or str(np.asarray(data).dtype)
        gv = self.ctx.constant(np.asarray(data, dtype=dtype), hint)
        p = self.b.gep(gv, [self.i64(0), self.i64(0)], inbounds=True)
        return self.b.bitcast(p, element_type(dtype).as_pointer())

    def slot(self, ty: ir.Type, name: str = "slot", count: int = 1) -> ir.Value:
        """Stack storage allocated in the entry block (so SROA promotes scalar slots
        to registers); `count` > 1 gives an array, returned as an element pointer."""
        if count == 1:
            return self._entry.alloca(ty, name=name)
        arr = self._entry.alloca(ir.ArrayType(ty, count), name=name)
        arr.align = 64
        return self._entry.gep(arr, [self.i64(0), self.i64(0)], inbounds=True)

    # -- memory ----------------------------------------------------------------------

    def load(self, ptr: ir.Value, index: ir.Value | int) -> ir.Value:
        if isinstance(index, int):
            index = self.i64(index)
        return self.b.load(self.b.gep(ptr, [index], inbounds=True))

    def store(self, value: ir.Value, ptr: ir.Value, index: ir.Value | int) -> None:
        if isinstance(index, int):
            index = self.i64(index)
        self.b.store(value, self.b.gep(ptr, [index], inbounds=True))

    def load_i32(self, ptr: ir.Value, index: ir.Value | int, dtype: str) -> ir.Value:
        """Load an integer element and widen it to i32 (zero- or sign-extended)."""
        v = self.load(ptr, index)
        return self.widen(v, dtype, I32)

    def widen(self, v: ir.Value, dtype: str, to: ir.Type) -> ir.Value:
        if v.type == to:
            return v
        if v.type.width > to.width:
            return self.b.trunc(v, to)
        return self.b.zext(v, to) if is_unsigned(dtype) else self.b.sext(v, to)

    def narrow(self, v: ir.Value, dtype: str) -> ir.Value:
        """Truncate an already-clamped i32 to the element type of `dtype`."""
        ty = element_type(dtype)
        return v if v.type == ty else self.b.trunc(v, ty)

    def memcpy(self, dst: ir.Value, src: ir.Value, nbytes: int) -> None:
        """memmove (the regions may overlap when the plan aliases buffers)."""
        if nbytes <= 0:
            return
        fn = self.ctx.intrinsic("llvm.memmove.p0i8.p0i8.i64", VOID, [I8.as_pointer(), I8.as_pointer(), I64, I1])
        self.b.call(fn, [self.b.bitcast(dst, I8.as_pointer()), self.b.bitcast(src, I8.as_pointer()),
                         self.i64(nbytes), ir.Constant(I1, 0)])

    def memset(self, dst: ir.Value, byte: int, nbytes: int) -> None:
        if nbytes <= 0:
            return
        fn = self.ctx.intrinsic("llvm.memset.p0i8.i64", VOID, [I8.as_pointer(), I8, I64, I1])
        self.b.call(fn, [self.b.bitcast(dst, I8.as_pointer()), ir.Constant(I8, byte & 0xFF),
                         self.i64(nbytes), ir.Constant(I1, 0)])

    # -- arithmetic ------------------------------------------------------------------

    def smax(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.select(self.b.icmp_signed(">", a, b), a, b)

    def smin(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.select(self.b.icmp_signed("<", a, b), a, b)

    def clamp(self, v: ir.Value, lo: int, hi: int) -> ir.Value:
        ty = v.type
        return self.smin(self.smax(v, ir.Constant(ty, lo)), ir.Constant(ty, hi))

    def add(self, a: ir.Value, b: ir.Value | int) -> ir.Value:
        if isinstance(b, int):
            if b == 0:
                return a
            b = ir.Constant(a.type, b)
        return self.b.add(a, b)

    def mul(self, a: ir.Value, b: ir.Value | int) -> ir.Value:
        if isinstance(b, int):
            if b == 1:
                return a
            b = ir.Constant(a.type, b)
        return self.b.mul(a, b)

    def index(self, terms: Sequence[tuple[ir.Value, int]], base: int = 0) -> ir.Value:
        """base + sum(index * stride) as i64: the flat element index of a tensor access."""
        acc: ir.Value = self.i64(base)
        for value, stride in terms:
            if stride == 0:
                continue
            acc = self.b.add(acc, self.mul(value, stride))
        return acc

    # -- control flow ----------------------------------------------------------------

    @contextmanager
    def loop(self, count: int, name: str = "i") -> Iterator[ir.Value]:
        """for (i64 i = 0; i < count; ++i) { body } with a constant trip count."""
        b = self.b
        if count == 1:
            # A single iteration needs no loop; the body sees the constant 0.
            yield self.i64(0)
            return
        pre = b.block
        header = b.append_basic_block(f"{name}.head")
        body = b.append_basic_block(f"{name}.body")
        done = b.append_basic_block(f"{name}.done")
        b.branch(header)
        b.position_at_end(header)
        i = b.phi(I64, name=name)
        i.add_incoming(self.i64(0), pre)
        b.cbranch(b.icmp_signed("<", i, self.i64(count)), body, done)
        b.position_at_end(body)
        yield i
        nxt = b.add(i, self.i64(1), flags=["nuw", "nsw"])
        i.add_incoming(nxt, b.block)
        b.branch(header)
        b.position_at_end(done)

    @contextmanager
    def nest(self, shape: Sequence[int], name: str = "d") -> Iterator[list[ir.Value]]:
        """Nested loops over `shape`, outermost first; yields one index per axis."""
        with _nest(self, list(shape), name, []) as indices:
            yield indices

    @contextmanager
    def if_then(self, cond: ir.Value) -> Iterator[None]:
        with self.b.if_then(cond):
            yield

    def if_else(self, cond: ir.Value):
        return self.b.if_else(cond)

    def in_range(self, v: ir.Value, lo: int, hi: int) -> ir.Value:
        """lo <= v < hi as one unsigned compare (v - lo) <u (hi - lo)."""
        shifted = self.b.sub(v, self.i64(lo)) if lo else v
        return self.b.icmp_unsigned("<", shifted, self.i64(hi - lo))


@contextmanager
def _nest(em: Emitter, shape: list[int], name: str, indices: list[ir.Value]):
    if not shape:
        yield indices
        return
    with em.loop(shape[0], f"{name}{len(indices)}") as i:
        with _nest(em, shape[1:], name, indices + [i]) as inner:
            yield inner


def strides_of(shape: Sequence[int]) -> list[int]:
    """C-order element strides."""
    strides = [1] * len(shape)
    for axis in range(len(shape) - 2, -1, -1):
        strides[axis] = strides[axis + 1] * shape[axis + 1]
    return strides
