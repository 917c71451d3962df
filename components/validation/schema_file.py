"""What a schema.pbtxt says about a column, read with its proto alone (no TFDV, no TensorFlow: the front door reads it
before anything heavy loads): a label column's string domain, whether a column must have a value in every example.
Both runners' front doors read the curated, given or frozen schema this way."""

from __future__ import annotations

from typing import Optional, Tuple

from components.ingestion.csv_files import DataFileError, text_columns


def _parsed(schema_file: str):
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    with open(schema_file, encoding="utf-8") as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


def schema_requires_text(schema_file: str, text_key: str) -> bool:
    """Whether a schema.pbtxt requires the text (either text of a pair) in every example (presence.min_fraction 1,
    as the curated and the frozen schemas do); a schema that lets it be missing leaves empty texts to the pipeline's
    own checks."""
    schema = _parsed(schema_file)
    for column in text_columns(text_key):
        feature = next((f for f in schema.feature if f.name == column), None)
        if feature is None or not feature.HasField("presence") or feature.presence.min_fraction >= 1.0:
            return True
    return False


def _schema_feature(schema_file: str, column: str):
    schema = _parsed(schema_file)  # TFDV's load_schema_text does the same but imports TensorFlow (seconds)
    feature = next((f for f in schema.feature if f.name == column), None)
    if feature is None:
        raise DataFileError(f"schema {schema_file} has no feature {column!r} (a label column).", "INVALID_INPUT",
                            feature=column, path=schema_file)
    return schema, feature


def schema_label_names(schema_file: str, label_key: str) -> Optional[Tuple[str, ...]]:
    """The label column's string domain in a schema.pbtxt, or None when the schema does not restrict it."""
    schema, feature = _schema_feature(schema_file, label_key)
    if feature.HasField("string_domain"):
        return tuple(feature.string_domain.value)
    if feature.domain:
        domain = next((d for d in schema.string_domain if d.name == feature.domain), None)
        if domain is not None:
            return tuple(domain.value)
    return None


def schema_allows_missing(schema_file: str, column: str) -> bool:
    """Whether a schema.pbtxt lets the label column go without a value in a row (no presence.min_fraction of 1)."""
    _, feature = _schema_feature(schema_file, column)
    return not (feature.HasField("presence") and feature.presence.min_fraction >= 1.0)
