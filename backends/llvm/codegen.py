"""Program -> LLVM module: one internal function per step, called in order by
`void invoke(i8* arena)` (`void invoke(i8* arena, i8** io)` when the graph inputs and
outputs live in caller buffers or the program has a state area: `io` holds the caller's
pointer of each buffer, Program.caller_buffers' order, then the state area's).

Every activation is addressed at the planned arena offset (Program.offsets), so a wrong
memory plan shows up as wrong bytes, exactly as on the microcontroller.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from llvmlite import ir

from mcuc.ir.errors import MCUCError
from mcuc.ir.op import Op
from mcuc.ir.program import Program, Step
from mcuc.ir.tensor import Tensor

from .emitter import VOID, Emitter, ModuleContext, element_type, function_args

INVOKE = "invoke"


@dataclass
class KernelCall:
    """What a kernel emitter gets: the emitter for its step's function, the step, and
    the program (for arena offsets). `pointers` overrides where some tensors live (a
    patch stage runs its inner ops on region-shaped proxies held in patch buffers or
    stack temporaries)."""

    em: Emitter
    step: Step
    program: Program
    index: int
    pointers: dict = field(default_factory=dict)

    @property
    def op(self) -> Op:
        return self.step.op

    def offset(self, tensor: Tensor) -> int:
        try:
            return self.program.offsets[tensor]
        except KeyError:
            raise MCUCError(f"step {self.index} {self.op.label}: tensor {tensor.name!r} has no arena "
                            f"offset in the memory plan; re-run mcuc.passes.plan on the graph") from None

    def ptr(self, tensor: Tensor):
        """A typed pointer to `tensor`'s bytes in the arena."""
        found = self.pointers.get(tensor)
        if found is not None:
            return self.em.b.bitcast(found, element_type(tensor.dtype).as_pointer())
        return self.em.arena_ptr(self.offset(tensor), tensor.dtype)

    def same_place(self, a: Tensor, b: Tensor) -> bool:
        """Whether two tensors start at the same arena byte (an aliased reshape)."""
        if a in self.pointers or b in self.pointers:
            return False
        return self.offset(a) == self.offset(b)

    def value_ptr(self, tensor: Tensor):
        """A typed pointer to a tensor's values: a constant global for constants, the
        arena otherwise."""
        if tensor.is_constant and tensor not in self.pointers:
            return self.em.const_ptr(tensor.data, self.hint(tensor.name), tensor.dtype)
        return self.ptr(tensor)

    def hint(self, what: str = "") -> str:
        return f"s{self.index}.{self.op.kind.lower()}{'.' + what if what else ''}"


def build_module(program: Program) -> ir.Module:
    """The LLVM module of a scheduled program."""
    from .kernels import emitter_for

    ctx = ModuleContext(program.graph.name, program.caller_buffers, (program.state_base, program.state_bytes))
    step_functions = []
    for index, step in enumerate(program.steps):
        emit = emitter_for(step.op, index)
        em = Emitter(ctx, f"step{index}.{step.op.kind.lower()}")
        em.function.linkage = "internal"
        # One function per step keeps every optimization pass working on one kernel;
        # inlining all of them into `invoke` would only make the optimizer slower.
        em.function.attributes.add("noinline")
        emit(KernelCall(em, step, program, index))
        em.finish()
        step_functions.append(em.function)
    invoke = ir.Function(ctx.module, ir.FunctionType(VOID, function_args(ctx)), name=INVOKE)
    builder = ir.IRBuilder(invoke.append_basic_block("entry"))
    for fn in step_functions:
        builder.call(fn, list(invoke.args))
    builder.ret_void()
    return ctx.module
