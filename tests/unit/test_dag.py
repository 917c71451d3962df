"""The DAG as built by create_pipeline (pipeline/dag/): the stages in the diagram's order, gated one by the other,
and the code fingerprint that invalidates TFX's cache when any file under components/ changes, in any sub-package."""

import json
import shutil

import pytest

from components.settings.data import DataSettings
from components.settings.trainer import TrainerSettings
from components.settings.transform import TransformSettings
from pipeline.dag import nodes
from pipeline.dag.config import PipelineConfig
from pipeline.dag.pipeline import COMPONENTS_DIR, code_fingerprint, create_pipeline


def config(tmp_path, **kw) -> PipelineConfig:
    labels = ("neg", "pos")
    return PipelineConfig(
        pipeline_root=str(tmp_path / "root"), data_root=str(tmp_path / "data"), serving_dir=str(tmp_path / "serving"),
        data=DataSettings(vocab_file="/v.txt", label_names=labels), transform=TransformSettings(),
        trainer=TrainerSettings(), schema_file=str(tmp_path / "schema.pbtxt"),
        metadata_path=str(tmp_path / "m.sqlite"), **kw)


@pytest.fixture
def components_copy(tmp_path):
    copy = tmp_path / "components"
    shutil.copytree(COMPONENTS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_a_change_in_any_sub_package_changes_the_fingerprint(components_copy):
    before = code_fingerprint(components_copy)
    assert before == code_fingerprint(components_copy)  # deterministic
    (components_copy / "model" / "bert.py").write_text((components_copy / "model" / "bert.py").read_text() + "\n#\n")
    edited = code_fingerprint(components_copy)
    assert edited != before
    (components_copy / "release" / "tf_serving_ops.json").write_text("{}")  # data files count too
    assert code_fingerprint(components_copy) != edited


def test_moving_a_file_between_sub_packages_changes_the_fingerprint(components_copy):
    before = code_fingerprint(components_copy)
    (components_copy / "module_files" / "warmup.py").rename(components_copy / "release" / "warmup.py")
    assert code_fingerprint(components_copy) != before


def test_bytecode_does_not_change_the_fingerprint(components_copy):
    before = code_fingerprint(components_copy)
    (components_copy / "model" / "__pycache__").mkdir()
    (components_copy / "model" / "__pycache__" / "bert.cpython-311.pyc").write_bytes(b"\0" * 8)
    assert code_fingerprint(components_copy) == before


def test_the_fingerprint_keys_the_cache_of_the_steps_that_run_our_code(tmp_path, monkeypatch):
    """Transform, Trainer and ServingCheck carry the digest in their exec properties (TFX's cache key): a code
    change anywhere under components/ makes them run again."""
    built = {c.id: c for c in create_pipeline(config(tmp_path)).components}
    digest = code_fingerprint()
    for node in (nodes.TRANSFORM, nodes.TRAINER):
        assert json.loads(built[node].exec_properties["custom_config"])["code_version"] == digest, node
    assert built[nodes.SERVING_CHECK].exec_properties["code_version"] == digest
    monkeypatch.setattr("pipeline.dag.pipeline.code_fingerprint", lambda: "changed")
    rebuilt = {c.id: c for c in create_pipeline(config(tmp_path)).components}
    assert json.loads(rebuilt[nodes.TRAINER].exec_properties["custom_config"])["code_version"] == "changed"


def before(ids, *chain):
    """Each node of `chain` comes before the next in TFX's (topologically sorted) component list."""
    positions = [ids.index(node) for node in chain]
    return positions == sorted(positions)


def test_the_stages_come_in_the_diagrams_order_each_gated_by_the_one_before(tmp_path):
    pipeline = create_pipeline(config(tmp_path))
    ids = [c.id for c in pipeline.components]
    assert sorted(ids) == sorted([
        nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.SCHEMA_GEN, nodes.IMPORT_SCHEMA_GEN, nodes.EXAMPLE_VALIDATOR,
        nodes.BASELINE_LOOKUP, nodes.DRIFT_VALIDATOR, nodes.DATA_GATE, nodes.TRANSFORM, nodes.TEXT_STATISTICS_GEN,
        nodes.TEXT_GATE, nodes.TRAINER, nodes.SERVING_CHECK, nodes.EVALUATOR, nodes.MODEL_CARD, nodes.PUSHER])
    assert before(ids, nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.DRIFT_VALIDATOR, nodes.DATA_GATE, nodes.TRANSFORM,
                  nodes.TEXT_STATISTICS_GEN, nodes.TEXT_GATE, nodes.TRAINER, nodes.SERVING_CHECK, nodes.EVALUATOR,
                  nodes.MODEL_CARD, nodes.PUSHER)
    built = {c.id: c for c in pipeline.components}
    upstream = {node: {n.id for n in built[node].upstream_nodes} for node in built}
    assert nodes.DATA_GATE in upstream[nodes.TRANSFORM]
    assert nodes.TEXT_GATE in upstream[nodes.TRAINER]
    assert nodes.SERVING_CHECK in upstream[nodes.EVALUATOR]
    # What the run compares with comes from one step, not from resolvers reading ML Metadata.
    assert not [c.id for c in pipeline.components if type(c).__name__ == "Resolver"]
    for node, key in ((nodes.DRIFT_VALIDATOR, "baseline_statistics"),
                      (nodes.TEXT_STATISTICS_GEN, "baseline_statistics"), (nodes.EVALUATOR, "baseline_model")):
        assert built[node].inputs[key].producer_component_id == nodes.BASELINE_LOOKUP, node


def test_the_lookup_and_the_serving_logs_are_never_cached_locally_and_everything_else_follows_the_pipeline(
        tmp_path):
    """TFX has no per-node cache switch: local_ir turns it off in the compiled IR for nodes.NEVER_CACHED only: the
    lookup, and with --serving-logs the read of the logs and its commit (what is new under the prefix is in neither
    step's inputs)."""
    from components.settings.serving_loop import ServingLoopSettings
    from pipeline.dag.pipeline import local_ir

    assert nodes.NEVER_CACHED == (nodes.BASELINE_LOOKUP, nodes.SERVING_LOGS_GEN, nodes.SERVING_LOGS_COMMIT,
                                  nodes.RUN_REPORT)
    ir = local_ir(create_pipeline(config(tmp_path)))
    caching = {n.pipeline_node.node_info.id: n.pipeline_node.execution_options.caching_options.enable_cache
               for n in ir.nodes}
    assert caching.pop(nodes.BASELINE_LOOKUP) is False
    assert caching and all(caching.values()), caching
    assert nodes.SERVING_LOGS_GEN not in caching  # only with --serving-logs
    ir = local_ir(create_pipeline(config(tmp_path, serving=ServingLoopSettings(serving_logs="logs/"))))
    caching = {n.pipeline_node.node_info.id: n.pipeline_node.execution_options.caching_options.enable_cache
               for n in ir.nodes}
    assert [caching.pop(n) for n in nodes.NEVER_CACHED if n != nodes.RUN_REPORT] == [False, False, False]
    assert caching and all(caching.values()), caching
    reader = next(n for n in ir.nodes if n.pipeline_node.node_info.id == nodes.SERVING_LOGS_GEN).pipeline_node
    prefix = reader.parameters.parameters["prefix"].field_value.string_value
    assert prefix == str(tmp_path.cwd() / "logs") + "/"  # a local prefix made absolute, still a folder


def test_optional_nodes_join_their_stage(tmp_path):
    """Without a curated schema the freezer follows the text gate; with spans a window feeds Transform; the masked-LM
    stage precedes the Trainer; on Kubeflow the run report closes the release."""
    import dataclasses

    from components.settings.pretraining import PretrainerSettings

    base = config(tmp_path)
    variant = dataclasses.replace(base, schema_file=None, use_spans=True, spans_window=2, orchestrator="kubeflow",
                                  pretrainer=PretrainerSettings(pretrain_epochs=1))
    built = {c.id: c for c in create_pipeline(variant).components}
    ids = list(built)
    assert nodes.SCHEMA_CURATOR in ids and nodes.IMPORT_SCHEMA_GEN not in ids
    assert before(ids, nodes.EXAMPLE_GEN, nodes.SPAN_WINDOW, nodes.TRANSFORM)
    assert built[nodes.TRANSFORM].inputs["examples"].producer_component_id == nodes.SPAN_WINDOW
    assert nodes.TEXT_GATE in {n.id for n in built[nodes.SCHEMA_FREEZER].upstream_nodes}
    assert before(ids, nodes.TEXT_GATE, nodes.PRETRAINER, nodes.TRAINER)
    assert built[nodes.TRAINER].inputs["base_model"].producer_component_id == nodes.PRETRAINER
    assert before(ids, nodes.MODEL_CARD, nodes.RUN_REPORT)
    assert nodes.RUN_REPORT not in {c.id for c in create_pipeline(base).components}  # local runs draw it afterwards
