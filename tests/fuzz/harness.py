"""The fuzz harness: each case runs in a worker process (tests/fuzz/worker.py) under an
address-space limit, with a wall-clock timeout, so that no case can take the run down.
The parent classifies what came back:

    ok-refused   every mcuc command that failed printed one clean error and exited non-zero
    ok-bitexact  compiled, the oracle accepted it, reference and llvm equal the oracle
    traceback    an exception other than MCUCError escaped mcuc's main()
    hang         no answer within the timeout (60 s)
    crash        the worker died (a signal, the address-space limit)
    mismatch     verify exited 1: a backend differs from an accepting oracle
    text-leak    generated C holds model text outside comments and string literals, or a
                 comment that a model name could end or nest

scripts/fuzz.py and tests/fuzz/test_fuzz.py drive it.
"""
from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.paths import REPO_ROOT

CLASSES = ("ok-refused", "ok-bitexact", "traceback", "hang", "crash", "mismatch", "text-leak")
FAILURES = ("traceback", "hang", "crash", "mismatch", "text-leak")
ADDRESS_SPACE_LIMIT = 2 * 1024**3


# -- generated C: code outside comments and literals --------------------------------------

def c_code_and_comments(source: str) -> tuple[str, list[str], list[str]]:
    """(the code with every comment and string/char literal blanked, the comments'
    bodies, problems). A problem is a comment that opens another (/* inside /* */), one
    that is never closed, a // comment whose line ends in a backslash or ??/ (it would
    continue onto the next line) or a literal left open at the end of a line."""
    code: list[str] = []
    comments: list[str] = []
    problems: list[str] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        two = source[i:i + 2]
        if two == "/*":
            end = source.find("*/", i + 2)
            if end < 0:
                problems.append(f"unterminated comment at offset {i}")
                break
            body = source[i + 2:end]
            if "/*" in body:
                problems.append(f"nested comment opener in {body[:80]!r}")
            comments.append(body)
            code.append(" ")
            i = end + 2
        elif two == "//":
            end = source.find("\n", i)
            end = n if end < 0 else end
            body = source[i + 2:end]
            if body.endswith("\\") or body.endswith("??/"):
                problems.append(f"line comment continued onto the next line: {body[-80:]!r}")
            comments.append(body)
            code.append(" ")
            i = end
        elif c in "\"'":
            j = i + 1
            while j < n and source[j] != c:
                if source[j] == "\n":
                    problems.append(f"literal left open at offset {i}")
                    break
                j += 2 if source[j] == "\\" else 1
            code.append(" ")
            i = j + 1
        else:
            code.append(c)
            i += 1
    return "".join(code), comments, problems


def text_leaks(files: dict[str, str], names: list[str], marker: str) -> list[str]:
    """Where model text reached generated C raw: the injection marker as an identifier in
    code, a model name with characters no identifier has appearing in code, non-ASCII
    code, a comment problem (`c_code_and_comments`) or a line of a comment body that
    would be a preprocessor line."""
    found = []
    marker_re = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(marker)}(?![A-Za-z0-9_])")
    odd_names = [n for n in set(names) if len(n) >= 6 and re.search(r"[^A-Za-z0-9_]", n) and n.strip()]
    for filename, source in files.items():
        if filename.endswith((".c", ".h")):
            code, comments, problems = c_code_and_comments(source)
            found += [f"{filename}: {p}" for p in problems]
        else:  # a Makefile: its own comment syntax; model text may only appear as a comment
            code = "\n".join(line.split("#", 1)[0] for line in source.splitlines())
        if marker_re.search(code):
            found.append(f"{filename}: the injected identifier {marker!r} is in the code")
        if any(ord(ch) > 127 for ch in code):
            found.append(f"{filename}: non-ASCII text in the code")
        if "??" in source:
            found.append(f"{filename}: a trigraph-like '??' sequence")
        for name in odd_names:
            if name in code:
                found.append(f"{filename}: model name {name[:60]!r} in the code")
    return found


# -- the worker ---------------------------------------------------------------------------

@dataclass
class Outcome:
    cls: str
    detail: str = ""
    seconds: float = 0.0
    stages: dict = field(default_factory=dict)
    long_messages: list = field(default_factory=list)


class Runner:
    """One worker process at a time; `run(path, fmt)` -> Outcome. A hang kills the
    worker's whole process group (the oracle's worker with it) and starts a new one; so
    does a crash. Every `recycle` cases the worker is replaced (its caches grow)."""

    def __init__(self, timeout: float = 60.0, limit: int = ADDRESS_SPACE_LIMIT, recycle: int = 150,
                 verify_samples: int = 2, workdir: str | None = None, nice: int = 0):
        self.timeout = timeout
        self.limit = limit
        self.recycle = recycle
        self.samples = verify_samples
        self.nice = nice
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="fuzz_work_", dir="/tmp"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.cases_in_worker = 0
        self.peak_rss_kb = 0  # the largest ru_maxrss a worker (or its oracle) reported

    def _start(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(REPO_ROOT)])), PYTHONUNBUFFERED="1",
                   OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        limit, nice = self.limit, self.nice

        def limits():
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if nice:
                os.nice(nice)

        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.worker", str(self.samples)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     cwd=self.workdir, env=env, preexec_fn=limits, start_new_session=True,
                                     text=True, bufsize=1)
        self.cases_in_worker = 0

    def _kill(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._note_children()
        self.proc = None

    def _note_children(self) -> None:
        self.peak_rss_kb = max(self.peak_rss_kb, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except Exception:
                self._kill()
            self._note_children()
            self.proc = None

    def run(self, path: Path, fmt: str) -> Outcome:
        if self.proc is None or self.cases_in_worker >= self.recycle:
            self.close()
            self._start()
        self.cases_in_worker += 1
        start = time.monotonic()
        import selectors

        try:
            self.proc.stdin.write(json.dumps({"path": str(path), "format": fmt}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        line = ""
        # the worker may print nothing else on stdout: its answer is one JSON line
        while True:
            left = self.timeout - (time.monotonic() - start)
            if left <= 0:
                sel.close()
                self._kill()
                return Outcome("hang", f"no answer in {self.timeout:.0f} s", time.monotonic() - start)
            if not sel.select(timeout=min(left, 5.0)):
                continue
            line = self.proc.stdout.readline()
            break
        sel.close()
        seconds = time.monotonic() - start
        if not line:
            code = self.proc.wait()
            self._note_children()
            self.proc = None
            return Outcome("crash", f"worker died (exit {code})", seconds)
        answer = json.loads(line)
        self.peak_rss_kb = max(self.peak_rss_kb, answer.get("maxrss_kb", 0))
        return Outcome(answer["class"], answer.get("detail", ""), seconds, answer.get("stages", {}),
                       answer.get("long_messages", []))
