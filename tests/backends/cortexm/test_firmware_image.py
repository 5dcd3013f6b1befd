"""Generated models inside real firmware: two models compiled with different `--name`s
and the hard-float ABI link into one bare-metal ELF with the user's own main, run in the
emulated Cortex-M4, and give tflite-micro's bytes; the same with one caller-provided
arena in a named linker section shared by both models (`--arena caller`), and with the
static arena moved into a named section by `<NAME>_ARENA_SECTION`, and with one model
over two memory regions (`--memory`), one of them in a named section, and with its
weights in RAM (`--weights-in-ram`). Two models of the
same name do not link. With `--io-buffers caller` the firmware passes its own input and
output buffers to `<name>_invoke_io`, which refuses bad ones and never writes an input.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

import mcuc
from mcuc.ir.errors import MCUCError
from mcuc.oracle import TFLiteOracle
from tests.support.tflite_builder import ModelBuilder, int8_weights, int32_bias, random_int8

if shutil.which("arm-none-eabi-gcc") is None or shutil.which("make") is None:
    pytest.skip("arm-none-eabi-gcc and make are needed (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi make)",
                allow_module_level=True)

from mcuc.backends.cortexm.emulator import Emulator  # noqa: E402
from mcuc.backends.cortexm.target import get_target  # noqa: E402
from mcuc.backends.cortexm.toolchain import (FLASH_BYTES, FLASH_ORIGIN, RAM_BYTES, RAM_ORIGIN,  # noqa: E402
                                             find_arm_gcc, make_library, run_tool, write_harness)

HARD_M4 = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")


def small_model(seed: int, h: int, w: int, c: int, oc: int, units: int) -> bytes:
    """conv 3x3 (RELU6) -> depthwise 3x3 -> reshape -> fully connected: the main kernels,
    small enough to build and emulate in a second."""
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()

    def quant():
        return float(rng.uniform(0.01, 0.1)), int(rng.integers(-20, 20))

    def conv(name, x, x_scale, shape, out_c, kind):
        w_shape, axis = ((out_c, 3, 3, shape[3]), 0) if kind == "CONV_2D" else ((1, 3, 3, out_c), 3)
        weights, scales = int8_weights(rng, w_shape, axis=axis)
        wt = mb.tensor(f"{name}_w", w_shape, "int8", scales, np.zeros(scales.size, np.int64), axis=axis,
                       data=weights)
        bias_scales = (np.float64(x_scale) * scales.astype(np.float64)).astype(np.float32)
        bt = mb.tensor(f"{name}_b", (out_c,), "int32", bias_scales, np.zeros(out_c, np.int64),
                       data=int32_bias(rng, out_c))
        scale, zp = quant()
        out_shape = (1, shape[1], shape[2], out_c)
        y = mb.tensor(name, out_shape, "int8", scale, zp)
        options = {"padding": "SAME", "stride_w": 1, "stride_h": 1, "fused_activation_function": "RELU6"}
        if kind != "CONV_2D":
            options["depth_multiplier"] = 1
        mb.op(kind, [x, wt, bt], [y], **options)
        return y, scale, zp, out_shape

    scale, zp = quant()
    x = mb.tensor("input", (1, h, w, c), "int8", scale, zp)
    a, a_scale, _, a_shape = conv("conv", x, scale, (1, h, w, c), oc, "CONV_2D")
    b, b_scale, b_zp, b_shape = conv("depthwise", a, a_scale, a_shape, oc, "DEPTHWISE_CONV_2D")
    flat = int(np.prod(b_shape))
    r = mb.tensor("flat", (1, flat), "int8", b_scale, b_zp)
    mb.op("RESHAPE", [b, mb.const("shape", [1, flat])], [r])
    weights, scales = int8_weights(rng, (units, flat), axis=0, per_channel=False)
    wt = mb.tensor("fc_w", (units, flat), "int8", scales, np.zeros(1, np.int64), data=weights)
    bt = mb.tensor("fc_b", (units,), "int32", np.float32(b_scale * scales[0]), 0, data=int32_bias(rng, units))
    out_scale, out_zp = quant()
    y = mb.tensor("logits", (1, units), "int8", out_scale, out_zp)
    mb.op("FULLY_CONNECTED", [r, wt, bt], [y])
    return mb.build([x], [y])


MODELS = {"alpha": (1, 8, 8, 4, 8, 4), "beta": (2, 6, 10, 3, 12, 6)}


@pytest.fixture(scope="module")
def models() -> dict[str, bytes]:
    return {name: small_model(*spec) for name, spec in MODELS.items()}


MAIN_C = r"""
/* A firmware's own code around two generated models: copy each input in through the
 * model's API, invoke, copy each output out. */
#include <stdint.h>
#include <string.h>

#include "alpha/model.h"
#include "beta/model.h"

int8_t fw_in_alpha[ALPHA_INPUT_0_BYTES], fw_out_alpha[ALPHA_OUTPUT_0_BYTES];
int8_t fw_in_beta[BETA_INPUT_0_BYTES], fw_out_beta[BETA_OUTPUT_0_BYTES];
%(arena_decl)s
int fw_run(void);
int fw_run(void)
{
%(body)s
}

extern uint32_t __stack_top;
extern uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end;
void Reset_Handler(void);
void Default_Handler(void);
void fw_done(void);
volatile int fw_status = -1;

__attribute__((section(".isr_vector"), used))
void (*const fw_vectors[4])(void) = {
    (void (*)(void))(&__stack_top), Reset_Handler, Default_Handler, Default_Handler,
};

void Default_Handler(void)
{
    for (;;) {
        __asm__ volatile("bkpt #1");
    }
}

/* From reset: the FPU on (CPACR: full access to CP10 and CP11, as hard-float code
 * needs), .data copied, .bss zeroed, then the models. The emulator calls fw_run. */
void Reset_Handler(void)
{
    uint32_t *src = &__data_load;
    uint32_t *dst = &__data_start;
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    while (dst < &__data_end) {
        *dst++ = *src++;
    }
    for (dst = &__bss_start; dst < &__bss_end; ++dst) {
        *dst = 0;
    }
    fw_status = fw_run();
    fw_done();
}

/* Where a run from reset ends. */
__attribute__((noinline, noreturn)) void fw_done(void)
{
    for (;;) {
        __asm__ volatile("bkpt #0");
    }
}
"""

STATIC_BODY = """    memcpy(alpha_input(0), fw_in_alpha, ALPHA_INPUT_0_BYTES);
    memcpy(beta_input(0), fw_in_beta, BETA_INPUT_0_BYTES);
    if (alpha_invoke() != ALPHA_OK || beta_invoke() != BETA_OK) {
        return 1;
    }
    memcpy(fw_out_alpha, alpha_output(0), ALPHA_OUTPUT_0_BYTES);
    memcpy(fw_out_beta, beta_output(0), BETA_OUTPUT_0_BYTES);
    return 0;"""

# One arena for both models (they never run at the same time), in the section .fw_arena.
CALLER_ARENA = """#define FW_ARENA_BYTES (ALPHA_ARENA_BYTES > BETA_ARENA_BYTES ? ALPHA_ARENA_BYTES : BETA_ARENA_BYTES)
uint8_t fw_arena[FW_ARENA_BYTES + ALPHA_ARENA_ALIGN]
    __attribute__((aligned(ALPHA_ARENA_ALIGN), section(".fw_arena")));
"""

CALLER_BODY = """    /* A misaligned or missing arena is refused before anything runs. */
    if (alpha_invoke(fw_arena + 1) != ALPHA_ERROR_ARENA || beta_invoke((void *)0) != BETA_ERROR_ARENA) {
        return 2;
    }
    memcpy(alpha_input(fw_arena, 0), fw_in_alpha, ALPHA_INPUT_0_BYTES);
    if (alpha_invoke(fw_arena) != ALPHA_OK) {
        return 1;
    }
    memcpy(fw_out_alpha, alpha_output(fw_arena, 0), ALPHA_OUTPUT_0_BYTES);
    memcpy(beta_input(fw_arena, 0), fw_in_beta, BETA_INPUT_0_BYTES);
    if (beta_invoke(fw_arena) != BETA_OK) {
        return 1;
    }
    memcpy(fw_out_beta, beta_output(fw_arena, 0), BETA_OUTPUT_0_BYTES);
    return 0;"""

# --io-buffers caller with --arena caller: the firmware's own arrays (aligned as
# <NAME>_IO_ALIGN asks) are the models' inputs and outputs; bad buffers are refused before
# anything runs (status 2).
IO_ARRAYS = """int8_t fw_in_alpha[ALPHA_INPUT_0_BYTES] __attribute__((aligned(ALPHA_IO_ALIGN)));
int8_t fw_out_alpha[ALPHA_OUTPUT_0_BYTES] __attribute__((aligned(ALPHA_IO_ALIGN)));
int8_t fw_in_beta[BETA_INPUT_0_BYTES] __attribute__((aligned(BETA_IO_ALIGN)));
int8_t fw_out_beta[BETA_OUTPUT_0_BYTES] __attribute__((aligned(BETA_IO_ALIGN)));
"""
IO_BODY = """    const void *const in_alpha[1] = {fw_in_alpha};
    void *const out_alpha[1] = {fw_out_alpha};
    const void *const in_beta[1] = {fw_in_beta};
    void *const out_beta[1] = {fw_out_beta};
    const void *const misaligned[1] = {fw_in_alpha + 1};
    void *const over_input[1] = {fw_in_alpha};
    void *const over_arena[1] = {fw_arena + 8};
    const void *const missing[1] = {(void *)0};
    if (alpha_invoke_io(fw_arena, misaligned, out_alpha) != ALPHA_ERROR_IO
        || alpha_invoke_io(fw_arena, in_alpha, over_input) != ALPHA_ERROR_IO
        || alpha_invoke_io(fw_arena, in_alpha, over_arena) != ALPHA_ERROR_IO
        || alpha_invoke_io(fw_arena, missing, out_alpha) != ALPHA_ERROR_IO
        || alpha_invoke_io(fw_arena, (void *)0, out_alpha) != ALPHA_ERROR_IO
        || alpha_invoke_io(fw_arena + 1, in_alpha, out_alpha) != ALPHA_ERROR_ARENA) {
        return 2;
    }
    if (alpha_invoke_io(fw_arena, in_alpha, out_alpha) != ALPHA_OK
        || beta_invoke_io(fw_arena, in_beta, out_beta) != BETA_OK) {
        return 1;
    }
    return 0;"""

ARENA_RULES = """  .fw_arena (NOLOAD) : { . = ALIGN(8); *(.fw_arena) *(.fw_arena_alpha) } > RAM

  .bss (NOLOAD) : {"""


def build_image(tmp: Path, models: dict[str, bytes], names: tuple[str, str], *, arena: str = "static",
                alpha_cflags: str = "", io_buffers: str = "arena", alpha_memory: str | None = None,
                alpha_weights_in_ram: str | None = None) -> Path:
    """Compile both models (float ABI hard; alpha over the memory regions `alpha_memory`),
    build each library with its Makefile, and link them with MAIN_C into one ELF; return it."""
    gcc = find_arm_gcc()
    cross = str(gcc)[: -len("gcc")]
    libraries = []
    for folder, (model_name, model) in zip(("alpha", "beta"), zip(names, models.values())):
        project = tmp / folder
        mcuc.compile_to_directory(model, project, target="cortex-m4", name=model_name, float_abi="hard",
                                  arena=arena, io_buffers=io_buffers,
                                  memory=alpha_memory if folder == "alpha" else None,
                                  weights_in_ram=alpha_weights_in_ram if folder == "alpha" else None)
        libraries.append(make_library(project, "cortex-m4", tmp / f"build-{folder}", opt="-O2",
                                      extra_cflags=alpha_cflags if folder == "alpha" else "",
                                      make_vars={"CROSS": cross}))  # FLOAT_ABI: the folder's default
    write_harness(tmp, "unused")  # its link.ld, with a rule for the firmware's arena section
    link_ld = (tmp / "link.ld").read_text()
    assert "  .bss (NOLOAD) : {" in link_ld
    (tmp / "link.ld").write_text(link_ld.replace("  .bss (NOLOAD) : {", ARENA_RULES, 1))
    body = IO_BODY if io_buffers == "caller" else CALLER_BODY if arena == "caller" else STATIC_BODY
    main_c = MAIN_C % {"arena_decl": CALLER_ARENA if arena == "caller" else "", "body": body}
    if io_buffers == "caller":
        arrays = ("int8_t fw_in_alpha[ALPHA_INPUT_0_BYTES], fw_out_alpha[ALPHA_OUTPUT_0_BYTES];\n"
                  "int8_t fw_in_beta[BETA_INPUT_0_BYTES], fw_out_beta[BETA_OUTPUT_0_BYTES];\n")
        assert arrays in main_c
        main_c = main_c.replace(arrays, IO_ARRAYS)
    (tmp / "main.c").write_text(main_c)
    elf = tmp / "firmware.elf"
    run_tool([str(gcc), *HARD_M4, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(tmp),
              "-ffunction-sections", "-fdata-sections", "-nostartfiles", "--specs=nano.specs",
              "-T", str(tmp / "link.ld"), "-Wl,--gc-sections", str(tmp / "main.c"),
              *map(str, libraries), "-o", str(elf)], "linking the two-model firmware")
    return elf


def run_both(elf: Path, models: dict[str, bytes], seed: int,
             inputs_after: dict | None = None) -> tuple[dict[str, bytes], dict[str, bytes], int]:
    """(emulated outputs, tflite-micro outputs, fw_run's status) on random inputs;
    `inputs_after` (a dict) receives each input's bytes (given, after the run)."""
    emulator = Emulator(elf, get_target("cortex-m4"), (FLASH_ORIGIN, FLASH_BYTES), (RAM_ORIGIN, RAM_BYTES))
    rng = np.random.default_rng(seed)
    inputs = {name: random_int8(rng, (1, *MODELS[name][1:4])) for name in models}
    writes = [(emulator.symbol(f"fw_in_{name}").address, x.tobytes()) for name, x in inputs.items()]
    reads = [(emulator.symbol(f"fw_out_{name}").address, MODELS[name][5]) for name in models]
    reads += [(address, len(data)) for address, data in writes]
    call = emulator.call("fw_run", writes=writes, reads=reads, count_instructions=False)
    got = dict(zip(models, call.reads))
    if inputs_after is not None:
        inputs_after.update({name: (data, after) for (name, (_, data)), after
                             in zip(zip(models, writes), call.reads[len(models):])})
    expected = {name: TFLiteOracle(model)([inputs[name]])[0].tobytes() for name, model in models.items()}
    return got, expected, call.return_value


def section_of(elf: Path, symbol: str) -> str:
    with open(elf, "rb") as f:
        image = ELFFile(f)
        (sym,) = [s for s in image.get_section_by_name(".symtab").iter_symbols() if s.name == symbol]
        return image.get_section(sym["st_shndx"]).name


def float_abi_of(elf: Path) -> bool:
    """Whether the ELF's header flags say hard-float (EF_ARM_ABI_FLOAT_HARD)."""
    with open(elf, "rb") as f:
        return bool(ELFFile(f).header["e_flags"] & 0x400)


def test_two_named_models_in_one_hard_float_image(tmp_path, models):
    elf = build_image(tmp_path, models, ("alpha", "beta"))
    assert float_abi_of(elf)
    got, expected, status = run_both(elf, models, seed=0)
    assert status == 0
    assert got == expected
    # The comparison can fail: other inputs give other bytes.
    other, _, _ = run_both(elf, models, seed=1)
    assert other != expected
    # The whole image from reset: the FPU turned on (CPACR), .bss zeroed (inputs of zeros),
    # both models run.
    emulator = Emulator(elf, get_target("cortex-m4"), (FLASH_ORIGIN, FLASH_BYTES), (RAM_ORIGIN, RAM_BYTES))
    reads = [(emulator.symbol("fw_status").address, 4), (0xE000ED88, 4),
             *((emulator.symbol(f"fw_out_{name}").address, MODELS[name][5]) for name in models)]
    cold = emulator.call("Reset_Handler", until="fw_done", reads=reads, count_instructions=False)
    assert int.from_bytes(cold.reads[0], "little") == 0 and int.from_bytes(cold.reads[1], "little") == 0xF << 20
    zeros = {name: TFLiteOracle(model)([np.zeros((1, *MODELS[name][1:4]), np.int8)])[0].tobytes()
             for name, model in models.items()}
    assert dict(zip(models, cold.reads[2:])) == zeros


def test_caller_arena_in_a_named_section_shared_by_both_models(tmp_path, models):
    elf = build_image(tmp_path, models, ("alpha", "beta"), arena="caller")
    assert section_of(elf, "fw_arena") == ".fw_arena"
    got, expected, status = run_both(elf, models, seed=2)
    assert status == 0  # 2 would be: a misaligned or NULL arena was not refused
    assert got == expected


def test_static_arena_moved_by_the_section_macro(tmp_path, models):
    elf = build_image(tmp_path, models, ("alpha", "beta"),
                      alpha_cflags='-DALPHA_ARENA_SECTION=\\".fw_arena_alpha\\"')
    assert section_of(elf, "alpha_arena") == ".fw_arena"  # the output section holding .fw_arena_alpha
    assert section_of(elf, "beta_arena") == ".bss"
    got, expected, status = run_both(elf, models, seed=3)
    assert status == 0 and got == expected


def test_two_region_memory_plan_in_firmware(tmp_path, models):
    """alpha over two regions (`--memory`): its arena (region fast, half of what one arena
    takes) in .bss, region slow moved into .fw_arena by ALPHA_SLOW_ARENA_SECTION; both
    models still give tflite-micro's bytes."""
    from mcuc.model import load_model
    from mcuc.pipeline import CompileOptions, cortexm_scratch, schedule
    from mcuc.report import format_regions

    one_arena = schedule(load_model(models["alpha"]).graph, CompileOptions(), cortexm_scratch("cortex-m4")).arena_bytes
    memory = f"fast:{one_arena // 2}:1,slow:64K:4"
    elf = build_image(tmp_path, models, ("alpha", "beta"), alpha_memory=memory,
                      alpha_cflags='-DALPHA_SLOW_ARENA_SECTION=\\".fw_arena_alpha\\"')
    report = json.loads((tmp_path / "alpha" / "report.json").read_text())
    print(format_regions(report))  # the placement
    fast, slow = report["regions"]
    assert 0 < fast["bytes"] <= one_arena // 2 and slow["bytes"] > 0, "both regions hold buffers"
    assert report["access_cost"]["planned"] < report["access_cost"]["slowest"]
    assert section_of(elf, "alpha_arena") == ".bss"
    assert section_of(elf, "alpha_slow_arena") == ".fw_arena"  # the output section holding .fw_arena_alpha
    got, expected, status = run_both(elf, models, seed=4)
    assert status == 0 and got == expected


def weight_arrays(elf: Path) -> dict[str, int]:
    """Bytes of the models' constant arrays (mcuc_step*) per output section of the ELF."""
    result: dict[str, int] = {}
    with open(elf, "rb") as f:
        image = ELFFile(f)
        for sym in image.get_section_by_name(".symtab").iter_symbols():
            if sym.name.startswith("mcuc_step") and sym["st_info"]["type"] == "STT_OBJECT":
                section = image.get_section(sym["st_shndx"]).name
                result[section] = result.get(section, 0) + sym["st_size"]
    return result


def test_weights_in_ram_region(tmp_path, models):
    """alpha with --weights-in-ram: its constant arrays are initialized data in RAM (.data,
    copied from flash by the reset handler), counted in region slow, whose buffers (none:
    region fast holds them all) get no array; beta's stay in flash. Both give
    tflite-micro's bytes, from reset and on random inputs."""
    elf = build_image(tmp_path, models, ("alpha", "beta"), alpha_memory="fast:64K:1,slow:64K:4",
                      alpha_weights_in_ram="slow")
    report = json.loads((tmp_path / "alpha" / "report.json").read_text())
    fast, slow = report["regions"]
    assert slow["bytes"] == 0 and slow["weights_bytes"] > 0 and fast["bytes"] > 0
    placed = weight_arrays(elf)
    assert 0 < placed.get(".data", 0) <= slow["weights_bytes"], placed
    assert placed.get(".rodata", 0) > 0  # beta's
    emulator = Emulator(elf, get_target("cortex-m4"), (FLASH_ORIGIN, FLASH_BYTES), (RAM_ORIGIN, RAM_BYTES))
    reads = [(emulator.symbol("fw_status").address, 4),
             *((emulator.symbol(f"fw_out_{name}").address, MODELS[name][5]) for name in models)]
    with open(elf, "rb") as f:  # RAM's .data wiped: only the reset handler's copy from flash restores it
        data = ELFFile(f).get_section_by_name(".data")
        wipe = [(data["sh_addr"], bytes(data["sh_size"]))]
    cold = emulator.call("Reset_Handler", until="fw_done", writes=wipe, reads=reads, count_instructions=False)
    zeros = {name: TFLiteOracle(model)([np.zeros((1, *MODELS[name][1:4]), np.int8)])[0].tobytes()
             for name, model in models.items()}
    assert int.from_bytes(cold.reads[0], "little") == 0 and dict(zip(models, cold.reads[1:])) == zeros
    got, expected, status = run_both(elf, models, seed=5)
    assert status == 0 and got == expected


def test_two_models_of_one_name_do_not_link(tmp_path, models):
    """What --name is for: the objects of two models compiled under one name clash."""
    gcc = find_arm_gcc()
    objects = []
    for folder, model in zip(("one", "two"), models.values()):
        mcuc.compile_to_directory(model, tmp_path / folder, target="cortex-m4", name="alpha")
        make_library(tmp_path / folder, "cortex-m4", tmp_path / f"build-{folder}", opt="-O2",
                     make_vars={"CROSS": str(gcc)[: -len("gcc")]})
        objects.append(str(tmp_path / f"build-{folder}" / "model.o"))
    (tmp_path / "main.c").write_text('#include "one/model.h"\nint main(void) { return alpha_invoke(); }\n')
    with pytest.raises(MCUCError, match="multiple definition of `alpha_invoke'"):
        run_tool([str(gcc), *HARD_M4, "-I", str(tmp_path), "--specs=nosys.specs", str(tmp_path / "main.c"),
                  *objects, "-o", str(tmp_path / "clash.elf")], "linking two models named alpha")


def test_caller_io_buffers_in_firmware(tmp_path, models):
    """--io-buffers caller with --arena caller: main.c passes its own arrays as the inputs
    and outputs of both models and one shared arena; the bytes are tflite-micro's, the
    inputs hold their bytes after the run, and bad buffers are refused first."""
    elf = build_image(tmp_path, models, ("alpha", "beta"), arena="caller", io_buffers="caller")
    header = (tmp_path / "alpha" / "model.h").read_text()
    assert "alpha_invoke_io(void *arena, const void *const inputs[], void *const outputs[]);" in header
    assert "alpha_input(" not in header and "ALPHA_INPUT_0_OFFSET" not in header
    report = mcuc.compile(models["alpha"], backend="cortex-m4", io_buffers="caller").report
    assert report["arena_bytes"] < mcuc.compile(models["alpha"], backend="cortex-m4").report["arena_bytes"]
    inputs = {}
    got, expected, status = run_both(elf, models, seed=0, inputs_after=inputs)
    assert status == 0
    assert got == expected
    assert all(given == after for given, after in inputs.values())
