"""Operators: a kind, input and output tensors, typed attributes."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .tensor import Tensor


@dataclass(frozen=True, eq=False)
class Op:
    """One operator application.

    `kind` names a registered OpDef (a constant of ir/ops/kinds.py, e.g. CONV_2D);
    `attrs` is that op module's frozen attribute dataclass. An absent optional input
    (e.g. a conv without bias) is None.
    """

    kind: str
    inputs: tuple[Tensor | None, ...]
    outputs: tuple[Tensor, ...]
    attrs: Any = None
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))

    @property
    def input(self) -> Tensor:
        """The first input (the activation, for every op that has one)."""
        return self.inputs[0]

    @property
    def output(self) -> Tensor:
        return self.outputs[0]

    @property
    def activation_inputs(self) -> tuple[Tensor, ...]:
        """Inputs that are computed at run time (not constants, not absent, not state
        tensors, which live outside the arena: ir/program.py)."""
        return tuple(t for t in self.inputs if t is not None and not t.is_constant and not t.state)

    def with_(self, **changes) -> "Op":
        return replace(self, **changes)

    @property
    def label(self) -> str:
        return f"{self.kind}({self.name})" if self.name else self.kind

    def __repr__(self) -> str:
        ins = ", ".join("-" if t is None else t.name for t in self.inputs)
        outs = ", ".join(t.name for t in self.outputs)
        return f"{outs} = {self.kind}({ins}) {self.attrs!r}"
