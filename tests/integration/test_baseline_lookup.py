"""BaselineLookup is never answered from a cache: TFX's local runner runs it on every run, cache on, so a model pushed
between two runs is the next run's baseline. The pipeline here is the lookup alone (real TFX, real ML Metadata);
the same step without pipeline/dag/pipeline.py's local_ir is answered from TFX's cache with the old model, which is
what local_ir is there to prevent. The Kubeflow side (the backend's task cache) is in test_kubeflow_executed.py."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def served_version(base: Path, version: int) -> Path:
    folder = base / str(version)
    (folder / "variables").mkdir(parents=True)
    (folder / "variables" / "variables.index").write_text(f"weights {version}")
    (folder / "saved_model.pb").write_text(f"graph {version}")
    return folder


def lookup_pipeline(tmp_path: Path, serving: Path):
    from tfx import v1 as tfx

    from components.baselines.lookup import BaselineLookup
    from pipeline.dag.nodes import BASELINE_LOOKUP

    root = tmp_path / "root"
    node = BaselineLookup(serving_base=str(serving), data_baselines="baselines/DataValidationGate",
                          text_baselines="baselines/TextValidationGate").with_id(BASELINE_LOOKUP)
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
