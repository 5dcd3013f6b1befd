"""One module per op kind; this package is their registry.

Each module defines a frozen attribute dataclass and registers an `OpDef`: everything
the op means in one place (DESIGN.md, The IR). Adding an op is one module here plus one
emitter per backend.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import MCUCError
from ..op import Op
from ..region import Region


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
                                  included in `inputs` as their data)
    """

    kind: str
    attrs: type | None
    infer_shapes: Callable[[Op], list[tuple[int, ...]]]
    macs: Callable[[Op], int]
    input_regions: Callable[[Op, Region], list[Region | None]]
    evaluate: Callable[[Op, list[np.ndarray]], list[np.ndarray]]


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


_loaded = False


def _load_all() -> None:
    """Import every module of this package once; each registers its OpDef."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
