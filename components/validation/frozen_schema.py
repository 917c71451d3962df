"""A frozen schema for a user's own data: the protection the built-in datasets' curated schemas give, for any data.

Without a curated schema (`--schema`), a run would validate each span against a schema SchemaGen inferred from that
same span: the data checked against itself, so a label drifted to one class, missing labels or a new label value
would all pass. Instead:
- `SchemaCurator` turns SchemaGen's inferred schema into a curated one, with the defaults `schema/<dataset>/` has:
  the label's domain (the label values of the accepted data, in a fixed order: the label ids follow it), the label
  required in TRAINING and absent from SERVING, an L-infinity drift comparator on the label, the text required in
  every example; other columns optional and not part of serving requests.
- `SchemaFreezer`, after both gates passed, writes it once to the pipeline's frozen-schema folder
  (`<pipeline_root>/schema/schema.pbtxt`, with a `text_checks.toml` of the default thresholds beside it), where the
  user can read and edit it. From then on `SchemaCurator` publishes the frozen file instead, so every new span is
  validated against it, never against itself. A data change that is legitimate (a new class) is an edit of that
  file (docs/data.md).

Caching: the curator's parameters are the same before and after the freeze, so a second run on unchanged data takes
it (and Transform, and the Trainer) from the cache; an edit of the frozen file is a new `frozen_edit` parameter (the
edited file's digest, which the runner passes when the file differs from what was frozen), so it is never missed.
"""

# No `from __future__ import annotations` here: TFX's @component reads the real type hints.
import json
import os

from tfx import v1 as tfx

from components.baselines.lookup import resolve_under_root
from components.runtime.storage import write_file
from components.settings.data import text_columns

# Where the frozen schema lives and whether it was edited: components/validation/frozen_files.py (no TFX, for the front
# door).
from components.validation.frozen_files import DIGEST_FILE, SCHEMA_FILE, digest

LABEL_DOMAIN = "label"
LABEL_DRIFT_THRESHOLD = 0.2  # the largest change of one class's share against the last accepted data
TEXT_CHECKS_HEADER = """\
# Thresholds of the checks on the tokenized text (components/validation/text_stats.py), frozen with schema.pbtxt by the
# first accepted run. Shares are fractions; 1.0 turns a max_* check off, 0.0 a min_* check.
"""
SCHEMA_HEADER = """\
# Frozen by the first run whose data passed the checks: every later run validates its data against this file.
# Edit it when the data changes legitimately: add a class to string_domain "label" (with several label columns,
# the string_domain named after the column) at the end, since label ids follow this order; loosen a label's
# drift_comparator threshold; see docs/data.md ("Your own data").
"""


def curate(inferred, text_key: str, label_key: str, label_names):
    """A curated copy of SchemaGen's schema (a schema_pb2.Schema). `label_names`: the label domain (a list), or with
    several label columns {column: domain}: each column then gets a string domain of its own name, and stays required
    only if the accepted data had a value in every row (the inferred schema's fixed shape); a column with gaps lets
    rows go without a value (components/tasks.py)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    domains = dict(label_names) if isinstance(label_names, dict) else {label_key: list(label_names)}
    several = isinstance(label_names, dict)

    schema = schema_pb2.Schema()
    schema.CopyFrom(inferred)
    del schema.string_domain[:]
    for name in ("TRAINING", "SERVING"):
        if name not in schema.default_environment:
            schema.default_environment.append(name)
    for feature in schema.feature:
        if feature.name in text_columns(text_key):  # the text, or both texts of a pair: required
            feature.ClearField("domain_info")
            feature.presence.min_fraction = 1.0
            feature.presence.min_count = 1
            feature.shape.Clear()
            feature.shape.dim.add(size=1)
        elif feature.name in domains:
            # SchemaGen gives a column a fixed shape only when every row had exactly one value; an empty CSV cell is
            # a feature with no value, still "present" (min_fraction 1.0), so presence cannot tell a gap.
            required = not several or feature.HasField("shape")
            feature.type = schema_pb2.BYTES
            feature.ClearField("domain_info")
            feature.domain = feature.name if several else LABEL_DOMAIN
            feature.ClearField("presence")
            if required:
                feature.presence.min_fraction = 1.0
            feature.presence.min_count = 1
            feature.ClearField("shape")
            feature.ClearField("value_count")
            if required:
                feature.shape.dim.add(size=1)
            else:  # a fixed shape would require a value in every example; CsvExampleGen writes an empty cell as
                # a feature with no value, so: at most one
                feature.value_count.max = 1
            feature.ClearField("not_in_environment")
            feature.not_in_environment.append("SERVING")
            feature.drift_comparator.infinity_norm.threshold = LABEL_DRIFT_THRESHOLD
        else:  # an id, a timestamp: never read by the model, so neither required nor checked
            feature.ClearField("domain_info")
            feature.ClearField("presence")
            feature.ClearField("shape")
            feature.ClearField("value_count")
            if "SERVING" not in feature.not_in_environment:
                feature.not_in_environment.append("SERVING")
    missing = [key for key in (*text_columns(text_key), *domains) if key not in {f.name for f in schema.feature}]
    if missing:
        raise ValueError(f"the inferred schema has no feature {', '.join(missing)}")
    for column, values in domains.items():
        schema.string_domain.add(name=column if several else LABEL_DOMAIN, value=list(values))
    return schema


def resolve_frozen_dir(frozen_dir: str, artifact_uri: str) -> str:
    """`frozen_dir` as given (a URI or an absolute path: Kubeflow), or, relative, under the pipeline root."""
    return resolve_under_root(frozen_dir, artifact_uri)


def default_text_checks_toml() -> str:
    from components.validation.text_checks import DEFAULT_CHECKS

    return TEXT_CHECKS_HEADER + "".join(f"{key} = {value}\n" for key, value in DEFAULT_CHECKS.items())


@tfx.dsl.components.component
def SchemaCurator(
        inferred_schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
        schema: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Schema],
        text_key: tfx.dsl.components.Parameter[str],
        label_key: tfx.dsl.components.Parameter[str],
        label_names: tfx.dsl.components.Parameter[str],
        frozen_dir: tfx.dsl.components.Parameter[str],
        frozen_edit: tfx.dsl.components.Parameter[str] = ""):
    """SchemaGen's `inferred_schema` with a curated schema's defaults (`label_names`: the label domain, JSON, or
    {column: domain} with several label columns); or, when
    `frozen_dir` already holds a frozen schema (every run after the first accepted one), that one. `frozen_edit` only
    changes the cache key (see the module's docstring)."""
    import tensorflow as tf
    import tensorflow_data_validation as tfdv

    frozen = os.path.join(resolve_frozen_dir(frozen_dir, schema.uri), SCHEMA_FILE)
    tf.io.gfile.makedirs(schema.uri)  # TFX's local runner creates output folders; KFP's launcher does not
    if tf.io.gfile.exists(frozen):
        tf.io.gfile.copy(frozen, os.path.join(schema.uri, SCHEMA_FILE), overwrite=True)
        return
    inferred = tfdv.load_schema_text(os.path.join(inferred_schema.uri, SCHEMA_FILE))
    curated = curate(inferred, text_key, label_key, json.loads(label_names))
    tfdv.write_schema_text(curated, os.path.join(schema.uri, SCHEMA_FILE))


@tfx.dsl.components.component
def SchemaFreezer(
        schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
        frozen_schema: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Schema],
        frozen_dir: tfx.dsl.components.Parameter[str]):
    """Writes `schema` (and the default text checks) to `frozen_dir` unless a frozen schema is already there; the
    frozen file is also published as `frozen_schema`."""
    import tensorflow as tf

    frozen_dir = resolve_frozen_dir(frozen_dir, frozen_schema.uri)
    target = os.path.join(frozen_dir, SCHEMA_FILE)
    tf.io.gfile.makedirs(frozen_dir)
    if not tf.io.gfile.exists(target):
        with tf.io.gfile.GFile(os.path.join(schema.uri, SCHEMA_FILE)) as f:
            text = f.read()
        checks = os.path.join(frozen_dir, "text_checks.toml")
        if not tf.io.gfile.exists(checks):
            write_file(checks, default_text_checks_toml())
        frozen = SCHEMA_HEADER + text
        write_file(os.path.join(frozen_dir, DIGEST_FILE), digest(frozen.encode()) + "\n")
        write_file(target, frozen)  # last: its presence means the folder is complete
    tf.io.gfile.makedirs(frozen_schema.uri)  # not made by KFP's launcher
    tf.io.gfile.copy(target, os.path.join(frozen_schema.uri, SCHEMA_FILE), overwrite=True)
