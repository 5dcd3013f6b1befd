"""The public face of the LLVM backend: compile a Program, call it on numpy arrays."""
from __future__ import annotations

import ctypes
import threading
import time
import weakref
from typing import Sequence

import numpy as np

from mcuc.ir.errors import MCUCError
from mcuc.ir.interpreter import check_inputs
from mcuc.ir.program import Program

from .codegen import INVOKE, build_module
from .jit import JitModule, jit_compile

_ARENA_ALIGN = 64


class CompiledProgram:
    """A program JIT-compiled to host code. `compiled(inputs) -> outputs` copies the
    inputs into the arena at their planned offsets, runs `invoke`, and copies the
    outputs out. One instance owns one arena, so calls on it are serialized. With
    caller buffers (Program.caller_buffers) the inputs and outputs go into buffers of
    their own (`caller_arrays`, each 64-byte aligned), whose pointers `invoke` takes in
    a table; an input buffer holding other bytes after the run is an MCUCError. A
    program with state tensors keeps them in `state` (its state area, after the caller
    buffers in that table), which every call reads and rewrites: calls form one stream
    until `reset_state()`."""

    def __init__(self, program: Program, jit: JitModule, ir_text: str, jit_seconds: float, cached: bool):
        self.program = program
        self.ir_text = ir_text
        self.jit_seconds = jit_seconds
        self.from_cache = cached
        self._jit = jit
        caller = program.caller_buffers
        table = bool(caller) or program.state_bytes > 0
        self._invoke = jit.function(INVOKE, None, ctypes.c_void_p, *((ctypes.c_void_p,) if table else ()))
        storage = np.zeros(max(program.arena_bytes, 1) + _ARENA_ALIGN, np.uint8)
        start = (-storage.ctypes.data) % _ARENA_ALIGN
        self._storage = storage
        self.arena = storage[start:start + max(program.arena_bytes, 1)]
        self._arena_address = self.arena.ctypes.data
        self._lock = threading.Lock()
        graph = program.graph
        self._inputs = [(t, program.offsets[t]) for t in graph.inputs]
        self._outputs = [(t, None if t.is_constant else program.offsets[t]) for t in graph.outputs]
        # One aligned array per caller buffer, and the pointer table `invoke` reads.
        self.caller_arrays = [_aligned(b.tensor.nbytes) for b in caller]
        self._caller = {b.base: (b, a) for b, a in zip(caller, self.caller_arrays)}
        self.state = _aligned(program.state_bytes)
        self.reset_state()
        pointers = [a.ctypes.data for a in self.caller_arrays] + ([self.state.ctypes.data] if program.state_bytes else [])
        self._table = (ctypes.c_void_p * max(len(pointers), 1))(*pointers)
        self._args = (self._arena_address, ctypes.addressof(self._table)) if table else (self._arena_address,)

    def reset_state(self) -> None:
        """Every state tensor back to its reset value (the next call starts a new stream)."""
        self.state[:self.program.state_bytes] = self.program.reset_state_area()

    def _view(self, offset: int, tensor) -> np.ndarray:
        found = self._caller.get(offset)
        memory = self.arena[offset:offset + tensor.nbytes] if found is None else found[1]
        return memory.view(tensor.dtype).reshape(tensor.shape)

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        arrays = check_inputs(self.program.graph, inputs)
        with self._lock:
            for (tensor, offset), x in zip(self._inputs, arrays):
                self._view(offset, tensor)[...] = x
            given = [a.copy() for b, a in self._caller.values() if b.role == "input"]
            self._invoke(*self._args)
            after = [a for b, a in self._caller.values() if b.role == "input"]
            if any(not np.array_equal(x, y) for x, y in zip(given, after)):
                raise MCUCError(f"{self.program.graph.name}: invoke wrote into a caller's input buffer")
            return [t.data.copy() if offset is None else self._view(offset, t).copy()
                    for t, offset in self._outputs]


def _aligned(nbytes: int) -> np.ndarray:
    """`nbytes` bytes at a 64-byte aligned address (at least one byte)."""
    storage = np.zeros(max(nbytes, 1) + _ARENA_ALIGN, np.uint8)
    start = (-storage.ctypes.data) % _ARENA_ALIGN
    return storage[start:start + max(nbytes, 1)][:nbytes] if nbytes else storage[start:start + 1]


# (id(program), opt level) -> its compiled program while anyone holds that compiled program
# (weak values: a compiled program references its Program, so a weak-key map would
# keep both alive forever). Dropped entries still find their machine code in the
# JIT's cache by IR hash.
_by_program: "weakref.WeakValueDictionary[tuple[int, int], CompiledProgram]" = weakref.WeakValueDictionary()


def compile_program(program: Program, opt_level: int = 2) -> CompiledProgram:
    """Generate LLVM IR for `program` and JIT-compile it at -O`opt_level`.

    Compiled code is cached in memory: the same Program object returns its compiled
    program at once (while it is alive); an equal program (same IR text) reuses the
    machine code. `jit_seconds` is the wall time this compile took: IR generation plus
    LLVM optimization and code generation, or IR generation alone when the machine
    code came from the cache (`from_cache`)."""
    key = (id(program), int(opt_level))
    found = _by_program.get(key)
    if found is not None and found.program is program:
        return found
    start = time.perf_counter()
    ir_text = str(build_module(program))
    jit, cached = jit_compile(ir_text, opt_level)
    compiled = CompiledProgram(program, jit, ir_text, time.perf_counter() - start, cached)
    _by_program[key] = compiled
    return compiled
