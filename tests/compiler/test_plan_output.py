"""`mcuc plan` as a user reads it: --json leaves the working folder alone unless --svg is
given, op names are shortened at a word boundary with an ellipsis, the plot's title and
the text agree on how many schedules were searched; the memory map has a legend."""
from __future__ import annotations

import json
import re

from mcuc.cli import main
from mcuc.plan_cmd import ELLIPSIS, fit, format_plan
from tests.support.paths import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "mobilenet_tiny_int8.tflite"


def test_plan_json_writes_no_svg_unless_asked(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["plan", str(EXAMPLE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(tmp_path.iterdir()) == [] and "svg" not in report
    # With --svg: the plot is written where asked, and its title counts what the text counts.
    svg = tmp_path / "plot.svg"
    assert main(["plan", str(EXAMPLE), "--svg", str(svg)]) == 0
    out = capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["plot.svg"]
    searched_text = int(re.search(r"(\d+) patch schedules searched", out).group(1))
    title = re.search(r'font-size="13">([^<]*)</text>', svg.read_text()).group(1)
    searched_title = int(re.search(r"(\d+) patch schedules searched", title).group(1))
    assert searched_text == searched_title == report["candidates"]


def test_fit_cuts_at_a_word_boundary_with_an_ellipsis():
    name = "CONV_2D(input.19_te_transformed_bias_add)"
    assert fit(name, 60) == name
    short = fit(name, 28)
    assert len(short) <= 28 and short.endswith(ELLIPSIS)
    kept = short[:-len(ELLIPSIS)]
    assert name.startswith(kept) and name[len(kept)] in " _./:-(" or kept.endswith("(")
    assert fit("x" * 50, 10) == "x" * 7 + ELLIPSIS  # no boundary: cut at the width, still marked


def _row(name, split):
    return {"split": split, "split_op": name, "grid": [2, 2] if name else None, "patch": "p", "peak_bytes": 100,
            "exact": True, "macs": 1000, "mac_overhead": 0.01, "role": ""}


def test_plan_table_shows_whole_names_when_they_fit_and_marks_every_cut():
    long = "DEPTHWISE_CONV_2D(model/block_3/depthwise_conv/BatchNorm/FusedBatchNormV3;model/x)"
    medium = "CONV_2D(input.19_te_transformed)"  # 32 characters: the old table cut it at 28
    report = {"model": "m", "candidates": 7, "layer_by_layer_bytes": 200, "max_overhead": 0.1,
              "chosen": _row(medium, 3), "front": [_row(None, None), _row(medium, 3), _row(long, 5)]}
    lines = format_plan(report).splitlines()
    assert lines[3].split()[1:3] == ["CONV_2D", "input.19_te_transformed"]  # kind and name, whole
    kind, cell = lines[4].split()[1:3]
    name = long[len("DEPTHWISE_CONV_2D("):-1]
    assert kind == "DEPTHWISE_CONV_2D" and cell.endswith(ELLIPSIS) and name.startswith(cell[:-len(ELLIPSIS)])
    assert name[len(cell) - len(ELLIPSIS)] in " _./:-(;"


def test_plan_table_names_an_op_by_its_own_name_not_the_fused_list():
    fused = "model/conv2d_3/Relu6;model/batch_normalization_3/FusedBatchNormV3;model/conv2d_3/Conv2D"
    row = {**_row(f"CONV_2D({fused[:40]})", 3), "split_kind": "CONV_2D", "split_name": fused}
    report = {"model": "m", "candidates": 7, "layer_by_layer_bytes": 200, "max_overhead": 0.1,
              "chosen": row, "front": [_row(None, None), row]}
    line = format_plan(report).splitlines()[3]
    assert line.split()[1:3] == ["CONV_2D", "model/conv2d_3/Relu6;..."], line


def test_memory_map_has_a_legend():
    from mcuc.model import load_model
    from mcuc.passes.report import memory_svg
    from mcuc.pipeline import CompileOptions, cortexm_scratch, schedule

    program = schedule(load_model(EXAMPLE).graph, CompileOptions(), cortexm_scratch("cortex-m4"))
    svg = memory_svg(program)
    legend = svg[svg.index('<g class="legend">'):]
    legend = legend[:legend.index("</g>")]
    assert "activation tensors" in legend and "kernel scratch" in legend and "peak step" in legend
    assert legend.count("<rect") >= 3


def test_api_plan_equals_cli_plan_json(capsys):
    import mcuc

    assert main(["plan", str(EXAMPLE), "--json"]) == 0
    assert mcuc.plan(EXAMPLE) == json.loads(capsys.readouterr().out)


def test_compare_points_get_the_fewest_macs_within_their_bytes(tmp_path, capsys, monkeypatch):
    """--compare: a point at or above layer by layer is met by it (factor 1); a point below
    every schedule is not, with the smallest mcuc reaches named; a point between gets the
    fewest-MAC schedule within its bytes, whose arena really is within them. Labels are
    data: escaped in the SVG."""
    monkeypatch.chdir(tmp_path)  # the table run writes its plot here
    assert main(["plan", str(EXAMPLE), "--json"]) == 0
    base = json.loads(capsys.readouterr().out)
    lbl, chosen = base["layer_by_layer_bytes"], base["chosen"]["peak_bytes"]
    points = tmp_path / "points.csv"
    points.write_text("# where these come from\nlabel,arena_bytes,mac_factor\n"
                      f"roomy,{lbl},1.0\n\"<b>tight</b>, one byte\",1,1.4\nbetween,{chosen},1.5\n")
    svg = tmp_path / "plot.svg"
    assert main(["plan", str(EXAMPLE), "--json", "--svg", str(svg), "--compare", str(points)]) == 0
    rows = {r["label"]: r for r in json.loads(capsys.readouterr().out)["compare"]}
    assert rows["roomy"]["met"] and rows["roomy"]["mcuc_mac_factor"] == 1.0 and rows["roomy"]["peak_bytes"] == lbl
    tight = rows["<b>tight</b>, one byte"]
    assert not tight["met"] and tight["patch"] is None and "smallest peak any schedule reaches" in tight["note"]
    between = rows["between"]
    assert between["peak_bytes"] <= chosen and between["met"] == (between["mcuc_mac_factor"] <= 1.5)
    text = svg.read_text()
    assert "&lt;b&gt;tight&lt;/b&gt;" in text and "<b>" not in text and text.count('fill="#f28e2b"') >= 3 + 1
    assert main(["plan", str(EXAMPLE), "--compare", str(points)]) == 0
    table = capsys.readouterr().out
    assert re.search(r"roomy\s+[\d,]+\s+1\.000\s+[\d,]+\s+1\.000\s+yes\s+layer-by-layer", table)


def test_compare_file_errors_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.csv"
    for text, message in [("a,b,c\nx,1,1\n", "must start with the header"),
                          ("label,arena_bytes,mac_factor\nx,many,1\n", "line 2: expected"),
                          ("label,arena_bytes,mac_factor\nx,100,0.5\n", "mac_factor at least 1")]:
        bad.write_text(text)
        assert main(["plan", str(EXAMPLE), "--compare", str(bad)]) != 0
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
