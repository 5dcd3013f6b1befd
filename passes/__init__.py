"""mcuc.passes: graph-to-graph passes and scheduling (imports only mcuc.ir).

Graph -> Graph passes (run by the compiler's pipeline, each runnable alone):
  fold_pad, depthwise_as_conv (a single-channel multiplier depthwise as its conv),
  strip_edge_quantization (--io int8), prune_channels (channels no reader
  uses: zero weights skipped), order_for_memory
Scheduling: plan(graph, scratch=None, optimize=True) -> Program, the entry point
backends use: order.py (least-peak topological order), intervals.py (the steps each
tensor is live), aliasing.py (RESHAPE/CONCAT aliases, in-place and overlapping ops ->
storage groups), lifetimes.py (pieces with intervals, live-set bound), allocate.py
(greedy best/first fit, exact search for few buffers), plan.py (tries the variants,
keeps the smallest arena); regions.py (--memory: the planned buffers moved into memory
regions, place_in_regions).
Reports: report.memory_svg(program), report.memory_table(program), report.memory_rows.
"""
from .depthwise_as_conv import depthwise_as_conv
from .fold_pad import fold_pad
from .order import order_for_memory
from .plan import plan
from .prune_channels import prune_channels, removed_macs
from .strip_edge_quantization import strip_edge_quantization

__all__ = ["depthwise_as_conv", "fold_pad", "order_for_memory", "plan", "prune_channels", "removed_macs", "strip_edge_quantization"]
