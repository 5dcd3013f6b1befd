"""Graph inputs and outputs in the caller's buffers (`--io-buffers caller`) in the C.

The kernel emitters address every tensor as `arena + ADDRESS`, with the plan's address
as a decimal literal (Program.offsets). With caller buffers (ir/program.CallerBuffer)
some of those addresses lie past the arena, inside one buffer; `relocate` rewrites each
such address, as a linker resolves a relocation, into the caller's pointer plus the
offset inside its buffer: `(MCUC_IO_BUFFER(arena, K) + OFFSET)`, where K is the buffer's
position in Program.caller_buffers. model.c defines `mcuc_io_buffers[K]` (set by
`<name>_invoke_io` from the caller's tables before the first step) and the macro, which
names `arena` only to keep a step's parameter in use. An address of no buffer and past
the arena, or an `arena +` the rewrite does not understand, is an MCUCError: a kernel
that spelled an address differently would otherwise read the wrong memory.

Memory regions (`--memory`, ir/program.PlacedRegion) are relocated alike: an address in
region K > 0 becomes `(MCUC_REGION_K(arena) + OFFSET)`, the offset inside that region's
own array (model.c defines the macro; the first region is the arena itself). So is the
state area (Program.state_base): `(MCUC_STATE(arena) + OFFSET)`, inside the model's
state array.
"""
from __future__ import annotations

import re

from mcuc.ir.errors import MCUCError
from mcuc.ir.program import Program

_ADDRESS = re.compile(r"\barena \+ (\d+)\b")
_ANY_ADDRESS = re.compile(r"\barena\s*\+")


def relocate(code: str, program: Program, where: str) -> str:
    """`code` with every `arena + ADDRESS` inside a caller buffer pointing into that
    buffer; `where` names the step in errors."""
    if not program.caller_buffers and not program.regions and not program.state_bytes:
        return code
    index = {b.base: k for k, b in enumerate(program.caller_buffers)}

    def rewrite(match: re.Match) -> str:
        address = int(match[1])
        if program.in_state(address):
            return f"(MCUC_STATE(arena) + {address - program.state_base})"
        buffer = program.caller_buffer_at(address)
        region = program.region_at(address) if buffer is None else None
        if region is not None and region[0] > 0:  # --memory: a region after the first has its own array
            return f"(MCUC_REGION_{region[0]}(arena) + {address - region[1].base})"
        if buffer is None:
            if address > program.arena_bytes:
                raise MCUCError(f"{where}: the C addresses byte {address}, past the arena ({program.arena_bytes} B) "
                                f"and in no caller buffer")
            return match[0]
        return f"(MCUC_IO_BUFFER(arena, {index[buffer.base]}) + {address - buffer.base})"

    relocated = _ADDRESS.sub(rewrite, code)
    if len(_ANY_ADDRESS.findall(code)) != len(_ADDRESS.findall(code)):
        raise MCUCError(f"{where}: the C addresses the arena with an expression that is not `arena + ADDRESS`, "
                        f"which --io-buffers caller, --memory and the state area cannot relocate")
    return relocated
