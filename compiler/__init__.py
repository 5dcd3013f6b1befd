"""mcuc: an ahead-of-time compiler from int8 neural networks to C for Cortex-M.

    import mcuc
    model = mcuc.compile("model.tflite", backend="llvm")
    y = model(x)
"""
from mcuc.ir.errors import MCUCError

__all__ = ["MCUCError", "compile", "compile_to_directory", "verify", "validate", "bench", "plan",
           "CompiledModel", "__version__"]


def _read_version() -> str:
    """The version, from one source: setup.cfg's `[metadata] version`. An installed mcuc
    reads it from its package metadata (written from setup.cfg at install time); a source
    checkout that was never installed reads setup.cfg itself."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mcuc")
    except PackageNotFoundError:
        return _source_version()


def _source_version() -> str:
    import configparser
    from pathlib import Path

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parent.parent / "setup.cfg")
    return cfg.get("metadata", "version", fallback="0+unknown")


def __getattr__(name):
    # The API imports the whole pipeline; load it on first use so `import mcuc.ir`
    # and the CLI's start-up stay light.
    if name in ("compile", "compile_to_directory", "verify", "validate", "bench", "plan", "CompiledModel"):
        from mcuc import api

        return getattr(api, name)
    if name == "__version__":
        value = globals()["__version__"] = _read_version()
        return value
    raise AttributeError(name)
