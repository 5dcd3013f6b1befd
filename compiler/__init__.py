"""mcuc: an ahead-of-time compiler from int8 neural networks to C for Cortex-M.

    import mcuc
    model = mcuc.compile("model.tflite", backend="llvm")
    y = model(x)
"""
from mcuc.ir.errors import MCUCError

__all__ = ["MCUCError", "compile", "compile_to_directory", "verify", "validate", "bench", "plan",
           "CompiledModel", "__version__"]


def __getattr__(name):
    # The API imports the whole pipeline; load it on first use so `import mcuc.ir`
    # and the CLI's start-up stay light.
    if name in ("compile", "compile_to_directory", "verify", "validate", "bench", "plan", "CompiledModel"):
        from mcuc import api

        return getattr(api, name)
    if name == "__version__":
        from mcuc.version import read_version

        value = globals()["__version__"] = read_version()
        return value
    raise AttributeError(name)
