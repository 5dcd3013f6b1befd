"""`mcuc --version` and `mcuc.__version__` come from one source: setup.cfg's version
(through the installed package metadata, or setup.cfg itself in a checkout never installed)."""
from __future__ import annotations

import configparser
import importlib.metadata
import subprocess
import sys

import mcuc
from mcuc.cli import main
from tests.support.paths import REPO_ROOT


def _setup_cfg_version() -> str:
    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / "setup.cfg")
    return cfg["metadata"]["version"]


def test_version_is_setup_cfg_version():
    assert mcuc.__version__ == _setup_cfg_version() == importlib.metadata.version("mcuc")
    assert mcuc.__version__ not in (None, "", "0+unknown")


def test_cli_version_prints_the_same(capsys):
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    else:
        raise AssertionError("--version must exit")
    assert capsys.readouterr().out == f"mcuc {_setup_cfg_version()}\n"


def test_console_script_version():
    proc = subprocess.run([sys.executable, "-m", "mcuc", "--version"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 0 and proc.stdout.strip() == f"mcuc {_setup_cfg_version()}"


def test_source_checkout_without_metadata_reads_setup_cfg(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    from mcuc.version import read_version

    assert read_version() == _setup_cfg_version()
