"""Unit tests of components/validation/gates.py: anomalies flattened to problems, warnings, the message, the artifact
layout, and the DataValidationGate's function (called directly through TFX's `test_call`, no pipeline)."""

import json
from pathlib import Path

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import standard_artifact_utils

from components.validation import gates

Info = anomalies_pb2.AnomalyInfo


class FakeArtifact:
    """What the gate functions use of a TFX artifact: a folder and the encoded split names."""

    def __init__(self, uri, split_names="", span=0):
        self.uri = str(uri)
        self.split_names = split_names
        self.span = span


def info(*reasons, description="", short_description=""):
    """An AnomalyInfo with reasons given as type names, or (type name, short_description) pairs."""
    result = Info(severity=Info.ERROR, description=description, short_description=short_description)
    for reason in reasons:
        kind, short = reason if isinstance(reason, tuple) else (reason, "")
        result.reason.add(type=Info.Type.Value(kind), short_description=short, description=f"{kind} happened")
    return result


def anomalies(features=None, dataset=None):
    proto = anomalies_pb2.Anomalies()
    for name, value in (features or {}).items():
        proto.anomaly_info[name].CopyFrom(value)
    if dataset is not None:
        proto.dataset_anomaly_info.CopyFrom(dataset)
    return proto


# anomaly_problems --------------------------------------------------------------------------------------------------

def test_kind_is_the_tfdv_type_name():
    problems = gates.anomaly_problems({"train": anomalies(
        {"label": info("ENUM_TYPE_UNEXPECTED_STRING_VALUES", description="Examples contain values missing")})})
    assert problems == [{"split": "train", "feature": "label", "kind": "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
                         "description": "Examples contain values missing"}]


def test_custom_validation_is_named_by_its_short_description():
    problems = gates.anomaly_problems({"train": anomalies(
        {"text": info(("CUSTOM_VALIDATION", "EMPTY_TEXTS"), ("CUSTOM_VALIDATION", "UNKNOWN_TOKENS"),
                      description="d")})})
    assert [p["kind"] for p in problems] == ["EMPTY_TEXTS,UNKNOWN_TOKENS"]


def test_custom_validation_without_short_description_keeps_the_type_name():
    problems = gates.anomaly_problems({"train": anomalies({"text": info("CUSTOM_VALIDATION", description="d")})})
    assert problems[0]["kind"] == "CUSTOM_VALIDATION"


def test_short_description_of_another_type_does_not_replace_its_name():
    problems = gates.anomaly_problems({"train": anomalies(
        {"label": info(("COMPARATOR_L_INFTY_HIGH", "High Linfty distance"), description="d")})})
    assert problems[0]["kind"] == "COMPARATOR_L_INFTY_HIGH"


def test_several_reasons_are_joined_in_their_order():
    problems = gates.anomaly_problems({"eval": anomalies(
        {"text": info("SCHEMA_NEW_COLUMN", ("CUSTOM_VALIDATION", "TRUNCATED_TEXTS"), description="d")})})
    assert problems[0]["kind"] == "SCHEMA_NEW_COLUMN,TRUNCATED_TEXTS"


def test_no_reason_is_unknown():
    problems = gates.anomaly_problems({"train": anomalies({"text": info(description="something")})})
    assert problems[0]["kind"] == "UNKNOWN"


def test_description_falls_back_to_the_short_description():
    problems = gates.anomaly_problems({"train": anomalies(
        {"text": info("SCHEMA_NEW_COLUMN", short_description="New column")})})
    assert problems[0]["description"] == "New column"


def test_hint_is_appended_to_the_description():
    problems = gates.anomaly_problems({"train": anomalies(
        {"text": info("FEATURE_TYPE_LOW_NUMBER_PRESENT", description="Too few values.")})})
    assert problems[0]["description"] == f"Too few values. ({gates.HINTS['FEATURE_TYPE_LOW_NUMBER_PRESENT']})"


def test_the_same_hint_is_appended_once_and_different_hints_sorted():
    same = gates.anomaly_problems({"train": anomalies(
        {"text": info("INVALID_FEATURE_SHAPE", "FEATURE_TYPE_LOW_FRACTION_PRESENT", description="Missing.")})})
    empty_field = gates.HINTS["INVALID_FEATURE_SHAPE"]
    assert same[0]["description"] == f"Missing. ({empty_field})"
    assert same[0]["description"].count("empty CSV field") == 1

    both = gates.anomaly_problems({"train": anomalies(
        {"text": info("FEATURE_TYPE_LOW_NUMBER_PRESENT", "INVALID_FEATURE_SHAPE", description="Missing.")})})
    hints = sorted([empty_field, gates.HINTS["FEATURE_TYPE_LOW_NUMBER_PRESENT"]])
    assert both[0]["description"] == f"Missing. ({hints[0]}; {hints[1]})"


def test_no_hint_for_other_kinds():
    problems = gates.anomaly_problems({"train": anomalies(
        {"label": info("ENUM_TYPE_UNEXPECTED_STRING_VALUES", description="Unexpected values.")})})
    assert problems[0]["description"] == "Unexpected values."


def test_dataset_anomaly_is_feature_dataset_after_the_features_of_its_split():
    problems = gates.anomaly_problems({"train": anomalies(
        {"text": info("SCHEMA_NEW_COLUMN", description="a")},
        dataset=info("DATASET_LOW_NUM_EXAMPLES", description="Too few examples"))})
    assert [(p["feature"], p["kind"]) for p in problems] == [
        ("text", "SCHEMA_NEW_COLUMN"), ("(dataset)", "DATASET_LOW_NUM_EXAMPLES")]
    assert problems[1]["description"] == "Too few examples"


def test_no_dataset_record_without_a_dataset_anomaly():
    assert gates.anomaly_problems({"train": anomalies({"text": info("SCHEMA_NEW_COLUMN", description="a")})}) \
        == [{"split": "train", "feature": "text", "kind": "SCHEMA_NEW_COLUMN", "description": "a"}]


def test_splits_and_features_are_ordered_by_name():
    by_split = {
        "train": anomalies({"text": info("SCHEMA_NEW_COLUMN", description="t1"),
                            "label": info("SCHEMA_NEW_COLUMN", description="t2")},
                           dataset=info("DATASET_LOW_NUM_EXAMPLES", description="t3")),
        "eval": anomalies({"text": info("SCHEMA_NEW_COLUMN", description="e1")}),
    }
    problems = gates.anomaly_problems(by_split)
    assert [(p["split"], p["feature"]) for p in problems] == [
        ("eval", "text"), ("train", "label"), ("train", "text"), ("train", "(dataset)")]


def test_no_anomalies_no_problems():
    assert gates.anomaly_problems({}) == []
    assert gates.anomaly_problems({"train": anomalies_pb2.Anomalies()}) == []


# is_warning and describe_problems ----------------------------------------------------------------------------------

def test_new_column_alone_is_a_warning():
    assert gates.is_warning({"kind": "SCHEMA_NEW_COLUMN"})
    problems = gates.anomaly_problems({"train": anomalies({"extra": info("SCHEMA_NEW_COLUMN", description="x")})})
    assert gates.is_warning(problems[0])


@pytest.mark.parametrize("kind", ["SCHEMA_NEW_COLUMN,ENUM_TYPE_UNEXPECTED_STRING_VALUES",
                                  "ENUM_TYPE_UNEXPECTED_STRING_VALUES,SCHEMA_NEW_COLUMN",
                                  "EMPTY_TEXTS", "UNKNOWN", "COMPARATOR_L_INFTY_HIGH"])
def test_other_or_mixed_kinds_are_not_warnings(kind):
    assert not gates.is_warning({"kind": kind})


def test_describe_problems_names_every_feature_split_and_kind():
    text = gates.describe_problems([
        {"split": "train", "feature": "label", "kind": "COMPARATOR_L_INFTY_HIGH", "description": "drifted"},
        {"split": "eval", "feature": "text", "kind": "EMPTY_TEXTS,UNKNOWN_TOKENS", "description": "bad text"},
    ])
    lines = text.splitlines()
    assert lines[0] == "the data failed validation, so nothing was trained or pushed:"
    # a line per problem, then one line saying what to do; every continuation line indented (one console block)
    assert lines[1:3] == ["  feature 'label' in split 'train': drifted [COMPARATOR_L_INFTY_HIGH]",
                          "  feature 'text' in split 'eval': bad text [EMPTY_TEXTS,UNKNOWN_TOKENS]"]
    assert len(lines) == 4 and lines[3].startswith("  what to do: fix the data, or, if it changed legitimately, ")
    assert "text_checks.toml" in lines[3] and "schema" in lines[3]
    named = gates.describe_problems([{"split": "train", "feature": "label", "kind": "X", "description": "d"}],
                                    fix="edit /data/root/schema/schema.pbtxt")
    assert named.splitlines()[-1] == ("  what to do: fix the data, or, if it changed legitimately, edit "
                                      "/data/root/schema/schema.pbtxt.")


def test_truncation_without_a_baseline_is_a_warning():
    assert gates.is_warning({"kind": "TRUNCATED_TEXTS_REPORTED"})
    assert not gates.is_warning({"kind": "TRUNCATED_TEXTS"})
    assert not gates.is_warning({"kind": "EMPTY_TEXTS,TRUNCATED_TEXTS_REPORTED"})


# write_anomalies / load_anomalies -----------------------------------------------------------------------------------

def test_write_then_load_round_trip(tmp_path):
    written = {
        "train": anomalies({"text": info(("CUSTOM_VALIDATION", "EMPTY_TEXTS"), description="empty")},
                           dataset=info("DATASET_LOW_NUM_EXAMPLES", description="few")),
        "eval": anomalies_pb2.Anomalies(),
    }
    artifact = FakeArtifact(tmp_path / "anomalies")
    gates.write_anomalies(artifact, written)

    # The layout ExampleValidator writes, and TFX's own encoding of the split names.
    assert (tmp_path / "anomalies" / "Split-train" / gates.ANOMALIES_FILE).is_file()
    assert (tmp_path / "anomalies" / "Split-eval" / gates.ANOMALIES_FILE).is_file()
    assert artifact.split_names == standard_artifact_utils.encode_split_names(["eval", "train"])
    assert json.loads(artifact.split_names) == ["eval", "train"]

    loaded = gates.load_anomalies(artifact.uri, artifact.split_names)
    assert set(loaded) == {"train", "eval"}
    assert loaded["train"] == written["train"] and loaded["eval"] == written["eval"]
    assert gates.anomaly_problems(loaded) == gates.anomaly_problems(written)


def test_load_skips_a_split_without_a_file(tmp_path):
    artifact = FakeArtifact(tmp_path)
    gates.write_anomalies(artifact, {"train": anomalies({"text": info("SCHEMA_NEW_COLUMN", description="x")})})
    loaded = gates.load_anomalies(artifact.uri, standard_artifact_utils.encode_split_names(["train", "test"]))
    assert list(loaded) == ["train"]


def test_load_reads_only_the_named_splits(tmp_path):
    artifact = FakeArtifact(tmp_path)
    gates.write_anomalies(artifact, {"train": anomalies(), "eval": anomalies()})
    assert list(gates.load_anomalies(artifact.uri, standard_artifact_utils.encode_split_names(["eval"]))) == ["eval"]


# DataValidationGate, its function called without a pipeline ---------------------------------------------------------

def _statistics(tmp_path: Path) -> FakeArtifact:
    root = tmp_path / "statistics"
    for split in ("train", "eval"):
        (root / f"Split-{split}").mkdir(parents=True)
        (root / f"Split-{split}" / gates.STATISTICS_FILE).write_bytes(f"stats of {split}".encode())
    return FakeArtifact(root, standard_artifact_utils.encode_split_names(["train", "eval"]))


def _anomaly_artifact(tmp_path: Path, name: str, by_split) -> FakeArtifact:
    artifact = FakeArtifact(tmp_path / name)
    gates.write_anomalies(artifact, by_split)
    return artifact


def test_gate_passes_warnings_and_republishes_the_statistics(tmp_path):
    statistics = _statistics(tmp_path)
    found = _anomaly_artifact(tmp_path, "anomalies", {
        "train": anomalies({"review_id": info("SCHEMA_NEW_COLUMN", description="New column")}),
        "eval": anomalies()})
    validated = FakeArtifact(tmp_path / "validated")
    gates.DataValidationGate.test_call(anomalies=found, statistics=statistics, validated_statistics=validated)
    assert validated.split_names == statistics.split_names
    for split in ("train", "eval"):
        assert (tmp_path / "validated" / f"Split-{split}" / gates.STATISTICS_FILE).read_bytes() == \
            f"stats of {split}".encode()


def test_gate_refuses_an_error_and_publishes_nothing(tmp_path):
    found = _anomaly_artifact(tmp_path, "anomalies", {
        "train": anomalies({"review_id": info("SCHEMA_NEW_COLUMN", description="New column"),
                            "label": info("ENUM_TYPE_UNEXPECTED_STRING_VALUES", description="Unexpected 'meh'")})})
    validated = FakeArtifact(tmp_path / "validated")
    with pytest.raises(gates.DataValidationError) as raised:
        gates.DataValidationGate.test_call(anomalies=found, statistics=_statistics(tmp_path),
                                           validated_statistics=validated)
    message = str(raised.value)
    assert "feature 'label' in split 'train': Unexpected 'meh' [ENUM_TYPE_UNEXPECTED_STRING_VALUES]" in message
    assert "review_id" not in message  # the warning is not reported as a reason to stop
    assert not (tmp_path / "validated").exists() and validated.split_names == ""


def test_gate_reads_more_anomalies(tmp_path):
    clean = _anomaly_artifact(tmp_path, "anomalies", {"train": anomalies(), "eval": anomalies()})
    drift = _anomaly_artifact(tmp_path, "drift", {
        "train": anomalies({"label": info("COMPARATOR_L_INFTY_HIGH", description="label drifted")})})
    validated = FakeArtifact(tmp_path / "validated")
    with pytest.raises(gates.DataValidationError, match=r"feature 'label' in split 'train': label drifted"):
        gates.DataValidationGate.test_call(anomalies=clean, statistics=_statistics(tmp_path),
                                           validated_statistics=validated, more_anomalies=drift)
    # The same clean anomalies with clean more_anomalies pass.
    more = _anomaly_artifact(tmp_path, "no-drift", {"train": anomalies()})
    gates.DataValidationGate.test_call(anomalies=clean, statistics=_statistics(tmp_path / "again"),
                                       validated_statistics=validated, more_anomalies=more)
    assert json.loads(validated.split_names) == ["train", "eval"]


def test_a_vocabulary_problem_leads_with_the_vocabulary_advice():
    coverage = {"split": "train", "feature": "text", "kind": "LOW_WORD_COVERAGE", "description": "only 89.6%"}
    text = gates.describe_problems([coverage], fix="edit s.pbtxt", vocabulary_fix="pass --pretrained none")
    assert text.splitlines()[1:] == ["  feature 'text' in split 'train': only 89.6% [LOW_WORD_COVERAGE]",
                                     "  what to do: pass --pretrained none.",
                                     "  otherwise: fix the data, or, if it changed legitimately, edit s.pbtxt."]
    drift = {"split": "train", "feature": "label", "kind": "COMPARATOR_L_INFTY_HIGH", "description": "drifted"}
    assert "--pretrained" not in gates.describe_problems([drift], fix="edit s.pbtxt", vocabulary_fix="pass it")


def test_the_same_problem_in_several_splits_is_said_once_with_the_splits():
    shape = "The feature has a shape, but it's not always present"
    same = [{"split": split, "feature": "text", "kind": "INVALID_FEATURE_SHAPE", "description": shape}
            for split in ("train", "eval", "test")]
    text = gates.describe_problems(same)
    assert text.count(shape) == 1 and "feature 'text' in splits 'train', 'eval', 'test':" in text
    shares = [{"split": "train", "feature": "text", "kind": "EMPTY_TEXTS", "description": "12% empty"},
              {"split": "eval", "feature": "text", "kind": "EMPTY_TEXTS", "description": "15% empty"},
              {"split": "train", "feature": "label", "kind": "X", "description": "d"}]
    text = gates.describe_problems(shares)
    # the same sentence with other figures: said once, with each other split's figures
    assert "  feature 'text' [EMPTY_TEXTS] in splits 'train', 'eval': 12% empty (in 'train'; 15% in 'eval')" in text
    assert "  feature 'label' in split 'train': d [X]" in text
    coverage = "the vocabulary represents only {}% of the words of column 'text'; min_word_coverage is 0.95."
    splits = [{"split": split, "feature": "text", "kind": "LOW_WORD_COVERAGE", "description": coverage.format(share)}
              for split, share in (("eval", 86.7), ("test", 84.4), ("train", 83.8))]
    assert gates.describe_problems(splits).splitlines()[1] == (
        "  feature 'text' [LOW_WORD_COVERAGE] in splits 'eval', 'test', 'train': " + coverage.format(86.7) +
        " (in 'eval'; 84.4% in 'test', 83.8% in 'train')")
    unlike = [{"split": "train", "feature": "text", "kind": "K", "description": "one thing"},
              {"split": "eval", "feature": "text", "kind": "K", "description": "another"}]
    assert "  feature 'text' [K] in splits 'train', 'eval': in 'train', one thing; in 'eval', another" in \
        gates.describe_problems(unlike)


def test_several_reasons_of_a_feature_are_said_a_line_each():
    both = info(("CUSTOM_VALIDATION", "EMPTY_TEXTS"), ("CUSTOM_VALIDATION", "UNKNOWN_TOKENS"), description="joined")
    problems = gates.anomaly_problems({"train": anomalies({"text": both})})
    assert problems[0]["kind"] == "EMPTY_TEXTS,UNKNOWN_TOKENS" and problems[0]["description"] == "joined"
    lines = gates.describe_problems(problems).splitlines()
    assert lines[1:3] == ["  feature 'text' in split 'train': CUSTOM_VALIDATION happened [EMPTY_TEXTS]",
                          "  feature 'text' in split 'train': CUSTOM_VALIDATION happened [UNKNOWN_TOKENS]"]


def test_a_warning_of_several_splits_is_one_sentence():
    cut = "{} of {} texts ({}%) are longer than 32 tokens and are cut (reported, not refused, on a first run)."
    problems = [{"split": split, "feature": "text", "kind": "TRUNCATED_TEXTS_REPORTED", "description": cut.format(*f)}
                for split, f in (("eval", (18, 57, 31.6)), ("test", (11, 47, 23.4)), ("train", (162, 496, 32.7)))]
    assert gates.said_once(problems) == [
        "feature 'text' [TRUNCATED_TEXTS_REPORTED] in splits 'eval', 'test', 'train': " + cut.format(18, 57, 31.6) +
        " (in 'eval'; 11 / 47 / 23.4% in 'test', 162 / 496 / 32.7% in 'train')"]
