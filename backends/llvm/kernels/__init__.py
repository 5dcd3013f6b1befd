"""One emitter per op kind: kind -> function(KernelCall) that emits the step's body.

Each module here registers the kinds it implements; `emitter_for` refuses an op kind
with no emitter (no op is ever skipped silently).
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

from mcuc.ir.errors import MCUCError
from mcuc.ir.op import Op

KernelEmitter = Callable[["KernelCall"], None]  # noqa: F821 (codegen.KernelCall)

_EMITTERS: dict[str, KernelEmitter] = {}


def register(*kinds: str) -> Callable[[KernelEmitter], KernelEmitter]:
    def add(fn: KernelEmitter) -> KernelEmitter:
        for kind in kinds:
            if kind in _EMITTERS:
                raise RuntimeError(f"llvm backend: two emitters for {kind}")
            _EMITTERS[kind] = fn
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
    return sorted(_EMITTERS)


def emitter_for(op: Op, index: int) -> KernelEmitter:
    _load_all()
    try:
        return _EMITTERS[op.kind]
    except KeyError:
        raise MCUCError(f"step {index} {op.label}: the llvm backend has no kernel for {op.kind} "
                        f"(it supports {', '.join(supported_kinds())})") from None
