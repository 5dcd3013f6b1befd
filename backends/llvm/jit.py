"""JIT compilation of generated LLVM IR with llvmlite's MCJIT, and an in-process cache
keyed by the IR's hash (equal programs compile once per process)."""
from __future__ import annotations

import ctypes
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import llvmlite.binding as llvm

_init_lock = threading.Lock()
_initialized = False


def _new_target_machine() -> llvm.TargetMachine:
    """A target machine for the host CPU (its vector extensions are what make the
    kernels fast). Each execution engine needs its own: llvmlite's MCJIT engine takes
    ownership of the target machine it is given and frees it with the engine, so a
    shared one would be freed under the others' feet."""
    global _initialized
    with _init_lock:
        if not _initialized:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            _initialized = True
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
                                        opt=3, reloc="default", codemodel="jitdefault")


@dataclass
class JitModule:
    """A compiled module kept alive with its engine; `address(name)` gives a symbol."""

    engine: llvm.ExecutionEngine
    module: llvm.ModuleRef

    def function(self, name: str, restype, *argtypes):
        address = self.engine.get_function_address(name)
        if not address:
            raise RuntimeError(f"JIT module has no function {name!r}")
        return ctypes.CFUNCTYPE(restype, *argtypes)(address)


# Compiled modules by (IR hash, opt level), least recently used dropped first; a
# compiled program keeps its own module alive, so eviction never breaks a caller.
_CACHE_ENTRIES = 64
_cache: "OrderedDict[tuple[str, int], JitModule]" = OrderedDict()
_cache_lock = threading.Lock()


def ir_hash(ir_text: str) -> str:
    return hashlib.sha256(ir_text.encode()).hexdigest()


def jit_compile(ir_text: str, opt_level: int = 2) -> tuple[JitModule, bool]:
    """Compile LLVM IR text (cached by content and opt level). Returns the module and
    whether it came from the cache."""
    key = (ir_hash(ir_text), int(opt_level))
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found, True
    tm = _new_target_machine()
    module = llvm.parse_assembly(ir_text)
    module.triple = tm.triple
    module.data_layout = str(tm.target_data)
    module.verify()
    if opt_level > 0:
        _optimize(module, tm, opt_level)
    engine = llvm.create_mcjit_compiler(module, tm)
    engine.finalize_object()
    engine.run_static_constructors()
    compiled = JitModule(engine, module)
    with _cache_lock:
        _cache.setdefault(key, compiled)
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_ENTRIES:
            _cache.popitem(last=False)
        return _cache[key], False


def _optimize(module: llvm.ModuleRef, tm: llvm.TargetMachine, opt_level: int) -> None:
    """LLVM's standard -O<n> pipeline with loop and SLP vectorization."""
    options = llvm.create_pipeline_tuning_options(speed_level=min(int(opt_level), 3))
    options.loop_vectorization = True
    options.slp_vectorization = True
    options.loop_unrolling = False
    builder = llvm.create_pass_builder(tm, options)
    manager = builder.getModulePassManager()
    manager.run(module, builder)


def clear_cache() -> None:
    """Forget compiled modules (tests use it to measure a cold compile)."""
    with _cache_lock:
        _cache.clear()
