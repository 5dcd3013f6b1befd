"""mcuc: an ahead-of-time compiler from int8 neural networks to C for Cortex-M."""
from mcuc.ir.errors import MCUCError

__all__ = ["MCUCError"]
