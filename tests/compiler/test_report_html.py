"""report.html beside report.json: well-formed (every element closed in order, checked with
html.parser), model strings escaped, the per-layer table equal to report.json's figures,
the memory map with its legend inline, the trade-off plot only when a schedule was
searched, the verification result when this run verified."""
from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np

import mcuc
from mcuc.cli import main
from tests.support.paths import REPO_ROOT
from tests.support.tflite_builder import ModelBuilder

EXAMPLE = REPO_ROOT / "examples" / "mobilenet_tiny_int8.tflite"
HOSTILE = '<script>alert("x")</script>&\'<b>'
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class StrictStructure(HTMLParser):
    """Every non-void element closed, in order; counts of start tags; the text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: dict[str, int] = {}
        self.text: list[str] = []
        self.doctype = False

    def handle_decl(self, decl):
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]} (line {self.getpos()[0]})")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> StrictStructure:
    p = StrictStructure()
    p.feed(html)
    p.close()
    assert p.doctype and not p.errors and not p.stack, (p.errors, p.stack)
    return p


def hostile_model() -> bytes:
    rng = np.random.default_rng(0)
    mb = ModelBuilder()
    x = mb.tensor("input" + HOSTILE, (1, 6, 6, 3), "int8", 0.02, 0)
    w = mb.tensor("w", (4, 3, 3, 3), "int8", [0.01] * 4, [0] * 4, data=rng.integers(-127, 128, (4, 3, 3, 3)))
    b = mb.tensor("b", (4,), "int32", [0.0002] * 4, [0] * 4, data=rng.integers(-500, 500, 4))
    y = mb.tensor(HOSTILE, (1, 6, 6, 4), "int8", 0.05, -3)
    mb.op("CONV_2D", [x, w, b], [y], padding="SAME")
    return mb.build([x], [y])


def test_report_html_is_well_formed_escapes_model_strings_and_matches_report_json(tmp_path, capsys):
    model = tmp_path / "hostile.tflite"
    model.write_bytes(hostile_model())
    assert main(["compile", str(model), "-o", str(tmp_path / "out"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    html = (tmp_path / "out" / "report.html").read_text()
    p = parse(html)
    assert "<script" not in html and "&lt;script&gt;" in html and "<b>" not in html
    assert HOSTILE in "".join(p.text)  # shown as text, exactly
    # One table row per step (plus the header) and the figures of report.json.
    steps = report["memory"]
    assert p.tags["tr"] == len(steps) + 1 and p.tags["svg"] == 1  # the memory map; no trade-off plot
    assert f"{report['arena_bytes']:,} B" in html and "kernel scratch" in html  # memory map legend
    for row in steps:
        assert f"{row['live_bytes']:,}" in html
        for o in row["outputs"]:
            assert f"{o['size']:,} B @ {o['offset']:,}" in html
    assert "Not verified in this run" in html


def test_trade_off_plot_when_searched_and_verification_when_verified(tmp_path):
    mcuc.compile_to_directory(str(EXAMPLE), tmp_path / "auto", patch="auto")
    html = (tmp_path / "auto" / "report.html").read_text()
    p = parse(html)
    assert p.tags["svg"] == 2 and "Patch schedules searched" in html and "patch schedules searched" in html

    from mcuc.model import load_model
    from mcuc.pipeline import CompileOptions, cortexm_scratch, schedule
    from mcuc.report import program_report
    from mcuc.report_html import render

    loaded = load_model(EXAMPLE)
    program = schedule(loaded.graph, CompileOptions(), cortexm_scratch("cortex-m4"))
    verification = mcuc.verify(str(EXAMPLE), backends=["reference"], samples=2)
    report = {**program_report(program, "cortex-m4", "nhwc"), "optimize": "speed"}
    html = render(report, program, None, verification)
    parse(html)
    assert "2 random samples" in html and 'class="ok">bit-exact' in html
    verification["backends"]["reference"].update(bit_exact=False, mismatched_samples=[1])
    assert 'class="bad">MISMATCH on samples [1]' in render(report, program, None, verification)
