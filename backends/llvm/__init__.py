"""mcuc.backends.llvm: the scheduled program as native host code (llvmlite JIT).

compile_program(program, opt_level=2) -> CompiledProgram, callable on numpy arrays.
"""
from .compiled import CompiledProgram, compile_program

__all__ = ["CompiledProgram", "compile_program"]
