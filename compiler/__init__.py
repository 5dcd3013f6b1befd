"""mcuc: an ahead-of-time compiler from int8 neural networks to C for Cortex-M.

    import mcuc
    model = mcuc.compile("model.tflite", backend="llvm")
    y = model(x)
"""
from mcuc.ir.errors import MCUCError

__all__ = ["MCUCError", "compile", "verify"]


def __getattr__(name):
    # The API imports the whole pipeline; load it on first use so `import mcuc.ir`
    # and the CLI's start-up stay light.
    if name in ("compile", "verify", "CompiledModel"):
        from mcuc import api

        return getattr(api, name)
    raise AttributeError(name)
