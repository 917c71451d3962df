"""BaselineLookup is never answered from a cache: TFX's local runner runs it on every run, cache on, so a model pushed
between two runs is the next run's baseline. The pipeline here is the lookup alone (real TFX, real ML Metadata);
the same step without pipeline/dag/pipeline.py's local_ir is answered from TFX's cache with the old model, which is
what local_ir is there to prevent. The Kubeflow side (the backend's task cache) is in test_kubeflow_executed.py."""

from pathlib import Path

import pytest


def served_version(base: Path, version: int) -> Path:
    folder = base / str(version)
    (folder / "variables").mkdir(parents=True)
    (folder / "variables" / "variables.index").write_text(f"weights {version}")
    (folder / "saved_model.pb").write_text(f"graph {version}")
    return folder


def lookup_pipeline(tmp_path: Path, serving: Path, config_file: str = ""):
    from tfx import v1 as tfx

    from components.baselines.lookup import BaselineLookup
    from pipeline.dag.nodes import BASELINE_LOOKUP

    root = tmp_path / "root"
    node = BaselineLookup(serving_base=str(serving), data_baselines="baselines/DataValidationGate",
                          text_baselines="baselines/TextValidationGate", model_name=serving.name,
                          model_config_file=config_file).with_id(BASELINE_LOOKUP)
    return tfx.dsl.Pipeline(
        pipeline_name="lookup", pipeline_root=str(root), components=[node], enable_cache=True,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(tmp_path / "metadata.sqlite")))


def last_lookup(tmp_path: Path):
    """(state of the lookup's latest execution, the folder its model output says it copied)."""
    import ml_metadata as mlmd
    from tfx import v1 as tfx

    from components.baselines import lookup

    store = mlmd.MetadataStore(tfx.orchestration.metadata.sqlite_metadata_connection_config(
        str(tmp_path / "metadata.sqlite")))
    execution = max(store.get_executions(), key=lambda e: e.id)
    events = [e for e in store.get_events_by_execution_ids([execution.id])
              if any(s.HasField("key") and s.key == "model" for s in e.path.steps)]
    model = store.get_artifacts_by_id([events[0].artifact_id])[0]
    state = "CACHED" if execution.last_known_state == execution.CACHED else "COMPLETE"
    return state, lookup.source(model), model.custom_properties[lookup.SOURCE_PROPERTY].string_value


@pytest.mark.parametrize("runner", ["local_ir", "tfx_default"])
def test_a_model_pushed_between_two_runs_is_the_next_runs_baseline(tmp_path, runner):
    from tfx import v1 as tfx

    from pipeline.dag.pipeline import local_ir

    def run():
        pipeline = lookup_pipeline(tmp_path, serving)
        if runner == "local_ir":
            tfx.orchestration.LocalDagRunner().run_with_ir(local_ir(pipeline))
        else:
            tfx.orchestration.LocalDagRunner().run(pipeline)

    serving = tmp_path / "serving" / "m"
    first = served_version(serving, 1700000000)
    run()
    assert last_lookup(tmp_path) == ("COMPLETE", str(first), str(first))
    second = served_version(serving, 1700000900)  # pushed meanwhile (another run, or by hand)
    run()
    if runner == "local_ir":
        assert last_lookup(tmp_path) == ("COMPLETE", str(second), str(second))
    else:  # TFX's cache, keyed on inputs and properties that did not change, answers with the old model
        state, _, recorded = last_lookup(tmp_path)
        assert (state, recorded) == ("CACHED", str(first))


def test_a_version_pinned_after_a_bad_push_is_the_baseline_the_server_serves(tmp_path):
    """Version 2 was pushed and turned out bad; the model config file pins version 1. The next run's lookup (real
    TFX, cache on) hands the run version 1, as the local server serves it; unpinning makes version 2 both again."""
    from tfx import v1 as tfx

    from pipeline.dag.pipeline import local_ir
    from pipeline.serving.model_set import ModelSet

    serving = tmp_path / "serving" / "bert_classifier"
    good, bad = served_version(serving, 1), served_version(serving, 2)
    config = tmp_path / "models.config"

    def pin(policy: str):
        config.write_text('model_config_list { config { name: "bert_classifier" base_path: "serving/bert_classifier" '
                          f'model_platform: "tensorflow" model_version_policy {{ {policy} }} }} }}')

    def lookup_and_server():
        tfx.orchestration.LocalDagRunner().run_with_ir(local_ir(lookup_pipeline(tmp_path, serving, str(config))))
        models = ModelSet.from_config_file(str(config), 1.0, None)
        return last_lookup(tmp_path)[1], set(models.registries["bert_classifier"].aspired())

    pin("specific { versions: 1 }")
    assert lookup_and_server() == (str(good), {1})
    pin("latest { num_versions: 1 }")
    assert lookup_and_server() == (str(bad), {2})


def test_a_model_config_file_that_does_not_serve_the_pipelines_model_is_refused(tmp_path):
    from components.tf_serving import model_config

    config = tmp_path / "models.config"
    config.write_text('model_config_list { config { name: "other" base_path: "/srv/other" } }')
    with pytest.raises(model_config.ConfigError, match="has no model named 'bert_classifier' \\(it has other\\)"):
        model_config.policy_for(str(config), "bert_classifier", str(tmp_path / "serving" / "bert_classifier"))
    config.write_text('model_config_list { config { name: "bert_classifier" base_path: "/srv/elsewhere" } }')
    with pytest.raises(model_config.ConfigError, match="serves 'bert_classifier' from /srv/elsewhere, not from"):
        model_config.policy_for(str(config), "bert_classifier", str(tmp_path / "serving" / "bert_classifier"))
    config.write_text("model_config_list { config { name: ")
    with pytest.raises(model_config.ConfigError, match="is not a text ModelServerConfig"):
        model_config.read(str(config))
