"""Which ops a SavedModel's signatures need, and whether the stock TensorFlow Serving image has them.

TF Serving refuses a model whose graph uses an op it was not built with (`Op type not registered`), and only when
it loads it, in production. The stock `tensorflow/serving` images link TensorFlow's own ops and tensorflow-text
2.12.1's (tensorflow/serving#1490, #2064, #2267), so ops added to tensorflow-text later (e.g. `RoundRobinTrim`,
used by `tf_text.RoundRobinTrimmer`) pass every test here and fail there. This module reads the graph of a SavedModel
without loading it and lists, per signature, every op it can run, through the function calls (the signature's
`StatefulPartitionedCall` and the functions inside), against the list of ops of the pinned image kept as data in
`tf_serving_ops.json` (generated, with its source, by scripts/tf_serving_ops.py).

No TensorFlow import: the SavedModel is a protobuf that the `tensorflow` package's generated code parses.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, FrozenSet, Iterable, List, Set

OPS_FILE = Path(__file__).resolve().parent / "tf_serving_ops.json"


@dataclass(frozen=True)
class ServingOps:
    """The ops a TF Serving image can run: TensorFlow's own and tensorflow-text's, and where the list comes from."""

    image: str
    tensorflow_version: str
    tensorflow_text_version: str
    source: str
    ops: FrozenSet[str]


def load_serving_ops(path: Path = OPS_FILE) -> ServingOps:
    data = json.loads(Path(path).read_text())
    return ServingOps(image=data["image"], tensorflow_version=data["tensorflow_version"],
                      tensorflow_text_version=data["tensorflow_text_version"], source=data["source"],
                      ops=frozenset(data["tensorflow_ops"]) | frozenset(data["tensorflow_text_ops"]))


def _saved_model(model_dir: str):
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(model_dir, "saved_model.pb")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{model_dir} is not a SavedModel (no saved_model.pb)")
    proto = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        proto.ParseFromString(f.read())
    return proto


def _called_functions(node) -> Iterable[str]:
    """The library functions a NodeDef calls: through function-valued attributes (`f` of a PartitionedCall, the
    branches of If/Case, the bodies of While, ...)."""
    for value in node.attr.values():
        if value.HasField("func"):
            yield value.func.name
        if value.HasField("list"):
            for func in value.list.func:
                yield func.name


def signature_ops(model_dir: str, tags: str = "serve") -> Dict[str, Set[str]]:
    """Signature name -> the ops it can run (the ops of every node its outputs depend on, and of every function those
    nodes call, transitively), for the MetaGraph with `tags` (TF Serving loads "serve")."""
    saved = _saved_model(model_dir)
    graphs = [m for m in saved.meta_graphs if tags in m.meta_info_def.tags] or list(saved.meta_graphs)
    graph = graphs[0]
    functions = {f.signature.name: f for f in graph.graph_def.library.function}
    nodes = {n.name: n for n in graph.graph_def.node}
    function_ops: Dict[str, Set[str]] = {}

    def ops_of_nodes(node_defs) -> Set[str]:
        ops: Set[str] = set()
        for node in node_defs:
            called = list(_called_functions(node))
            if node.op in functions:  # a function called by its name as the op
                called.append(node.op)
            else:
                ops.add(node.op)
            for name in called:
                ops |= ops_of_function(name)
        return ops

    def ops_of_function(name: str) -> Set[str]:
        if name not in function_ops:
            function_ops[name] = set()  # recursion guard
            function_ops[name] = ops_of_nodes(functions[name].node_def) if name in functions else set()
        return function_ops[name]

    def upstream(tensor_names: Iterable[str]) -> List:
        seen, stack = set(), [t.lstrip("^").split(":")[0] for t in tensor_names]
        while stack:
            name = stack.pop()
            if name in seen or name not in nodes:
                continue
            seen.add(name)
            stack.extend(i.lstrip("^").split(":")[0] for i in nodes[name].input)
        return [nodes[n] for n in seen]

    result = {}
    for name, signature in graph.signature_def.items():
        tensors = [t.name for t in signature.outputs.values()] + [t.name for t in signature.inputs.values()]
        result[name] = ops_of_nodes(upstream(tensors))
    return result


def missing_ops(model_dir: str, serving: ServingOps) -> Dict[str, List[str]]:
    """Signature name -> the ops it needs that `serving`'s image lacks (only signatures with some)."""
    return {name: sorted(ops - serving.ops) for name, ops in sorted(signature_ops(model_dir).items())
            if ops - serving.ops}
