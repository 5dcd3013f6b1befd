"""`mcuc run` says what it did on success: one line with the outputs' shapes and dtypes
and the file it wrote."""
from __future__ import annotations

import numpy as np

from mcuc.cli import main, run_summary
from tests.support.paths import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "mobilenet_tiny_int8.tflite"


def test_run_prints_one_line_naming_shapes_dtypes_and_file(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 48, 48, 3), np.int8))
    out_file = tmp_path / "y.npy"
    code = main(["run", str(EXAMPLE), "--input", str(tmp_path / "x.npy"), "--output", str(out_file)])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    y = np.load(out_file)
    assert out == f"ran mobilenet_tiny_int8 on reference: wrote output [1, 10] int8 to {out_file}\n"
    assert list(y.shape) == [1, 10] and y.dtype == np.int8


def test_summary_of_several_outputs_names_each_array():
    line = run_summary("m", "llvm", [np.zeros((1, 4), np.int8), np.zeros((2,), np.float32)], "o.npz")
    assert line == "ran m on llvm: wrote 2 outputs arr_0 [1, 4] int8, arr_1 [2] float32 to o.npz"
