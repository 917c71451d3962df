"""The model the quick run (`first_run`) exported: its signatures, and float32 compute whatever it trained in."""

import json
from pathlib import Path

from support.signatures import check_signatures


def test_exported_signatures_have_documented_inputs_and_outputs(first_run):
    _, summary, _ = first_run
    check_signatures(summary["pushed_dir"], max_seq_length=64)  # --max-seq-length of the run


def test_the_served_model_computes_in_float32_whatever_the_training_precision(first_run):
    # The quick run trains with --precision bf16_if_native: mixed_bfloat16 on a CPU with bfloat16 instructions (this
    # machine's), float32 elsewhere; the exported graph has no bfloat16 tensor in either case.
    paths, summary, _ = first_run
    from pathlib import Path

    from tensorflow.core.protobuf import saved_model_pb2

    from components.model import precision

    model_root = Path(summary["pushed_dir"])
    history = json.loads(next(Path(paths["pipeline_root"], "Trainer", "model").glob("*/training_history.json"))
                         .read_text())
    assert history["precision"] == ("mixed_bfloat16" if precision.cpu_has_bf16() else "float32")
    saved = saved_model_pb2.SavedModel.FromString((model_root / "saved_model.pb").read_bytes())
    graph = saved.meta_graphs[0].graph_def
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    bf16 = [n.name for n in nodes if any(v.type == 14 or 14 in v.list.type for v in n.attr.values())]  # DT_BFLOAT16
    assert nodes and bf16 == []


def test_the_export_holds_the_weights_and_no_optimizer_state(first_run):
    """Serving reads the classifier's weights only; the training optimizer's moments would triple the size."""
    import tensorflow as tf

    _, summary, _ = first_run
    names = [name for name, _ in tf.train.list_variables(str(Path(summary["pushed_dir"]) / "variables" / "variables"))]
    assert names and not [n for n in names if "optimizer" in n.lower()], [n for n in names if "optimizer" in n.lower()]
