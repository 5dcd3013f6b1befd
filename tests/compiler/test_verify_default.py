"""`mcuc verify MODEL` without --backends runs the generated C: reference, llvm, c-host,
and the --target core in the emulator when arm-none-eabi-gcc is present; it says what it
checked and why a backend was left out. `mcuc.verify(model)` has the same default."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import mcuc
import mcuc.backend_registry as registry
from mcuc.cli import main
from tests.support.tflite_builder import single_op_model

HAS_ARM = shutil.which("arm-none-eabi-gcc") is not None


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A one-layer model: the default builds every backend, so it has to be small."""
    path = tmp_path_factory.mktemp("verify_default") / "fc.tflite"
    path.write_bytes(single_op_model("FULLY_CONNECTED", [(1, 16)], np.random.default_rng(4), units=8))
    return path


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _no_toolchain(monkeypatch, *, arm=True, host=False):
    from mcuc.ir.errors import MCUCError

    def missing(what):
        def find():
            raise MCUCError(f"{what} was not found: install it")
        return find
    if arm:
        monkeypatch.setattr("mcuc.backends.cortexm.toolchain.find_arm_gcc", missing("arm-none-eabi-gcc"))
    if host:
        monkeypatch.setattr("mcuc.backends.cortexm.chost.find_host_gcc", missing("gcc"))


@pytest.mark.skipif(not HAS_ARM, reason="arm-none-eabi-gcc is not installed")
def test_default_runs_the_generated_c_on_host_and_target_core(small, capsys):
    code, out, _ = run_cli(capsys, "verify", small, "--samples", "1", "--target", "cortex-m0", "--json")
    report = json.loads(out)
    assert code == 0
    assert report["backends_checked"] == ["reference", "llvm", "c-host", "cortex-m0"]
    assert list(report["backends"]) == report["backends_checked"] and report["backends_default"] is True
    assert all(v["bit_exact"] for v in report["backends"].values())
    assert "backends_skipped" not in report
    # The API's default is the same, for the same target.
    api = mcuc.verify(str(small), samples=1, target="cortex-m0")
    assert api["backends_checked"] == report["backends_checked"] and api["backends"] == report["backends"]


def test_default_fails_when_the_generated_c_differs(small, capsys, monkeypatch):
    """The default really runs c-host: a c-host off by one byte makes it exit 1."""
    _no_toolchain(monkeypatch, arm=True)

    def off_by_one(model, options):
        built = registry._reference(model, options)

        def wrong(inputs):
            outs = [o.copy() for o in built.run(inputs)]
            outs[0].flat[0] = np.int8(outs[0].flat[0] ^ 1)
            return outs
        return registry.Built(wrong, built.plan)

    monkeypatch.setitem(registry._FACTORIES, "c-host", off_by_one)
    code, out, _ = run_cli(capsys, "verify", small, "--samples", "1")
    assert code == 1
    assert "c-host       MISMATCH" in out


def test_missing_toolchains_are_named_with_the_reason(small, capsys, monkeypatch):
    _no_toolchain(monkeypatch, arm=True, host=True)
    code, out, _ = run_cli(capsys, "verify", small, "--samples", "1", "--target", "cortex-m7")
    assert code == 0
    assert "cortex-m7    skipped: arm-none-eabi-gcc was not found" in out
    assert "c-host       skipped: gcc was not found" in out
    assert out.rstrip().splitlines()[-1] == "checked reference, llvm (the default; --backends chooses)"
    code, out, _ = run_cli(capsys, "verify", small, "--samples", "1", "--target", "cortex-m7", "--json")
    report = json.loads(out)
    assert report["backends_checked"] == ["reference", "llvm"]
    assert set(report["backends_skipped"]) == {"c-host", "cortex-m7"}
    api = mcuc.verify(str(small), samples=1, target="cortex-m7")
    assert api["backends_checked"] == ["reference", "llvm"] and api["backends_skipped"] == report["backends_skipped"]


def test_named_backends_are_exactly_those(small, capsys):
    code, out, _ = run_cli(capsys, "verify", small, "--backends", "reference", "--samples", "1")
    assert code == 0 and out.rstrip().splitlines()[-1] == "checked reference"
    assert mcuc.verify(str(small), backends="reference", samples=1)["backends_checked"] == ["reference"]
