"""One module per op kind; this package is their registry.

Each module defines a frozen attribute dataclass and registers an `OpDef` under its
constant from `kinds.py`: everything the op means in one place (DESIGN.md, The IR),
including its `Trait`s, the kind-level facts passes rely on instead of lists of kinds
of their own (TVM keeps such op attributes on the op definition the same way). Adding
an op is one module here plus one emitter per backend.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from enum import Enum
from typing import Callable

import numpy as np

from ..errors import MCUCError
from ..op import Op
from ..region import Region


class Trait(Enum):
    """A fact about every op of a kind that a pass or an interpreter may act on.

    A trait is the kind-level fact only; conditions on an op's tensors or attributes stay
    with the code that uses it (e.g. an ELEMENTWISE op runs in place only over an input
    of its output's shape and item size, so QUANTIZE does only int8 -> int8).
    """

    # Output element i depends on input element i alone (with broadcasting), and the
    # kernels read element i before they write it: the output may be written over a
    # same-shape, same-item-size input that dies at this op (passes/aliasing.py).
    ELEMENTWISE = "elementwise"
    # Moves no bytes: the output is the input's bytes under another shape, so it may
    # share the input's offset (passes/aliasing.py, passes/order.py).
    VIEW = "view"
    # A sliding window over H and W of NHWC input 0 with kernel, stride, dilation and
    # explicit padding attributes (ir/patches.region_geometry).
    WINDOW = "window"
    # Each output element reads the input elements at its own position (with
    # broadcasting), or works along channels only, which regions never split: evaluating
    # the op on region-shaped proxies of its tensors is exact (ir/patches.region_op).
    POSITIONAL = "positional"
    # May run inside a patch stage: spatially local, NHWC in and out (passes/patch.py).
    PATCHABLE = "patchable"
    # Takes a PAD of H and W that fills with its input zero point as its own explicit
    # padding (passes/fold_pad.py).
    ABSORBS_PAD = "absorbs_pad"
    # Keeps values from one invocation to the next in state tensors (Tensor.state: its
    # OpDef's `state_inputs`), which the plan keeps outside the arena (ir/program.py).
    STATEFUL = "stateful"


@dataclass(frozen=True)
class OpDef:
    """What an op kind means.

    infer_shapes(op)           -> output shapes; raises MCUCError naming the op and the
                                  attribute when inputs/attributes are illegal
    macs(op)                   -> multiply-accumulates of one full evaluation
    input_regions(op, region)  -> for an output region, the region of each input it
                                  reads (None for constants and absent inputs); padding
                                  exists only at the full tensor's borders
    evaluate(op, inputs)       -> outputs, with the reference kernels' exact integer
                                  semantics (inputs/outputs as numpy arrays, constants
                                  included in `inputs` as their data), followed by the
                                  new value of each state input
    traits                     -> the kind's Traits (any iterable; stored frozen)
    state_inputs               -> positions of the inputs that are state tensors the op
                                  reads and rewrites in place (Trait.STATEFUL kinds)
    """

    kind: str
    attrs: type | None
    infer_shapes: Callable[[Op], list[tuple[int, ...]]]
    macs: Callable[[Op], int]
    input_regions: Callable[[Op, Region], list[Region | None]]
    evaluate: Callable[[Op, list[np.ndarray]], list[np.ndarray]]
    traits: frozenset[Trait] = frozenset()
    state_inputs: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "traits", frozenset(self.traits))
        if self.state_inputs and Trait.STATEFUL not in self.traits:
            raise RuntimeError(f"op kind {self.kind}: state inputs need Trait.STATEFUL")

    def has(self, trait: Trait) -> bool:
        return trait in self.traits


_REGISTRY: dict[str, OpDef] = {}


def register(opdef: OpDef) -> OpDef:
    if opdef.kind in _REGISTRY:
        raise RuntimeError(f"op kind {opdef.kind} registered twice")
    _REGISTRY[opdef.kind] = opdef
    return opdef


def op_def(kind: str) -> OpDef:
    """The definition of an op kind, or MCUCError if mcuc does not support it."""
    _load_all()
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise MCUCError(f"op kind {kind} is not supported by mcuc "
                        f"(supported: {', '.join(sorted(_REGISTRY))})") from None


def supported_kinds() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def kinds_with(trait: Trait) -> frozenset[str]:
    """Every registered kind that has `trait`."""
    _load_all()
    return frozenset(kind for kind, opdef in _REGISTRY.items() if opdef.has(trait))


_loaded = False


def _load_all() -> None:
    """Import every module of this package once; each op module registers its OpDef
    (common, kinds, ort_float and ort_u8s8 hold what several op modules share)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
