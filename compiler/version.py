"""mcuc's version, from one source: setup.cfg's `[metadata] version`. An installed mcuc
reads it from its package metadata (written from setup.cfg at install time); a source
checkout that was never installed reads setup.cfg itself. `mcuc.__version__`, `mcuc
--version` and report.html show it."""
from __future__ import annotations


def read_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mcuc")
    except PackageNotFoundError:
        return source_version()


def source_version() -> str:
    import configparser
    from pathlib import Path

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parent.parent / "setup.cfg")
    return cfg.get("metadata", "version", fallback="0+unknown")
