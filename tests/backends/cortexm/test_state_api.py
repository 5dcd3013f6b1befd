"""The generated C API of a model that keeps state (an SVDF stack): <name>_reset_state()
starts a new stream, <name>_state() saves and restores one, <name>_STATE_BYTES sizes it,
and the state is an array of its own, apart from the arena. Built with the host's gcc
and a main of this test, run against the reference's streams."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from mcuc.backends.cortexm.chost import SANITIZE, find_host_gcc
from mcuc.backends.cortexm.project import write_project
from mcuc.backends.cortexm.target import TARGETS
from mcuc.backends.cortexm.toolchain import make_library
from mcuc.frontend.tflite import load_tflite
from mcuc.ir.interpreter import reset_state, run
from mcuc.pipeline import CompileOptions, cortexm_scratch, schedule
from tests.ir.test_ops_svdf import Layer, stream, svdf_model

_MAIN = r"""
#include <stdio.h>
#include <string.h>
#include "model.h"

/* Frames in argv order on stdin (MODEL_INPUT_0_BYTES each); per frame one output line. The
 * run: frames 0..n-1 as one stream; then a reset and frame 0 again; then the state saved
 * after frame 0, frames 1..n-1 of a second stream run over it, the state restored and
 * frame 1 again (it must give the first stream's frame 1). */
static int8_t frames[16][MODEL_INPUT_0_BYTES];
static uint8_t saved[MODEL_STATE_BYTES];

static void invoke_print(int k) {
    const int8_t *y = (const int8_t *)model_output(0);
    int i;
    memcpy(model_input(0), frames[k], MODEL_INPUT_0_BYTES);
    if (model_invoke() != MODEL_OK) {
        printf("invoke failed\n");
        return;
    }
    for (i = 0; i < (int)MODEL_OUTPUT_0_BYTES; ++i) {
        printf("%d ", y[i]);
    }
    printf("\n");
}

int main(void) {
    int n = 0, k;
    while (n < 16 && fread(frames[n], 1, MODEL_INPUT_0_BYTES, stdin) == MODEL_INPUT_0_BYTES) {
        ++n;
    }
    for (k = 0; k < n; ++k) {
        invoke_print(k);
        if (k == 0) {
            memcpy(saved, model_state(), MODEL_STATE_BYTES);
        }
    }
    model_reset_state();
    invoke_print(0);
    for (k = 1; k < n; ++k) {
        invoke_print(k);
    }
    memcpy(model_state(), saved, MODEL_STATE_BYTES);
    invoke_print(1);
    return 0;
}
"""


@pytest.mark.parametrize("zero_point", [0, -9])
def test_reset_save_and_restore_through_the_generated_api(tmp_path, zero_point):
    model = svdf_model([Layer(4, 2, 5), Layer(3, 1, 3, "int8", zero_point)], inputs=10, seed=4)
    graph = load_tflite(model)
    program = schedule(graph, CompileOptions(), cortexm_scratch("cortex-m0"))
    project = write_project(program, tmp_path / "project", TARGETS["host"], name="model")
    header, source = (project / "model.h").read_text(), (project / "model.c").read_text()
    assert f"#define MODEL_STATE_BYTES {program.state_bytes}u" in header
    assert "void model_reset_state(void);" in header and "void *model_state(void);" in header
    assert "the model keeps no state" not in header
    # An int8 state with a zero point starts from it: the array is initialized data.
    assert ("static uint8_t model_state_area[" in source) and ((" = {" in source.split("model_state_area[")[1]
                                                                 .split(";")[0]) == bool(zero_point))
    gcc = find_host_gcc()
    library = make_library(project, "host", tmp_path / "build", opt="-O1", extra_cflags=f"-g {SANITIZE}",
                           make_vars={"CC": gcc})
    main = tmp_path / "main.c"
    main.write_text(_MAIN)
    exe = tmp_path / "stream"
    subprocess.run([gcc, "-O1", "-g", *SANITIZE.split(), "-std=c11", "-Wall", "-Wextra", "-Werror", "-I",
                    str(project), str(main), str(library), "-o", str(exe)], check=True)
    frames = stream(1, 10, 6, 8)
    done = subprocess.run([str(exe)], input=b"".join(f.tobytes() for f in frames), capture_output=True, check=True)
    lines = [[int(v) for v in line.split()] for line in done.stdout.decode().splitlines()]
    state = reset_state(graph)
    want = [run(graph, [x], state=state)[0].reshape(-1).tolist() for x in frames]
    assert lines[:6] == want  # one stream
    assert lines[6:12] == want  # reset: the same stream again
    assert lines[12] == want[1]  # the state after frame 0 restored: frame 1 as in the first stream
    assert want[1] != run(graph, [frames[1]])[0].reshape(-1).tolist()  # which needs that state
