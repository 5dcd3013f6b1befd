"""mcuc.backends.llvm: the scheduled program as native host code (llvmlite JIT).

compile_program(program, opt_level=2) -> CompiledProgram, callable on numpy arrays.
scratch_requests(op, in_place) is the scratch function to give mcuc.passes.plan.
"""
from .compiled import CompiledProgram, compile_program
from .scratch import scratch_requests

__all__ = ["CompiledProgram", "compile_program", "scratch_requests"]
