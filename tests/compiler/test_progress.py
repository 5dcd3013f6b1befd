"""Progress of `mcuc verify` (samples x backends) shows on a terminal only, never with
--json and never when stderr is not a terminal."""
from __future__ import annotations

import sys

import pytest

from mcuc.cli import main
from tests.support.paths import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "mobilenet_tiny_int8.tflite"
ARGV = ["verify", str(EXAMPLE), "--backends", "reference", "--samples", "3"]


def _stderr_is_a_terminal(monkeypatch, yes: bool):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: yes)


@pytest.mark.parametrize("terminal, json_mode, shown", [(True, False, True), (True, True, False),
                                                        (False, False, False)])
def test_progress_only_on_a_terminal_and_never_with_json(capsys, monkeypatch, terminal, json_mode, shown):
    pytest.importorskip("tqdm")
    _stderr_is_a_terminal(monkeypatch, terminal)
    assert main(ARGV + (["--json"] if json_mode else [])) == 0
    err = capsys.readouterr().err
    assert ("verify mobilenet_tiny_int8" in err and "/3 [" in err) == shown, err
    if not shown:
        assert err == ""
