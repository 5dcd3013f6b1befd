"""PATCH_STAGE: a stage of ops run patch by patch (patch-based inference, MCUNetV2).

Compilers make it (mcuc.passes.patch), never model files: its attributes are an
ir.patches.PatchStage holding the stage's ops, the patch grid and every op's
region per patch. Its meaning is the stage's: evaluating it equals running its ops
layer by layer, byte for byte; its MACs are the patches' MACs, halo recomputation
included.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..op import Op
from ..patch_lowering import evaluate_stage
from ..patches import PatchStage
from ..region import Region
from . import OpDef, op_def, register
from .kinds import PATCH_STAGE


def region_macs(op: Op, out: Region) -> int:
    """MACs of `op` computing only output region `out`."""
    if out.empty:
        return 0
    y = op.outputs[0]
    proxy = op.with_(outputs=(y.with_(shape=out.shape),) + op.outputs[1:])
    return op_def(op.kind).macs(proxy)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    stage: PatchStage = op.attrs
    return [stage.output.shape]


def macs(op: Op) -> int:
    return _stage_macs(op.attrs)


@lru_cache(maxsize=256)
def _stage_macs(stage: PatchStage) -> int:
    """(cached per stage: a schedule search counts the same stages in many schedules)"""
    return sum(region_macs(inner, work.out) for works in stage.patches for inner, work in zip(stage.ops, works))


def input_regions(op: Op, out: Region) -> list[Region | None]:
    """Every input in full (a conservative bound: stages are not nested in stages)."""
    return [None if t is None or t.is_constant else Region.full(t.shape) for t in op.inputs]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [evaluate_stage(op.attrs, list(inputs))]


OPDEF = register(OpDef(PATCH_STAGE, PatchStage, infer_shapes, macs, input_regions, evaluate))
