#!/usr/bin/env python3
"""The on-demand fuzz run (issue 18): mutated TFLite and ONNX model files, half byte-level
and half structured, each through `mcuc inspect`, `compile --target cortex-m4` and
`verify --backends reference,llvm` in a worker process with a 60 s timeout and a 2 GB
address-space limit (tests/fuzz/harness.py). Prints the count per class and the peak
memory, and writes a JSON report (rewritten as the run goes, so a run cut short still
leaves its counts).

    .venv/bin/python scripts/fuzz.py --cases 10000 --out /tmp/fuzz_report.json
    nice -n 19 .venv/bin/python scripts/fuzz.py --cases 200 --seed 7 --formats onnx

A case is reproducible from (seed, index): `--only INDEX` reruns one, `--keep DIR` keeps
the file of every failing case.
"""
from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz.harness import CLASSES, FAILURES, Runner  # noqa: E402
from tests.fuzz.mutations import make_case  # noqa: E402


def case_plan(index: int, formats: list[str]) -> tuple[str, bool]:
    """Case `index`'s format and whether its mutation is structured: the formats
    alternate, and every other pair is structured, so any prefix of the run is balanced."""
    fmt = formats[index % len(formats)]
    structured = (index // len(formats)) % 2 == 1
    return fmt, structured


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=200)
    p.add_argument("--out", default=None, help="JSON report (counts, peak memory, every failure)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--formats", default="tflite,onnx")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per case before it counts as a hang")
    p.add_argument("--samples", type=int, default=2, help="verify samples per case")
    p.add_argument("--only", type=int, default=None, help="run only case INDEX")
    p.add_argument("--keep", default=None, help="folder for the files of failing cases")
    p.add_argument("--hours", type=float, default=None, help="stop after this long")
    args = p.parse_args(argv)

    def stop(signum, frame):  # a run in the background (SIGINT ignored there) stops on SIGTERM too
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    keep = Path(args.keep) if args.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="fuzz_cases_", dir="/tmp"))
    runner = Runner(timeout=args.timeout, verify_samples=args.samples)
    counts: Counter = Counter()
    by_mutation: dict[str, Counter] = {}
    failures: list[dict] = []
    long_messages: list[str] = []
    ran = 0
    started = time.monotonic()
    indices = [args.only] if args.only is not None else range(args.cases)

    def report() -> dict:
        return {"command": " ".join(sys.argv), "seed": args.seed, "cases_planned": len(indices), "cases_run": ran,
                "seconds": round(time.monotonic() - started, 1), "counts": {c: counts.get(c, 0) for c in CLASSES},
                "peak_rss_mb": round(runner.peak_rss_kb / 1024, 1),
                "messages_over_300_chars": len(long_messages), "long_message_examples": long_messages[:100],
                "by_mutation": {k: dict(v) for k, v in sorted(by_mutation.items())}, "failures": failures}

    def save() -> None:
        if args.out:
            Path(args.out).write_text(json.dumps(report(), indent=1))

    try:
        for index in indices:
            if args.hours is not None and time.monotonic() - started > args.hours * 3600:
                break
            fmt, structured = case_plan(index, formats)
            rng = random.Random(f"{args.seed}:{index}")
            base, data, label = make_case(rng, fmt, structured)
            path = tmp / f"case.{fmt}"
            path.write_bytes(data)
            outcome = runner.run(path, fmt)
            ran += 1
            counts[outcome.cls] += 1
            long_messages += outcome.long_messages
            by_mutation.setdefault(label, Counter())[outcome.cls] += 1
            if outcome.cls in FAILURES:
                entry = {"index": index, "base": base.name, "mutation": label, "class": outcome.cls,
                         "detail": outcome.detail[:3000], "seconds": round(outcome.seconds, 1)}
                if keep:
                    kept = keep / f"case{index}_{base.name}.{fmt}"
                    kept.write_bytes(data)
                    entry["file"] = str(kept)
                failures.append(entry)
                print(f"[{index}] {outcome.cls} {base.name} {label}: {outcome.detail[:300]}", flush=True)
            if ran % 25 == 0:
                save()
                print(f"{ran} cases, {dict(counts)}, peak {runner.peak_rss_kb / 1024:.0f} MB, "
                      f"{time.monotonic() - started:.0f} s", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    finally:
        runner.close()
        save()
    summary = report()
    print(f"cases run: {ran} of {len(indices)} in {summary['seconds']} s")
    for c in CLASSES:
        print(f"  {c:12s} {counts.get(c, 0)}")
    print(f"peak memory (ru_maxrss of the workers and their oracles): {summary['peak_rss_mb']} MB")
    print(f"error messages over 300 characters: {len(long_messages)}")
    return 1 if any(counts.get(c, 0) for c in FAILURES) else 0


if __name__ == "__main__":
    sys.exit(main())
