"""mcuc.backends.llvm: the scheduled program as native host code (llvmlite JIT).

compile_program(program, opt_level=2) -> CompiledProgram, callable on numpy arrays.
scratch_requests(op, in_place) is the scratch function to give mcuc.passes.plan.
"""
from mcuc.ir.numerics import ONNXRUNTIME, TFLITE

from .compiled import CompiledProgram, compile_program
from .scratch import scratch_requests

# The IR's rounding rules this backend implements (mcuc.ir.numerics): TFLite's
# fixed-point requantization and onnxruntime's float-scale one.
ROUNDING_RULES = (TFLITE, ONNXRUNTIME)

__all__ = ["CompiledProgram", "ROUNDING_RULES", "compile_program", "scratch_requests"]
