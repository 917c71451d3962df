"""A compiled KFP v2 pipeline spec, executed on this machine the way KFP's v2 driver and launcher execute it.

`execute_spec(spec, pipeline_root, env, launcher=CONFIG_MAP, secrets=SECRETS)` walks the root DAG in dependency
order. For each container task it does what KFP's driver and launcher (kubeflow/pipelines, backend/src/v2/driver and
backend/src/v2/component) do:

- parameters: a task input's runtime constant, the pipeline's runtime parameter it reads (the PipelineJob's
  runtimeConfig, else the root input's default), or an upstream task's output parameter; then the component's own
  input defaults for what is still missing (the launcher's addDefaultParams);
- input artifacts: the upstream task's output artifact as KFP's metadata store hands it back: `name` is the store's
  artifact id, `uri` as published, `metadata` is what the producer's executor reported in its ExecutorOutput,
  turned into store properties and back (strings stay strings, numbers become doubles, booleans 0/1, lists and
  structs wrapped in {"list": ...}/{"struct": ...}, plus the launcher's `display_name` and `store_session_info`),
  and `type` an instance schema the driver leaves empty (it does not know the schema of a stored artifact);
- outputs: one artifact per output of the component, `name` its output key, `type` the output's schema, `uri`
  PIPELINE_ROOT/PIPELINE_NAME/RUN_ID/TASK/SALT/KEY; output parameters in files under the task's scratch folder;
  `outputs.outputFile` TASK_ROOT's local path on the pod's disk + /output_metadata.json, as the driver sets it;
- the task's own container command and arguments from the spec's deploymentSpec, with `{{$}}` (the ExecutorInput as
  JSON) and the launcher's other placeholders substituted, `python` replaced by the given interpreter, run in a
  process of its own from a scratch folder (so the code comes from PYTHONPATH, as from the image's /pipeline;
  forked from a server that has imported TensorFlow, TFX and Beam: support/task_process.py);
- after exit 0, the executor's ExecutorOutput file: its artifact metadata (and a changed URI) merged into the output
  artifacts as the launcher does, its parameter values (or the output parameter files) as output parameters.

- the task cache, as the backend keeps it across runs (backend/src/v2/driver/cache.go, cacheutils/cache.go): a task
  whose cachingOptions.enableCache is set is looked up by the backend's fingerprint (`cache_key`, `fingerprint`:
  checked against the backend's own Go tests, tests/fixtures/kfp_cache_keys.json) within the pipeline's name; a hit
  republishes the cached execution's artifacts (the same ids) and parameters and runs nothing. Entries are written
  only after a task succeeds. `Server` holds the store and the cache, so several runs of one spec (each
  `execute_spec` call with the same server) behave as a recurring run does;
- the driver's `executor-logs` output artifact, which it adds to every container task's outputs when the backend
  publishes logs (its default; backend/src/v2/driver/driver.go L747-760);
- the launcher's object store (support/kfp_storage.py): the run's store session comes from the `kfp-launcher`
  ConfigMap an administrator wrote (`launcher`, a manifest) and the namespace's secrets, never from the pods'
  environment; with it, inputs are downloaded to the pod's disk, output folders' parents prepared, local paths
  uploaded after exit 0 (or skipped when the executor wrote none), and the log uploaded. A launcher that cannot
  reach the store fails its task (status FAILED, `launcher_error`), as a stock install without `providers.s3` fails
  an s3:// root. The pipeline root must be an object store, as the root DAG's driver requires (a local folder is
  refused: objectstore/config.go L130-139); only s3:// is reproduced (no other server runs here).
- the pod's environment: this process's, less its own store settings and credentials (AWS_*, S3_*), then the image's
  (`env`), the container's env and the platform spec's secretAsEnv (driver/k8s.go).

Before anything runs, the spec and its platform spec are checked against what the open-source backend refuses or
silently drops (tests/support/kfp_rules.py): a resolver executor, for one, is refused there at run creation and here
with the same rule. Importer tasks publish the artifact at their URI with their metadata. A task whose upstream
failed or was not triggered is not run. A task's trigger condition (the form TFX compiles a Cond to, the only one
kfp_rules.py models) is evaluated on its ExecutorInput before the cache and the launcher, as the driver does: false,
and its executor does not run (NOT_TRIGGERED). Loops and sub-DAGs are not used by this project's spec and are refused
rather than guessed; so is a placeholder the launcher would not substitute.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from support import kfp_rules, kfp_storage
from support.task_process import run_command

REPO = Path(__file__).resolve().parents[2]
EXECUTOR_OUTPUT = "output_metadata.json"
LOGS_OUTPUT = "executor-logs"  # the driver's extra output when logs are published (driver.go L747-760)


class RefusedSpec(ValueError):
    """The open-source backend would refuse this spec (the message lists each rule broken and its source)."""


class RunFailed(RuntimeError):
    """The run fails before any task: the root DAG's driver cannot make the run's store session."""


@dataclasses.dataclass
class TaskResult:
    name: str
    kind: str  # container, importer, resolver
    # SUCCEEDED, CACHED (outputs reused, nothing run), FAILED, NOT_TRIGGERED (its trigger condition was false: the
    # executor did not run), SKIPPED (an upstream task failed or was not triggered: its driver never ran)
    status: str
    returncode: Optional[int] = None
    seconds: float = 0.0
    executor_input: Optional[dict] = None  # as substituted for {{$}}
    command: Optional[List[str]] = None
    executor_output: Optional[dict] = None  # the ExecutorOutput file the executor wrote (None: it wrote none)
    artifacts: Dict[str, List[dict]] = dataclasses.field(default_factory=dict)  # output key -> RuntimeArtifacts
    parameters: Dict[str, Any] = dataclasses.field(default_factory=dict)  # output parameter -> value
    log: Optional[Path] = None
    fingerprint: Optional[str] = None  # the cache key, for a task with caching on
    downloaded: List[str] = dataclasses.field(default_factory=list)  # s3 root: the input keys copied to the pod
    uploads: Dict[str, str] = dataclasses.field(default_factory=dict)  # s3 root: per output, what the launcher did
    launcher_error: Optional[str] = None  # FAILED by the launcher or the pod, not by the command

    def log_tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log and self.log.exists() else ""


def load(spec_or_path: Union[str, os.PathLike, Mapping]) -> tuple:
    """(PipelineSpec dict, runtimeConfig parameterValues, platform spec or {}) of a PipelineJob or PipelineSpec
    (dict, JSON or YAML; a YAML file's second document is its platform spec)."""
    document, platform = spec_or_path, {}
    if not isinstance(spec_or_path, Mapping):
        text = Path(spec_or_path).read_text(encoding="utf-8")
        if str(spec_or_path).endswith(".json"):
            document = json.loads(text)
        else:
            import yaml

            documents = [d for d in yaml.safe_load_all(text) if d is not None]
            document = documents[0]
            platform = next((d for d in documents[1:] if "platforms" in d), {})
    document = json.loads(json.dumps(document))  # a copy
    if "pipelineSpec" in document:
        spec, values = document["pipelineSpec"], document.get("runtimeConfig", {}).get("parameterValues", {})
        platform = document.get("platformSpec") or platform
    else:
        spec, values = document, {}
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())  # a valid spec, or ParseError
    return spec, values, platform


def dag_order(tasks: Mapping[str, dict]) -> List[str]:
    """Task names in an order where every task comes after the tasks it depends on (ties by name)."""
    upstream = {name: _upstream(task) for name, task in tasks.items()}
    order: List[str] = []
    while len(order) < len(tasks):
        ready = sorted(n for n in tasks if n not in order and upstream[n] <= set(order))
        if not ready:
            raise ValueError(f"cycle or unknown task among {sorted(set(tasks) - set(order))}")
        order.append(ready[0])
    return order


def _upstream(task: dict) -> set:
    deps = set(task.get("dependentTasks", []))
    inputs = task.get("inputs", {})
    for spec in list(inputs.get("artifacts", {}).values()) + list(inputs.get("parameters", {}).values()):
        for key in ("taskOutputArtifact", "taskOutputParameter"):
            if key in spec:
                deps.add(spec[key]["producerTask"])
    return deps


class _Store:
    """What KFP's metadata store keeps of published artifacts, and gives back to the driver."""

    def __init__(self):
        self.next_id = 1

    def publish(self, artifact: dict, output_key: str, session: kfp_storage.Session) -> dict:
        """The RuntimeArtifact a downstream driver receives for `artifact` (launcher RecordArtifact, then
        toRuntimeArtifact), with the run's store session (metadata/client.go L623)."""
        metadata = {key: _stored_value(value) for key, value in (artifact.get("metadata") or {}).items()}
        metadata.setdefault("display_name", output_key)
        metadata.setdefault("store_session_info", session.to_json())
        stored = {"name": str(self.next_id), "uri": artifact["uri"], "metadata": metadata,
                  "type": {"instanceSchema": ""}}
        self.next_id += 1
        return stored


@dataclasses.dataclass
class Server:
    """The backend's state that outlives a run: the metadata store and the task cache (fingerprint -> the
    published outputs and parameters of the execution that succeeded with it), per pipeline name. `cache`: the
    server-level switch (the API server's CacheEnabled)."""

    cache: bool = True
    publish_logs: bool = True
    store: _Store = dataclasses.field(default_factory=_Store)
    entries: Dict[tuple, dict] = dataclasses.field(default_factory=dict)
    runs: List[str] = dataclasses.field(default_factory=list)


def cache_key(executor_input: dict, output_parameter_types: Mapping[str, str], cmd_args: List[str], image: str,
              pvc_names=()) -> dict:
    """The backend's CacheKey of a container task (cacheutils/cache.go GenerateCacheKey L173-229, called from
    driver/cache.go L83-117), in protojson form (empty fields left out): the store ids of the input artifacts, the
    resolved input parameters, the output artifacts without their URIs, the output parameters' types, and the raw
    (unsubstituted) command + arguments, the image and the PVC names (which the driver sorts)."""
    inputs, outputs = executor_input.get("inputs", {}), executor_input.get("outputs", {})
    artifacts_out = {}
    for key, listing in outputs.get("artifacts", {}).items():
        if listing.get("artifacts"):
            artifact = listing["artifacts"][0]
            artifacts_out[key] = {k: artifact[k] for k in ("name", "type", "metadata") if k in artifact and
                                  (artifact[k] or k == "metadata")}
    unknown = sorted(set(outputs.get("parameters", {})) - set(output_parameter_types))
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r} found in ExecutorInput_Outputs")
    container = {"image": image, "cmdArgs": list(cmd_args), "pvcNames": list(pvc_names)}
    key = {"inputArtifactNames": {k: {"artifactNames": [a["name"] for a in v.get("artifacts", []) if a.get("name")]}
                                  for k, v in inputs.get("artifacts", {}).items()},
           "inputParameterValues": dict(inputs.get("parameterValues", {})),
           "outputArtifactsSpec": artifacts_out,
           "outputParametersSpec": {k: output_parameter_types[k] for k in outputs.get("parameters", {})},
           "containerSpec": {k: v for k, v in container.items() if v}}
    for listing in key["inputArtifactNames"].values():
        if not listing["artifactNames"]:
            del listing["artifactNames"]  # an empty ArtifactNameList is `{}` in protojson
    return {k: v for k, v in key.items() if v}


def fingerprint(key: Mapping) -> str:
    """GenerateFingerPrint (cacheutils/cache.go L151-171): the key's JSON as Go's encoding/json writes it (sorted
    keys, no spaces, HTML characters escaped, numbers as float64s), then sha256."""
    import hashlib

    return hashlib.sha256(_go_json(key).encode("utf-8")).hexdigest()


def _go_json(value) -> str:
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_go_json(str(k))}:{_go_json(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_go_json(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return _go_float(float(value))
    text = json.dumps(str(value), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                          ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _go_float(number: float) -> str:
    """strconv's shortest form as encoding/json writes a float64 (encode.go floatEncoder): fixed notation from 1e-6
    to 1e21, else an exponent without a leading zero."""
    from decimal import Decimal

    if number == 0:
        return "0"
    if 1e-6 <= abs(number) < 1e21:
        text = format(Decimal(repr(number)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa, exponent = repr(number).split("e")
    sign, digits = exponent[0], exponent[1:].lstrip("0") or "0"
    return f"{mantissa}e{sign}{digits.zfill(2) if sign == '+' else digits}"


def cache_fingerprint(executor_input: dict, outputs_spec: dict, container: dict, pvc_names=()) -> str:
    """The fingerprint the driver computes for a container task (driver/cache.go L83-117: the output parameters'
    type names, the command then the arguments, the PVC names deduplicated and sorted)."""
    types = {k: v.get("parameterType", "PARAMETER_TYPE_ENUM_UNSPECIFIED")
             for k, v in outputs_spec.get("parameters", {}).items()}
    return fingerprint(cache_key(executor_input, types, [*container.get("command", []), *container.get("args", [])],
                                 container.get("image", ""), sorted(set(pvc_names))))


def _stored_value(value):
    """A metadata value after a trip through the store (StructValueToMLMDValue, then back)."""
    if isinstance(value, bool):
        return float(int(value))
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list):
        return {"list": value}
    if isinstance(value, dict):
        return {"struct": value}
    return value


def _placeholders(executor_input: dict, disk: Path) -> Dict[str, str]:
    """The launcher's placeholders other than {{$}} (getPlaceholders, launcher_v2.go L1077-1173): an artifact's
    `.path` is its local path on the pod's disk."""
    result = {}
    for name, listing in executor_input["inputs"].get("artifacts", {}).items():
        if listing["artifacts"]:
            uri = listing["artifacts"][0]["uri"]
            result[f"{{{{$.inputs.artifacts['{name}'].uri}}}}"] = uri
            result[f"{{{{$.inputs.artifacts['{name}'].path}}}}"] = str(kfp_storage.local_path_for_uri(uri, disk))
    for name, listing in executor_input["outputs"].get("artifacts", {}).items():
        uri = listing["artifacts"][0]["uri"]
        result[f"{{{{$.outputs.artifacts['{name}'].uri}}}}"] = uri
        result[f"{{{{$.outputs.artifacts['{name}'].path}}}}"] = str(kfp_storage.local_path_for_uri(uri, disk))
    for name, value in executor_input["inputs"].get("parameterValues", {}).items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, float) and value.is_integer():
            text = str(int(value))
        elif isinstance(value, (list, dict)):
            text = json.dumps(value, separators=(",", ":"))
        else:
            text = str(value)
        result[f"{{{{$.inputs.parameters['{name}']}}}}"] = text
    for name, spec in executor_input["outputs"].get("parameters", {}).items():
        result[f"{{{{$.outputs.parameters['{name}'].output_file}}}}"] = spec["outputFile"]
    return result


def _substitute(items: List[str], executor_input_json: str, placeholders: Mapping[str, str]) -> List[str]:
    out = []
    for item in items:
        item = item.replace("{{$}}", executor_input_json)
        for key, value in placeholders.items():
            item = item.replace(key, value)
        out.append(item)
    return out


def _parameter_from_file(path: Path, kind: str):
    text = path.read_text(encoding="utf-8")
    if kind in ("NUMBER_INTEGER", "NUMBER_DOUBLE"):
        return float(text)
    if kind == "BOOLEAN":
        return text.strip().lower() == "true"
    if kind in ("LIST", "STRUCT"):
        return json.loads(text)
    return text


# This process's own store settings and credentials, which a pod does not inherit from the machine that runs the test.
NOT_THE_PODS = ("AWS_", "S3_", "GOOGLE_APPLICATION_CREDENTIALS")


def execute_spec(spec_or_path: Union[str, os.PathLike, Mapping], pipeline_root: str,
                 env: Optional[Mapping[str, str]] = None, *, launcher: Optional[Mapping] = None,
                 secrets: Optional[Mapping[str, Mapping[str, str]]] = None,
                 parameter_values: Optional[Mapping[str, Any]] = None, python: str = sys.executable,
                 run_id: Optional[str] = None, timeout: float = 1800, on_task=None, server: Optional[Server] = None,
                 scratch_root: Optional[Path] = None) -> Dict[str, TaskResult]:
    """Executes every task of the spec's root DAG; returns TaskResult per task name, in the order they ran.

    `pipeline_root`: the run's pipeline root (KFP's runtimeConfig.pipelineRoot), an s3:// URI; `env`: the image's
    environment (PYTHONPATH to the code, TF_USE_LEGACY_KERAS, ...); `launcher`: the kfp-launcher ConfigMap of the
    run's namespace, as a manifest (None: there is none, the backend's default config); `secrets`: the namespace's
    Kubernetes secrets (name -> key -> value), which the launcher's session and the platform spec's secretAsEnv name;
    `parameter_values`: runtime parameters of the run (others keep the PipelineJob's values or the defaults);
    `python` stands for the image's `python`; `on_task(result)` is called after each task; `server`: the backend's
    store and cache, kept across the runs given the same one (a new, empty one by default: a first run);
    `scratch_root`: a local folder for the pods' own disks. Raises RefusedSpec, before running anything, for a spec
    the open-source backend refuses, and RunFailed when the root DAG's driver fails (no store session)."""
    spec, job_values, platform = load(spec_or_path)
    broken = kfp_rules.violations(spec, platform)
    if broken:
        raise RefusedSpec("the open-source KFP backend refuses this spec:\n" + "\n".join(broken))
    server = server or Server()
    declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    root_params = {name: p["defaultValue"] for name, p in declared.items() if "defaultValue" in p}
    root_params.update(job_values)
    root_params.update(parameter_values or {})
    missing = sorted(name for name, p in declared.items() if name not in root_params and not p.get("isOptional"))
    if missing:
        raise ValueError(f"runtime parameters without a value: {missing}")
    pipeline_root = str(pipeline_root)
    try:  # the root DAG's driver: the run's store session (driver/root_dag.go L103-127)
        session = kfp_storage.store_session(kfp_storage.launcher_config(launcher), pipeline_root)
    except kfp_storage.LauncherError as e:
        raise RunFailed(f"driver.RootDAG failed: {e}") from None
    if not pipeline_root.startswith("s3://"):
        raise NotImplementedError("of the object stores, only s3:// is reproduced here (no other server runs here)")
    if scratch_root is None:
        raise ValueError("scratch_root: a local folder for the pods' own disks")

    run_id = run_id or uuid.uuid4().hex[:12]
    if run_id in server.runs:
        raise ValueError(f"run id {run_id} was used already")
    server.runs.append(run_id)
    pipeline_name = spec["pipelineInfo"]["name"]
    run_root = f"{pipeline_root.rstrip('/')}/{pipeline_name}/{run_id}"
    scratch = Path(scratch_root) / run_id  # the pods' own disks
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(NOT_THE_PODS)}
    base_env.update(env or {})
    platform_executors = platform.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {}).get(
        "executors", {})
    tasks = spec["root"]["dag"]["tasks"]
    published: Dict[str, Dict[str, List[dict]]] = {}  # task -> output key -> RuntimeArtifacts as stored
    results: Dict[str, TaskResult] = {}

    for name in dag_order(tasks):
        task = tasks[name]
        component = spec["components"][task["componentRef"]["name"]]
        executor = spec["deploymentSpec"]["executors"][component["executorLabel"]]
        kind = "importer" if "importer" in executor else "container"  # the rules refused anything else
        if any(results[u].status not in DONE for u in _upstream(task)):
            results[name] = TaskResult(name, kind, "SKIPPED")
            continue

        resolved, parameters, artifacts = _task_inputs(name, task, component, root_params, results, published)
        if kind == "importer":
            result, published[name] = _import(name, executor["importer"], parameters, server.store, session)
        else:
            container = executor["container"]
            executor_input = _executor_input(component, parameters, artifacts, run_root, name, scratch / name,
                                             server.publish_logs)
            condition = task.get("triggerPolicy", {}).get("condition")
            if condition:  # the driver evaluates it before the cache and the launcher (driver/container.go L88-95)
                try:
                    triggered = kfp_rules.evaluate_condition(condition, executor_input)
                except kfp_rules.ConditionError as e:
                    triggered, failed = False, str(e)
                else:
                    failed = None
                if failed or not triggered:
                    results[name] = TaskResult(name, kind, "FAILED" if failed else "NOT_TRIGGERED",
                                               executor_input=executor_input, launcher_error=failed)
                    if on_task:
                        on_task(results[name])
                    continue
            key_hash = None
            if server.cache and task.get("cachingOptions", {}).get("enableCache"):
                keyed = {**executor_input, "inputs": {**executor_input["inputs"], "parameterValues": resolved}}
                key_hash = cache_fingerprint(keyed, component.get("outputDefinitions", {}), container)
            hit = server.entries.get((pipeline_name, key_hash)) if key_hash else None
            if hit:  # the container is not run; the cached execution's outputs are republished as they are
                result = TaskResult(name, kind, "CACHED", artifacts=hit["published"], parameters=hit["parameters"],
                                    fingerprint=key_hash)
                published[name] = hit["published"]
            else:
                pod = _Pod(scratch / name, base_env, container, platform_executors.get(component["executorLabel"]),
                           secrets or {}, root_params, pipeline_root, session)
                result = _run_container(name, container, component, executor_input, pod, python, timeout)
                result.fingerprint = key_hash
                if result.status == "SUCCEEDED":
                    published[name] = {key: [server.store.publish(a, key, session) for a in listing]
                                       for key, listing in result.artifacts.items()}
                    if key_hash:  # written by the launcher once the task succeeded
                        server.entries[(pipeline_name, key_hash)] = {"published": published[name],
                                                                     "parameters": dict(result.parameters)}
        results[name] = result
        if on_task:
            on_task(result)
    return results


@dataclasses.dataclass
class _Pod:
    """What one task's pod is given: its disk, the environment the driver builds, and the launcher's store side."""

    scratch: Path
    base_env: Mapping[str, str]
    container: dict
    platform_executor: Optional[dict]
    secrets: Mapping[str, Mapping[str, str]]
    root_params: Mapping[str, Any]
    pipeline_root: str
    session: kfp_storage.Session

    def start(self, name: str):
        """(the pod's environment, its launcher); LauncherError when the pod does not start or the launcher cannot
        open the run's bucket (launcher_v2.go L269-275, before the command)."""
        env = {**self.base_env, **kfp_storage.container_env(self.container, self.platform_executor, self.secrets,
                                                              self.root_params, name)}
        return env, kfp_storage.Launcher(self.pipeline_root, self.session, self.secrets, env)


DONE = ("SUCCEEDED", "CACHED")


def _task_inputs(name, task, component, root_params, results, published):
    """(the parameters the driver resolves, the same with the launcher's component defaults, the artifacts)."""
    parameters: Dict[str, Any] = {}
    for key, source in task.get("inputs", {}).get("parameters", {}).items():
        if "runtimeValue" in source:
            parameters[key] = source["runtimeValue"]["constant"]
        elif "componentInputParameter" in source:
            if source["componentInputParameter"] in root_params:
                parameters[key] = root_params[source["componentInputParameter"]]
        elif "taskOutputParameter" in source:
            producer = source["taskOutputParameter"]
            parameters[key] = results[producer["producerTask"]].parameters[producer["outputParameterKey"]]
        else:
            raise NotImplementedError(f"task {name}: parameter {key} from {sorted(source)}")
    resolved = dict(parameters)
    for key, definition in component.get("inputDefinitions", {}).get("parameters", {}).items():
        if key not in parameters and "defaultValue" in definition:
            parameters[key] = definition["defaultValue"]
    artifacts: Dict[str, List[dict]] = {}
    for key, source in task.get("inputs", {}).get("artifacts", {}).items():
        if "taskOutputArtifact" not in source:
            raise NotImplementedError(f"task {name}: artifact {key} from {sorted(source)}")
        producer = source["taskOutputArtifact"]
        artifacts[key] = published[producer["producerTask"]][producer["outputArtifactKey"]]
    return resolved, parameters, artifacts


def _import(name, importer, parameters, store, session):
    source = importer["artifactUri"]
    uri = source["constant"] if "constant" in source else parameters[source["runtimeParameter"]]
    artifact = {"name": "artifact", "uri": uri, "type": importer["typeSchema"],
                "metadata": importer.get("metadata", {})}
    result = TaskResult(name, "importer", "SUCCEEDED", artifacts={"artifact": [artifact]})
    return result, {"artifact": [store.publish(artifact, "artifact", session)]}


def _executor_input(component, parameters, artifacts, run_root, name, scratch: Path, publish_logs: bool) -> dict:
    """The ExecutorInput the driver builds (driver.go provisionOutputs L741-810): inputs as resolved, one output
    artifact per output key under PIPELINE_ROOT/PIPELINE_NAME/RUN_ID/TASK/SALT/KEY (plus the driver's
    executor-logs), output parameter files, and the ExecutorOutput file at TASK_ROOT's local path."""
    task_root = f"{run_root}/{name}/{uuid.uuid4().hex[:8]}"
    outputs_spec = component.get("outputDefinitions", {})
    artifacts_out = {key: {"artifacts": [{"name": key, "uri": f"{task_root}/{key}", "type": spec["artifactType"],
                                          **({"metadata": spec["metadata"]} if spec.get("metadata") else {})}]}
                     for key, spec in outputs_spec.get("artifacts", {}).items()}
    if publish_logs:
        artifacts_out[LOGS_OUTPUT] = {"artifacts": [{"name": LOGS_OUTPUT, "uri": f"{task_root}/{LOGS_OUTPUT}",
                                                     "type": {"schemaTitle": "system.Artifact"}}]}
    outputs = {
        "artifacts": artifacts_out,
        "parameters": {key: {"outputFile": str(scratch / "tmp" / "kfp" / "outputs" / key)}
                       for key in outputs_spec.get("parameters", {})},
        "outputFile": str(kfp_storage.local_path_for_uri(task_root, scratch / "pod") / EXECUTOR_OUTPUT),
    }
    return {"inputs": {"parameterValues": parameters, "artifacts": {k: {"artifacts": v} for k, v in artifacts.items()}},
            "outputs": outputs}


def _run_container(name, container, component, executor_input, pod: _Pod, python, timeout):
    scratch = pod.scratch
    scratch.mkdir(parents=True, exist_ok=True)
    outputs_spec = component.get("outputDefinitions", {})
    outputs = executor_input["outputs"]
    # As the launcher marshals it (protojson): a valid ExecutorInput message.
    message = json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput())
    executor_input_json = json_format.MessageToJson(message, indent=None)
    placeholders = _placeholders(executor_input, scratch / "pod")
    command = _substitute(container.get("command", []), executor_input_json, placeholders)
    args = _substitute(container.get("args", []), executor_input_json, placeholders)
    left = [a for a in command + args if "{{$" in a]
    if left:
        raise NotImplementedError(f"task {name}: placeholders the launcher would not substitute: {left}")
    if not command:
        raise NotImplementedError(f"task {name}: no command (the image's ENTRYPOINT is not known here)")
    if command[0] == "python":
        command[0] = python
    disk = scratch / "pod"  # the pod's own disk: /s3/... of LocalPathForURI is pod/s3/...
    log = scratch / "log.txt"
    result = TaskResult(name, "container", "FAILED", executor_input=json.loads(executor_input_json),
                        command=command + args, log=log)
    started = time.monotonic()
    try:
        env, launcher = pod.start(name)
        result.downloaded = launcher.download_inputs(executor_input, disk)
        kfp_storage.prepare_output_folders(executor_input, disk)
        Path(outputs["outputFile"]).parent.mkdir(parents=True, exist_ok=True)
        result.returncode = run_command(command + args, scratch, env, log, python, timeout)
        logs_uri = outputs["artifacts"].get(LOGS_OUTPUT, {}).get("artifacts", [{}])[0].get("uri")
        if logs_uri and log.exists():
            launcher.upload_log(log, logs_uri)
        if result.returncode == 0:  # uploadOutputArtifacts (the executor-logs artifact was uploaded above)
            uploads = {k: v for k, v in outputs["artifacts"].items() if k != LOGS_OUTPUT}
            result.uploads = launcher.upload_outputs({"outputs": {"artifacts": uploads}}, disk)
    except kfp_storage.LauncherError as e:
        result.launcher_error = str(e)
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"\nlauncher: {e}\n")
        return result
    finally:
        result.seconds = time.monotonic() - started
    if result.returncode != 0:
        return result
    result.status = "SUCCEEDED"

    output_file = Path(outputs["outputFile"])
    executor_output = {}
    if output_file.exists():
        executor_output = json.loads(output_file.read_text(encoding="utf-8"))
        json_format.ParseDict(executor_output, pipeline_spec_pb2.ExecutorOutput())  # what the launcher parses
        result.executor_output = executor_output
    for key, listing in outputs["artifacts"].items():  # mergeRuntimeArtifacts
        artifact = dict(listing["artifacts"][0])
        reported = executor_output.get("artifacts", {}).get(key, {}).get("artifacts", [])
        if reported:
            if reported[0].get("uri"):
                artifact["uri"] = reported[0]["uri"]
            artifact["metadata"] = {**artifact.get("metadata", {}), **reported[0].get("metadata", {})}
        result.artifacts[key] = [artifact]
    for key, spec in outputs["parameters"].items():  # collectOutputParameters
        if key in executor_output.get("parameterValues", {}):
            result.parameters[key] = executor_output["parameterValues"][key]
        else:
            kind = outputs_spec["parameters"][key].get("parameterType", "STRING")
            result.parameters[key] = _parameter_from_file(Path(spec["outputFile"]), kind)
    return result
