"""The frozen schema of a pipeline without --schema (components/validation/frozen_schema.py), on small in-memory inputs.
"""

import pandas as pd
import tensorflow_data_validation as tfdv

from components.validation import frozen_files, frozen_schema


def _inferred():
    frame = pd.DataFrame({"body": ["a text", "another text", "more"] * 10, "topic": ["b", "a", "b"] * 10,
                          "id": [f"id-{i}" for i in range(30)]})
    return tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(frame), infer_feature_shape=True)


def test_curate_gives_the_defaults_of_a_curated_schema():
    schema = frozen_schema.curate(_inferred(), "body", "topic", ["b", "a"])
    features = {f.name: f for f in schema.feature}
    label, text, extra = features["topic"], features["body"], features["id"]
    assert label.domain == "label" and [list(d.value) for d in schema.string_domain] == [["b", "a"]]  # given order
    assert label.presence.min_fraction == 1.0 and list(label.not_in_environment) == ["SERVING"]
    assert label.drift_comparator.infinity_norm.threshold == frozen_schema.LABEL_DRIFT_THRESHOLD
    assert text.presence.min_fraction == 1.0 and [d.size for d in text.shape.dim] == [1]
    assert not extra.HasField("presence") and "SERVING" in extra.not_in_environment  # never read by the model
    assert set(schema.default_environment) == {"TRAINING", "SERVING"}
    # What it validates: a label outside the domain, and missing labels, are anomalies against it.
    bad = tfdv.generate_statistics_from_dataframe(pd.DataFrame({"body": ["x"] * 4, "topic": ["a", "c", "b", "a"]}))
    anomalies = tfdv.validate_statistics(bad, schema)
    assert "topic" in anomalies.anomaly_info


def test_a_relative_frozen_dir_is_under_the_pipeline_root_of_the_artifact():
    uri = "/data/root/SchemaCurator/schema/17"
    assert frozen_schema.resolve_frozen_dir("schema", uri) == "/data/root/schema"
    assert frozen_schema.resolve_frozen_dir("gs://b/root/schema", uri) == "gs://b/root/schema"
    assert frozen_schema.resolve_frozen_dir("/abs/schema", uri) == "/abs/schema"


def test_an_edit_of_the_frozen_file_is_noticed(tmp_path):
    folder = tmp_path / "schema"
    folder.mkdir()
    text = "feature { name: 'x' }\n"
    (folder / "schema.pbtxt").write_text(text)
    (folder / frozen_files.DIGEST_FILE).write_text(frozen_files.digest(text.encode()) + "\n")
    assert frozen_files.frozen_edit(str(tmp_path)) == ""
    (folder / "schema.pbtxt").write_text(text + "# edited\n")
    assert frozen_files.frozen_edit(str(tmp_path)) == frozen_files.digest((text + "# edited\n").encode())
    assert frozen_files.frozen_edit(str(tmp_path / "nowhere")) == ""
    assert "max_truncated_share = 0.5" in frozen_schema.default_text_checks_toml()
