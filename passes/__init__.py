"""mcuc.passes: graph-to-graph passes and scheduling (imports only mcuc.ir).

plan(graph, scratch=None, optimize=True) -> Program is the entry point backends use.
"""
from .plan import plan

__all__ = ["plan"]
