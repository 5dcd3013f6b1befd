"""The fuzz worker (`python -m tests.fuzz.worker SAMPLES`, started by harness.Runner):
reads one JSON case per line on stdin ({"path", "format"}), runs mcuc on the file as a
user would (`inspect`, `compile --target cortex-m4`, `verify --backends reference,llvm`)
through the CLI's main() in this process, and answers one JSON line:
{"class", "detail", "stages", "maxrss_kb", "long_messages"}.

Anything the commands print goes to /dev/null (native code included): the answers go
to a private copy of the original stdout.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import sys
import tempfile
import traceback
from pathlib import Path

from tests.fuzz.harness import text_leaks
from tests.fuzz.mutations import INJECTION_MARKER


def _maxrss_kb() -> int:
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def _cli(argv: list[str]) -> tuple[str, int | None, str]:
    """("ran", exit code, stderr) or ("traceback", None, the traceback)."""
    from mcuc.cli import main

    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(argv)
    except SystemExit as e:  # argparse
        return "ran", int(e.code or 0), err.getvalue()
    except MemoryError:
        return "memory", None, "MemoryError: " + traceback.format_exc()[-2000:]
    except BaseException:  # noqa: BLE001 - exactly what the fuzz run looks for
        return "traceback", None, traceback.format_exc()[-4000:]
    return "ran", code, err.getvalue()


def _names(path: str) -> list[str]:
    from mcuc.model import load_model

    graph = load_model(path).graph
    names = [graph.name]
    for op in graph.ops:
        names.append(op.name)
        names += [t.name for t in (*op.inputs, *op.outputs) if t is not None]
    return names


def run_case(path: str, samples: int, out_dir: Path) -> dict:
    stages: dict[str, object] = {}
    long_messages: list[str] = []

    def refused(stage: str, code: int, err: str) -> dict | None:
        nonlocal long_messages
        lines = [line for line in err.strip().splitlines() if line.strip()]
        stages[stage] = code
        if "Traceback" in err:
            return {"class": "traceback", "detail": f"{stage}: {err[-3000:]}"}
        if not lines:
            return {"class": "traceback", "detail": f"{stage}: exit {code} without a message"}
        if any(len(line) > 300 for line in lines):
            long_messages.append(max(lines, key=len)[:1000])
        return None

    status, code, err = _cli(["inspect", path])
    if status != "ran":
        return {"class": "traceback" if status == "traceback" else "crash", "detail": f"inspect: {err}"}
    if code != 0:
        bad = refused("inspect", code, err)
        return bad or {"class": "ok-refused", "detail": f"inspect: {err.strip()[:300]}", "stages": stages,
                       "long_messages": long_messages}
    stages["inspect"] = 0

    status, code, err = _cli(["compile", path, "--target", "cortex-m4", "-o", str(out_dir), "--force"])
    if status != "ran":
        return {"class": "traceback" if status == "traceback" else "crash", "detail": f"compile: {err}"}
    if code != 0:
        bad = refused("compile", code, err)
        return bad or {"class": "ok-refused", "detail": f"compile: {err.strip()[:300]}", "stages": stages,
                       "long_messages": long_messages}
    stages["compile"] = 0
    files = {f: (out_dir / f).read_text(errors="replace") for f in ("model.c", "model.h", "Makefile")
             if (out_dir / f).is_file()}
    leaks = text_leaks(files, _names(path), INJECTION_MARKER)
    if leaks:
        return {"class": "text-leak", "detail": "; ".join(leaks)[:3000], "stages": stages}

    status, code, err = _cli(["verify", path, "--backends", "reference,llvm", "--samples", str(samples), "--json"])
    if status != "ran":
        return {"class": "traceback" if status == "traceback" else "crash", "detail": f"verify: {err}"}
    stages["verify"] = code
    if code == 0:
        return {"class": "ok-bitexact", "stages": stages, "long_messages": long_messages}
    if code == 1:
        return {"class": "mismatch", "detail": "verify: a backend differs from the oracle", "stages": stages}
    bad = refused("verify", code, err)
    return bad or {"class": "ok-refused", "detail": f"verify: {err.strip()[:300]}", "stages": stages,
                   "long_messages": long_messages}


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    out_dir = Path(tempfile.mkdtemp(prefix="fuzz_project_", dir="/tmp"))
    for line in sys.stdin:
        case = json.loads(line)
        try:
            answer = run_case(case["path"], samples, out_dir)
        except BaseException:  # noqa: BLE001 - the worker's own bug is reported, not hidden
            answer = {"class": "traceback", "detail": "worker: " + traceback.format_exc()[-3000:]}
        answer["maxrss_kb"] = _maxrss_kb()
        answers.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
