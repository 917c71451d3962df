"""The serving check can fail: a model using an op the stock TF Serving image lacks (tensorflow-text's RoundRobinTrim,
newer than the 2.12.1 release the images link), or whose warm-up requests fail, is refused and never pushed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from components.module_files import warmup
from components.release import serving_ops
from components.release.serving_check import ServingCheckError, check_model
from support import REPO

K8S_SERVING = REPO / "k8s" / "serving-deployment.yaml"


def _save(module, folder: Path, requests) -> Path:
    import tensorflow as tf

    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    if requests is not None:
        warmup.write_requests(str(folder), requests)
    return folder


def trimming_model(folder: Path) -> Path:
    """A text model whose graph uses tf_text.RoundRobinTrimmer (op TFText>RoundRobinTrim, tensorflow-text 2.13+)."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    class Trim(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            words = tf.strings.split(text)
            (trimmed,) = tf_text.RoundRobinTrimmer(max_seq_length=3).trim([words])
            return {"words": trimmed.to_tensor(default_value="")}

    return _save(Trim(), folder, [("serving_default", {"text": np.array([b"one two three four"], dtype=object)})])


def core_model(folder: Path, requests="good") -> Path:
    """A text model with TensorFlow's own ops only."""
    import tensorflow as tf

    class Length(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            return {"length": tf.strings.length(text)}

    chosen = {"good": [("serving_default", {"text": np.array([b"abc", b"de"], dtype=object)})],
              "wrong input": [("serving_default", {"sentence": np.array([b"abc"], dtype=object)})],
              "none": None}[requests]
    return _save(Length(), folder, chosen)


def test_the_op_list_is_the_pinned_images_and_lacks_the_newer_text_ops():
    serving = serving_ops.load_serving_ops()
    assert serving.image in K8S_SERVING.read_text()  # the image k8s/ deploys is the one the list describes
    assert serving.tensorflow_text_version == "2.12.1"
    assert {"WordpieceTokenizeWithOffsets", "RegexSplitWithOffsets", "NormalizeUTF8", "CaseFoldUTF8"} <= serving.ops
    assert "TFText>RoundRobinTrim" not in serving.ops and "TFText>RoundRobinGenerateMasks" not in serving.ops
    assert {"MatMul", "StatefulPartitionedCall", "ParseExampleV2", "LookupTableFindV2"} <= serving.ops
    data = json.loads(serving_ops.OPS_FILE.read_text())
    assert "scripts/tf_serving_ops.py" in data["source"] and len(data["tensorflow_ops"]) > 1000


def test_ops_are_found_through_the_signatures_function_calls(tmp_path):
    by_signature = serving_ops.signature_ops(str(trimming_model(tmp_path / "trim")))
    assert "TFText>RoundRobinTrim" in by_signature["serving_default"]  # inside the signature's called functions
    assert "StringSplitV2" in by_signature["serving_default"]
    assert serving_ops.missing_ops(str(tmp_path / "trim"), serving_ops.load_serving_ops()) == {
        "serving_default": ["TFText>RoundRobinTrim"]}
    assert serving_ops.missing_ops(str(core_model(tmp_path / "core")), serving_ops.load_serving_ops()) == {}


def test_a_model_with_an_op_outside_the_image_is_refused_naming_it(tmp_path):
    with pytest.raises(ServingCheckError) as refused:
        check_model(str(trimming_model(tmp_path / "trim")))
    message = str(refused.value)
    assert "signature 'serving_default' uses op TFText>RoundRobinTrim" in message
    assert "tensorflow/serving:2.16.1 does not have" in message and "neither evaluated nor pushed" in message


@pytest.mark.slow  # the warm-up probe: a fresh interpreter that loads TensorFlow (~5 s)
@pytest.mark.parametrize("requests,reason", [("wrong input", "warm-up request 1 on 'serving_default' failed"),
                                             ("none", "no warm-up requests")])
def test_a_model_whose_warmup_fails_in_a_fresh_process_is_refused(tmp_path, requests, reason):
    with pytest.raises(ServingCheckError, match=reason):
        check_model(str(core_model(tmp_path / "m", requests)))


@pytest.mark.slow  # the warm-up probe: a fresh interpreter that loads TensorFlow (~5 s)
def test_a_good_model_passes_with_its_figures(tmp_path):
    report = check_model(str(core_model(tmp_path / "core")))
    assert report["image"] == "tensorflow/serving:2.16.1" and report["warmup_requests"] == 1 and report["ops"] > 0


def _push_pipeline(root: Path, model_uri: Path, serving: Path):
    """Importer (the model) -> ServingCheck -> Pusher, as in pipeline/dag/pipeline.py."""
    from tfx import v1 as tfx
    from tfx.dsl.components.base import executor_spec

    from components.release.pusher import AtomicPusherExecutor
    from components.release.serving_check import ServingCheck

    model = tfx.dsl.Importer(source_uri=str(model_uri), artifact_type=tfx.types.standard_artifacts.Model
                             ).with_id("model")
    check = ServingCheck(model=model.outputs["result"])
    pusher = tfx.components.Pusher(
        model=model.outputs["result"], infra_blessing=check.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(filesystem=tfx.proto.PushDestination.Filesystem(
            base_directory=str(serving))),
        custom_executor_spec=executor_spec.ExecutorClassSpec(AtomicPusherExecutor))
    return tfx.dsl.Pipeline(
        pipeline_name="serving_check", pipeline_root=str(root / "root"), components=[model, check, pusher],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(root / "metadata.db")))


@pytest.mark.slow  # two TFX pipelines
def test_in_a_pipeline_a_refused_model_is_never_pushed_and_a_servable_one_is(tmp_path):
    from tfx import v1 as tfx

    trimming_model(tmp_path / "bad" / "Format-Serving")
    with pytest.raises(Exception) as failed:
        tfx.orchestration.LocalDagRunner().run(_push_pipeline(tmp_path / "run1", tmp_path / "bad",
                                                              tmp_path / "serving1"))
    cause = failed.value
    while not isinstance(cause, ServingCheckError) and (cause.__cause__ or cause.__context__):
        cause = cause.__cause__ or cause.__context__
    assert isinstance(cause, ServingCheckError) and "TFText>RoundRobinTrim" in str(cause)
    assert not (tmp_path / "serving1").exists() or not any(p.name.isdigit() for p in (tmp_path / "serving1").iterdir())

    core_model(tmp_path / "good" / "Format-Serving")
    tfx.orchestration.LocalDagRunner().run(_push_pipeline(tmp_path / "run2", tmp_path / "good", tmp_path / "serving2"))
    versions = [p for p in (tmp_path / "serving2").iterdir() if p.name.isdigit()]
    assert len(versions) == 1 and (versions[0] / warmup.ASSETS_EXTRA / warmup.WARMUP_FILE).exists()
