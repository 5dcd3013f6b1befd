"""Cortex-M target definitions: the compiler flags and ISA features of each core.

The code emitters choose kernels by feature (`has_dsp` selects SIMD paths written with
ACLE intrinsics guarded by __ARM_FEATURE_DSP), the toolchain driver passes `cpu_flags`
to arm-none-eabi-gcc, and the emulator picks the matching unicorn CPU model by `name`.
"host" is the c-host backend: the same generated C compiled by the machine's gcc.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from mcuc.ir.errors import MCUCError


@dataclass(frozen=True)
class Target:
    """One compilation target.

    `cpu_flags` are gcc flags for the core (empty for "host"), the float ABI included.
    `float_abi` is what the firmware the model links into uses: by default "hard" with the
    core's FPU on the cores that have one (cortex-m4: fpv4-sp-d16, cortex-m7: fpv5-d16,
    cortex-m33: fpv5-sp-d16; what vendor SDKs such as STM32Cube and Zephyr build with when
    the FPU is on), "soft" on cortex-m0/m3. Objects of different float ABIs do not link,
    so this is the user's choice (`--float-abi`); the int8 TFLite kernels use no float
    either way, only ONNX float groups and float32 requantization do (in VFP instructions
    with "softfp" and "hard", in libgcc's soft-float with "soft").

    `opt` and `int16_weights` are what `--optimize` chooses: for speed (-O3, and on DSP
    cores the weights of fully connected layers and of convolutions with short rows
    stored as int16 so the SMLAD loops need no sign extension: twice their flash) or for
    size (-Os, int8 weights).
    """

    name: str
    has_dsp: bool
    has_fpu: bool
    opt: str = "-O3"
    int16_weights: bool = True
    float_abi: str = "soft"
    fpu: str | None = None  # -mfpu for "softfp" and "hard"

    @property
    def cpu_flags(self) -> tuple[str, ...]:
        if not self.is_arm:
            return ()
        fpu = () if self.float_abi == "soft" else (f"-mfpu={self.fpu}",)
        return (f"-mcpu={self.name}", "-mthumb", f"-mfloat-abi={self.float_abi}", *fpu)

    @property
    def is_arm(self) -> bool:
        return self.name != "host"

    @property
    def fc_weights_int16(self) -> bool:
        """Whether fully connected layers use the DSP kernel on int16 weights."""
        return self.has_dsp and self.int16_weights

    @property
    def wide_gemm_streams(self) -> bool:
        """Whether convolutions with short GEMM rows take the pair streams' wide layout
        (int16 weights; backends/cortexm/kernels.WIDE_STREAM_MAX_DEPTH)."""
        return self.has_dsp and self.int16_weights

    def optimized_for(self, optimize: str) -> "Target":
        """This core compiled for "speed" (the default) or "size"."""
        if optimize not in OPTIMIZE_GOALS:
            raise MCUCError(f"unknown --optimize {optimize!r}; choose {' or '.join(OPTIMIZE_GOALS)}")
        return self if optimize == "speed" else replace(self, opt="-Os", int16_weights=False)

    def with_float_abi(self, float_abi: str | None) -> "Target":
        """This core built for `float_abi` ("soft", "softfp", "hard"; None: the core's
        default). The host has no float ABI option (its compiler's own is used)."""
        if float_abi is None or float_abi == self.float_abi:
            return self
        if float_abi not in FLOAT_ABIS:
            raise MCUCError(f"unknown --float-abi {float_abi!r}; choose {', '.join(FLOAT_ABIS)}")
        if not self.is_arm:
            raise MCUCError("--float-abi applies to the Cortex-M cores; the host build uses its compiler's own ABI")
        if float_abi != "soft" and self.fpu is None:
            raise MCUCError(f"{self.name} has no FPU: --float-abi {float_abi} needs one; use --float-abi soft")
        return replace(self, float_abi=float_abi)


OPTIMIZE_GOALS = ("speed", "size")
FLOAT_ABIS = ("soft", "softfp", "hard")

FPUS = {"cortex-m4": "fpv4-sp-d16", "cortex-m7": "fpv5-d16", "cortex-m33": "fpv5-sp-d16"}
"""The -mfpu of each core with an FPU (gcc's choice for -mfpu=auto)."""


def _arm(name: str, has_dsp: bool) -> Target:
    fpu = FPUS.get(name)
    return Target(name, has_dsp, has_fpu=fpu is not None, float_abi="hard" if fpu else "soft", fpu=fpu)


TARGETS: dict[str, Target] = {
    "cortex-m0": _arm("cortex-m0", has_dsp=False),
    "cortex-m3": _arm("cortex-m3", has_dsp=False),
    "cortex-m4": _arm("cortex-m4", has_dsp=True),
    "cortex-m7": _arm("cortex-m7", has_dsp=True),
    "cortex-m33": _arm("cortex-m33", has_dsp=True),
    "host": Target("host", has_dsp=False, has_fpu=True),
}


def get_target(name: str) -> Target:
    """The target called `name`; MCUCError listing the valid names otherwise."""
    try:
        return TARGETS[name]
    except KeyError:
        valid = ", ".join(TARGETS)
        raise MCUCError(f"unknown target {name!r}: choose one of {valid}") from None
