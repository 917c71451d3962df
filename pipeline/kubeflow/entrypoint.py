"""The command of every step of the compiled pipeline (`python -m pipeline.kubeflow.entrypoint ARGS`): TFX's
`kubeflow_v2_run_executor`, after giving each input artifact the type its component declares.

TFX's entrypoint finds the class of an input artifact (tfx.Examples, tfx.Schema, ...) only in the artifact's own
`type`. Vertex AI Pipelines fills that in; the open-source KFP v2 driver does not: it hands over artifacts read back
from its metadata store with an empty instance schema, and TFX 1.16 then fails every step that has an input
(`'NoneType' object has no attribute 'get'`, tensorflow/tfx#7768). The spec already carries each step's input
definitions (TFX passes them as --json_serialized_inputs_spec_args with pipeline spec 2.1), so the type of an input
without one is taken from there. Artifacts that have a type keep it.

The open-source driver also adds an output artifact of its own to every step, `executor-logs` (a `system.Artifact`
the launcher uploads the step's log to, when the backend publishes logs: its default; backend/src/v2/driver/driver.go
L747-760). TFX's entrypoint imports a class for every output's type and fails on that one (`Could not import
system.Artifact`), so it is removed before TFX sees the ExecutorInput; the launcher still uploads the log.

On an S3-compatible pipeline root (s3://) TensorFlow needs tensorflow-io's S3 file system, which importing
tensorflow_io registers: done here when the ExecutorInput names an s3:// URI. The step then ends with os._exit
(components/runtime/quiet_exit.py): tensorflow-io 0.37.1 aborts a process at exit once its S3 file system was used
(exit status 134, tensorflow/io#2039), which the launcher would report as a failed step after it succeeded.

Everything else is TFX's entrypoint unchanged, except that Beam steps do not build TFX's ephemeral package
(pipeline/dag/beam_dependencies.py).
"""

from __future__ import annotations

import json
import sys
from typing import List

INVOCATION = "--json_serialized_invocation_args"
INPUTS_SPEC = "--json_serialized_inputs_spec_args"
KFP_OUTPUTS = ("executor-logs",)  # outputs the open-source driver adds, which no TFX component declares


def _flag_value(argv: List[str], flag: str):
    """(index of the argument holding the value, value, prefix before the value) of `flag VALUE` or `flag=VALUE` in
    argv, or (None, None, None)."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return i + 1, argv[i + 1], ""
        if arg.startswith(flag + "="):
            return i, arg[len(flag) + 1:], flag + "="
    return None, None, None


def _untyped(artifact: dict) -> bool:
    kind = artifact.get("type") or {}
    return not (kind.get("schemaTitle") or (kind.get("instanceSchema") or "").strip() or kind.get("schemaUri"))


def with_input_types(argv: List[str]) -> List[str]:
    """argv with the ExecutorInput's untyped input artifacts given their declared artifactType, and without the
    outputs KFP's driver adds for itself (KFP_OUTPUTS)."""
    at, invocation, prefix = _flag_value(argv, INVOCATION)
    _, inputs_spec, _ = _flag_value(argv, INPUTS_SPEC)
    if invocation is None:
        return list(argv)
    executor_input = json.loads(invocation)
    declared = json.loads(inputs_spec).get("artifacts", {}) if inputs_spec is not None else {}
    changed = False
    for key, listing in executor_input.get("inputs", {}).get("artifacts", {}).items():
        artifact_type = declared.get(key, {}).get("artifactType")
        for artifact in listing.get("artifacts", []):
            if artifact_type and _untyped(artifact):
                artifact["type"] = artifact_type
                changed = True
    outputs = executor_input.get("outputs", {}).get("artifacts", {})
    for key in KFP_OUTPUTS:
        changed = outputs.pop(key, None) is not None or changed
    if not changed:
        return list(argv)
    out = list(argv)
    out[at] = prefix + json.dumps(executor_input)
    return out


def main() -> None:
    from absl import app
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    from components.runtime import object_store
    from components.runtime.quiet_exit import quiet_exit
    from pipeline.dag import beam_dependencies

    beam_dependencies.skip_tfx_package()
    sys.argv = with_input_types(sys.argv)
    object_store.load_file_systems(["s3://"] if any("s3://" in arg for arg in sys.argv) else [])
    try:
        app.run(kubeflow_v2_run_executor.main, flags_parser=kubeflow_v2_run_executor._parse_flags)  # noqa: SLF001
    except SystemExit as e:  # absl ends with sys.exit: its status, without the interpreter's teardown
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
        quiet_exit(code)
    quiet_exit(0)


if __name__ == "__main__":
    main()
