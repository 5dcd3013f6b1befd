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

    `cpu_flags` are gcc flags for the core (empty for "host"). The float ABI is soft on
    every core: generated code is integer-only, so an FPU would only change the calling
    convention, not the speed, and soft keeps one newlib multilib for all cores.

    `opt` and `int16_fc_weights` are what `--optimize` chooses: for speed (-O3, and on DSP
    cores fully connected weights stored as int16 so the SMLAD loop needs no sign
    extension: twice their flash) or for size (-Os, int8 weights).
    """

    name: str
    cpu_flags: tuple[str, ...]
    has_dsp: bool
    has_fpu: bool
    opt: str = "-O3"
    int16_fc_weights: bool = True

    @property
    def is_arm(self) -> bool:
        return self.name != "host"

    @property
    def fc_weights_int16(self) -> bool:
        """Whether fully connected layers use the DSP kernel on int16 weights."""
        return self.has_dsp and self.int16_fc_weights

    def optimized_for(self, optimize: str) -> "Target":
        """This core compiled for "speed" (the default) or "size"."""
        if optimize not in OPTIMIZE_GOALS:
            raise MCUCError(f"unknown --optimize {optimize!r}; choose {' or '.join(OPTIMIZE_GOALS)}")
        return self if optimize == "speed" else replace(self, opt="-Os", int16_fc_weights=False)


OPTIMIZE_GOALS = ("speed", "size")


def _arm(name: str, has_dsp: bool, has_fpu: bool) -> Target:
    return Target(name, (f"-mcpu={name}", "-mthumb", "-mfloat-abi=soft"), has_dsp, has_fpu)


TARGETS: dict[str, Target] = {
    "cortex-m0": _arm("cortex-m0", has_dsp=False, has_fpu=False),
    "cortex-m3": _arm("cortex-m3", has_dsp=False, has_fpu=False),
    "cortex-m4": _arm("cortex-m4", has_dsp=True, has_fpu=True),
    "cortex-m7": _arm("cortex-m7", has_dsp=True, has_fpu=True),
    "cortex-m33": _arm("cortex-m33", has_dsp=True, has_fpu=True),
    "host": Target("host", (), has_dsp=False, has_fpu=True),
}


def get_target(name: str) -> Target:
    """The target called `name`; MCUCError listing the valid names otherwise."""
    try:
        return TARGETS[name]
    except KeyError:
        valid = ", ".join(TARGETS)
        raise MCUCError(f"unknown target {name!r}: choose one of {valid}") from None
