"""Tensors and their quantization."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import math

import numpy as np

DTYPES = ("int8", "uint8", "int16", "int32", "int64", "float32", "bool")

# Names from a model file reach messages (and the IR) cut to this many characters: a
# message stays one readable line whatever the file holds.
NAME_LIMIT = 60


def cut_name(name, limit: int = NAME_LIMIT) -> str:
    """`name` as text of at most `limit` characters: a longer one keeps its head and
    tail around an ellipsis ("..."), so names that differ at either end stay apart."""
    name = str(name)
    if len(name) <= limit:
        return name
    keep = limit - 3
    tail = keep // 3
    return name[:keep - tail] + "..." + name[len(name) - tail:]


def short_list(values, limit: int = 8) -> str:
    """A list of numbers from a model (a shape, pads, a permutation) for a message: the
    first `limit` values, then how many there are."""
    values = [v.item() if hasattr(v, "item") else v for v in values]
    if len(values) <= limit:
        return str(list(values))
    return "[" + ", ".join(str(v) for v in values[:limit]) + f", ... ({len(values)} values)]"


def quoted(name, limit: int = NAME_LIMIT) -> str:
    """A model-provided name for a message: cut (`cut_name`) and repr-quoted, so quotes,
    newlines and other control characters show as escapes."""
    return repr(cut_name(name, limit))


@dataclass(frozen=True, eq=False)
class Quantization:
    """Affine quantization: real = scale * (q - zero_point).

    `scale` and `zero_point` are 1-D arrays: one entry for per-tensor quantization,
    one per slice along `axis` for per-channel quantization. Scales are float32, as
    TFLite stores them; the requantization math widens them to double exactly as the
    reference kernels do.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", np.atleast_1d(np.asarray(self.scale, np.float32)))
        object.__setattr__(self, "zero_point", np.atleast_1d(np.asarray(self.zero_point, np.int64)))

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    @property
    def scalar_scale(self) -> float:
        """The scale of a per-tensor quantization (as float32, widened)."""
        return float(self.scale[0])

    @property
    def scalar_zero_point(self) -> int:
        return int(self.zero_point[0])

    def __repr__(self) -> str:
        if self.per_channel:
            return f"Quantization(per-channel x{self.scale.size}, axis={self.axis})"
        return f"Quantization(scale={self.scalar_scale:.6g}, zp={self.scalar_zero_point})"


@dataclass(frozen=True, eq=False)
class Tensor:
    """A value in the graph. Activations are NHWC; constants carry `data`.

    Identity matters, not value: two tensors with equal fields are still different
    values, so tensors hash by identity and can key dictionaries.

    `state`: a variable (TFLite's is_variable) that keeps its value from one invocation to
    the next: defined before the first op like a graph input, read and rewritten by the
    one op that lists it among its OpDef's `state_inputs`, and set to its `reset_byte` in
    every byte when the state is reset.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Quantization | None = None
    data: np.ndarray | None = field(default=None, repr=False)
    state: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if self.dtype not in DTYPES:
            raise ValueError(f"tensor {self.name!r}: unknown dtype {self.dtype!r}")
        if self.data is not None:
            data = np.ascontiguousarray(self.data, dtype=self.dtype)
            if data.shape != self.shape:
                data = data.reshape(self.shape)
            data.setflags(write=False)
            object.__setattr__(self, "data", data)

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def reset_byte(self) -> int:
        """The byte every byte of a state tensor holds after a reset: tflite-micro's
        ResetVariableTensors memsets an int8 variable with its zero point and any other
        with 0."""
        if self.dtype == "int8" and self.quant is not None:
            return self.quant.scalar_zero_point & 0xFF
        return 0

    def reset_value(self) -> np.ndarray:
        """A state tensor's value after a reset."""
        return np.full(self.nbytes, self.reset_byte, np.uint8).view(self.dtype).reshape(self.shape)

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(math.prod(self.shape))

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self.itemsize

    def with_(self, **changes) -> "Tensor":
        """A new tensor (a new value) with some fields changed."""
        return replace(self, **changes)

    def __repr__(self) -> str:
        kind = "const " if self.is_constant else "state " if self.state else ""
        q = f" {self.quant!r}" if self.quant is not None else ""
        return f"{kind}{self.name}: {self.dtype}{list(self.shape)}{q}"
