"""strip_edge_quantization (`--io int8`): a float model's QUANTIZE after a float graph
input and DEQUANTIZE before a float graph output are removed; the graph then takes and
returns the int8 tensors (with their scale and zero point), as firmware that gets camera
bytes wants. Edges that are not such a pair are left as the model has them.
"""
from __future__ import annotations

from mcuc.ir import Graph, Op, Tensor
from mcuc.ir.ops.kinds import DEQUANTIZE, QUANTIZE


def _is_float_to_int(op: Op) -> bool:
    return op.kind == QUANTIZE and op.inputs[0].dtype == "float32" and op.outputs[0].dtype != "float32"


def _is_int_to_float(op: Op) -> bool:
    return op.kind == DEQUANTIZE and op.inputs[0].dtype != "float32" and op.outputs[0].dtype == "float32"


def strip_edge_quantization(graph: Graph) -> Graph:
    dropped: set[Op] = set()
    inputs: list[Tensor] = []
    for t in graph.inputs:
        readers = graph.consumers(t)
        if (t.dtype == "float32" and len(readers) == 1 and _is_float_to_int(readers[0])
                and t not in graph.outputs):
            dropped.add(readers[0])
            inputs.append(readers[0].outputs[0])
        else:
            inputs.append(t)
    outputs: list[Tensor] = []
    for t in graph.outputs:
        producer = graph.producer(t)
        if (producer is not None and _is_int_to_float(producer) and not graph.consumers(t)
                and t not in graph.inputs and producer.inputs[0] not in outputs
                and producer.inputs[0] not in graph.outputs):
            dropped.add(producer)
            outputs.append(producer.inputs[0])
        else:
            outputs.append(t)
    if not dropped:
        return graph
    return graph.with_(ops=tuple(op for op in graph.ops if op not in dropped),
                       inputs=tuple(inputs), outputs=tuple(outputs))
