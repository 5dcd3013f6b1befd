"""One emitter per (op kind, numerics type): the function(KernelCall) that emits the step's
body for an op of that kind whose attributes carry that rule (mcuc.ir.numerics).

Each module here registers what it implements. An emitter registered without a numerics
type serves every rule (ops that only move bytes, or whose tables come from the op's own
evaluate). `emitter_for` refuses an op with no emitter for its kind and rule: no op is
ever skipped, and no op runs under another rule than its own.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

from mcuc.ir.errors import MCUCError
from mcuc.ir.numerics import numerics_type
from mcuc.ir.op import Op

KernelEmitter = Callable[["KernelCall"], None]  # noqa: F821 (codegen.KernelCall)

_EMITTERS: dict[tuple[str, type | None], KernelEmitter] = {}


def register(*kinds: str, numerics: type | tuple[type, ...] | None = None) -> Callable[[KernelEmitter], KernelEmitter]:
    """Register an emitter for `kinds` under `numerics` (one type or several; None: every
    rule the op may carry)."""
    rules = numerics if isinstance(numerics, tuple) else (numerics,)

    def add(fn: KernelEmitter) -> KernelEmitter:
        for kind in kinds:
            for rule in rules:
                if (kind, rule) in _EMITTERS:
                    raise RuntimeError(f"llvm backend: two emitters for {kind} under {rule}")
                _EMITTERS[kind, rule] = fn
        return fn
    return add


_loaded = False


def _load_all() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{info.name}")


def supported_kinds() -> list[str]:
    _load_all()
    return sorted({kind for kind, _ in _EMITTERS})


def emitter_for(op: Op, index: int) -> KernelEmitter:
    _load_all()
    rule = numerics_type(op.attrs)
    found = _EMITTERS.get((op.kind, rule)) or _EMITTERS.get((op.kind, None))
    if found is not None:
        return found
    if op.kind in supported_kinds():
        have = sorted(r.__name__ for k, r in _EMITTERS if k == op.kind and r is not None)
        raise MCUCError(f"step {index} {op.label}: the llvm backend has no {op.kind} kernel under "
                        f"{rule.__name__} numerics (it has {', '.join(have)})")
    raise MCUCError(f"step {index} {op.label}: the llvm backend has no kernel for {op.kind} "
                    f"(it supports {', '.join(supported_kinds())})")
