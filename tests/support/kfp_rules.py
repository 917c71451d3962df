"""What the open-source Kubeflow Pipelines v2 backend refuses in a pipeline spec, at run creation and at run time, and
what it silently drops from the spec's Kubernetes platform spec.

Each rule is a function of the PipelineSpec dict returning the violations it finds, and names the backend source it
was read from (kubeflow/pipelines at commit 7b70c7b95f6832772efd6fd0029a4024491a0f44, August 2026; paths under
backend/src/). They cover what a TFX KubeflowV2DagRunner spec can get wrong; features the compiler never emits
(sub-DAGs, loops, exit handlers, workspaces) are refused outright by `no_unmodelled_features`, so a spec that passes
here does not rely on a rule this module lacks. Of trigger conditions, only the form TFX compiles a Cond on an input
artifact's property to is modelled (`CONDITION`, evaluated by `evaluate_condition` as the driver's CEL does).

The platform rules (`PLATFORM_RULES`, functions of the platform spec and the spec) were read from release 2.17.0
(commit 4a3592cb2dd0a91a4652ab93893ec8beda1f3158): the API server keeps a YAML document as the platform spec only when
it parses strictly as a PlatformSpec (apiserver/template/v2_template.go L244-259, L428-440; otherwise the document is
dropped and the pods get none of it), the compiler hands each component the executor config stored under its executor
label and ignores the others (v2/compiler/visitor.go L112-121), and the driver reads that config as a
KubernetesExecutorConfig (kubernetes_platform/proto/kubernetes_executor_config.proto L24-44, SecretAsEnv L65-82)
discarding the fields it does not know (v2/cmd/driver/main.go L492-500 with common/util/json.go L72-77). Of the
executor config, only secretAsEnv (the one the compiler writes) is checked; any other field is refused by
`only_modelled_kubernetes_config`. tests/support/kfp_local.py refuses a spec with any violation before it executes a
task.
"""

from __future__ import annotations

import re
from typing import Callable, Dict, Iterator, List, Optional

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

SOURCE_COMMIT = "7b70c7b95f6832772efd6fd0029a4024491a0f44"
PLATFORM_SOURCE = "2.17.0"  # the release tag the platform rules were read at (commit 4a3592cb)
RULES: List[Callable[[dict], Iterator[str]]] = []
PLATFORM_RULES: List[Callable[[dict, dict], Iterator[str]]] = []
CITATIONS: Dict[str, str] = {}
# KubernetesExecutorConfig's fields (kubernetes_executor_config.proto L24-44 at 2.17.0), as protojson reads them:
# the JSON name or the field's own name.
KUBERNETES_CONFIG_FIELDS = (
    "secret_as_volume", "secret_as_env", "pvc_mount", "node_selector", "pod_metadata", "image_pull_secret",
    "image_pull_policy", "config_map_as_volume", "config_map_as_env", "active_deadline_seconds", "field_path_as_env",
    "tolerations", "generic_ephemeral_volume", "node_affinity", "pod_affinity", "enabled_shared_memory",
    "empty_dir_mounts", "security_context")
SECRET_AS_ENV_FIELDS = ("secret_name", "key_to_env", "optional", "secret_name_parameter")  # proto L65-82
KEY_TO_ENV_FIELDS = ("secret_key", "env_var")  # proto L69-74

# The runtimeValue constants the driver replaces, each only as the whole string (v2/driver/resolve.go L435-452).
DRIVER_PLACEHOLDERS = {"{{$.pipeline_job_name}}", "{{$.pipeline_job_resource_name}}", "{{$.pipeline_job_uuid}}",
                       "{{$.pipeline_task_name}}", "{{$.pipeline_task_uuid}}", "{{$.pipeline_job_create_time_utc}}",
                       "{{$.pipeline_job_schedule_time_utc}}"}
ARGO_NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
UPLOAD_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")
# The one form of triggerPolicy.condition modelled here: what TFX's KubeflowV2DagRunner compiles a tfx.dsl.Cond on an
# input artifact's custom property to (tfx/orchestration/kubeflow/v2/compiler_utils.py), e.g.
# (inputs.artifacts['_RetrainDecision.decision'].artifacts[0].metadata['train'] == 1.0). The driver evaluates it with
# CEL over the task's ExecutorInput (v2/expression/expression.go, Condition), where an artifact's metadata is a
# google.protobuf.Struct: its numbers are doubles, and a missing key is an evaluation error that fails the task.
CONDITION = re.compile(r"^\(?inputs\.artifacts\['(?P<key>[^']+)'\]\.artifacts\[(?P<index>\d+)\]\.metadata\["
                       r"'(?P<field>[^']+)'\] (?P<op>==|!=) (?P<value>-?\d+(?:\.\d+)?|'[^']*'|true|false)\)?$")


class ConditionError(ValueError):
    """The driver's CEL evaluation of a trigger condition fails (the task fails)."""


def evaluate_condition(condition: str, executor_input: dict) -> bool:
    """A trigger condition of the modelled form (CONDITION) on the task's ExecutorInput, as the driver evaluates it
    (v2/driver/container.go L88-95): true, false, or ConditionError."""
    import json

    match = CONDITION.match(condition)
    if not match:
        raise ConditionError(f"a condition this module does not model: {condition}")
    listing = executor_input.get("inputs", {}).get("artifacts", {}).get(match["key"], {}).get("artifacts", [])
    if int(match["index"]) >= len(listing):
        raise ConditionError(f"no input artifact {match['key']}[{match['index']}]")
    metadata = listing[int(match["index"])].get("metadata", {})
    if match["field"] not in metadata:
        raise ConditionError(f"no such key: {match['field']}")
    value, literal = metadata[match["field"]], json.loads(match["value"].replace("'", '"'))
    if isinstance(literal, (int, float)) and not isinstance(literal, bool):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConditionError(f"no such overload: {type(value).__name__} {match['op']} number")
        equal = float(value) == float(literal)
    else:
        equal = value == literal
    return equal if match["op"] == "==" else not equal
JSON_KINDS = {"NUMBER_INTEGER": (int, float), "NUMBER_DOUBLE": (int, float), "BOOLEAN": (bool,), "LIST": (list,),
              "STRUCT": (dict,)}


def rule(citation: str):
    def register(check):
        RULES.append(check)
        CITATIONS[check.__name__] = citation
        return check
    return register


def platform_rule(citation: str):
    def register(check):
        PLATFORM_RULES.append(check)
        CITATIONS[check.__name__] = f"{PLATFORM_SOURCE}: {citation}"
        return check
    return register


def violations(spec: dict, platform: Optional[dict] = None) -> List[str]:
    """Every violation of every rule, each as 'rule: what (source)'; the platform rules when there is a platform
    spec (the YAML file's second document, or a PipelineJob's platformSpec)."""
    found = []
    for check in RULES:
        found += [f"{check.__name__}: {v} ({CITATIONS[check.__name__]})" for v in check(spec)]
    if platform:
        for check in PLATFORM_RULES:
            found += [f"{check.__name__}: {v} ({CITATIONS[check.__name__]})" for v in check(platform, spec)]
    return found


def _tasks(spec):
    return spec.get("root", {}).get("dag", {}).get("tasks", {})


def _component(spec, task):
    return spec.get("components", {}).get(task.get("componentRef", {}).get("name", ""), {})


def _executor(spec, component):
    return spec.get("deploymentSpec", {}).get("executors", {}).get(component.get("executorLabel", ""), {})


@rule("apiserver/template/v2_template.go L234-236")
def schema_version_2_1_0(spec):
    if spec.get("schemaVersion") != "2.1.0":
        yield f"schemaVersion is {spec.get('schemaVersion')!r}; KFP only supports schema version 2.1.0"


@rule("apiserver/template/template.go L112-120, v2/compiler/visitor.go L193-206: strict protojson")
def a_pipeline_spec_without_unknown_fields(spec):
    try:
        json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False)
    except json_format.ParseError as e:
        yield f"not a PipelineSpec: {e}"


@rule("v2/compiler/argocompiler/argo.go L95-97; apiserver/common/utils.go L35, L110-124 (upload)")
def pipeline_name_uploadable(spec):
    name = spec.get("pipelineInfo", {}).get("name", "")
    if not UPLOAD_NAME.match(name):
        yield f"pipelineInfo.name {name!r} is not lower-case alphanumerics and '-' (at most 128)"


@rule("v2/compiler/argocompiler/dag.go L142-144, L150-181")
def a_root_dag_with_tasks(spec):
    tasks = _tasks(spec)
    if not tasks or all(t.get("triggerPolicy", {}).get("strategy") == "ALL_UPSTREAM_TASKS_COMPLETED"
                        for t in tasks.values()):
        yield "the root component is not a DAG with a non-exit task"


@rule("v2/compiler/visitor.go L125-134 ('non-container and non-importer executor not implemented'); "
      "argocompiler/dag.go L348-351")
def container_or_importer_executors_only(spec):
    for label, executor in spec.get("deploymentSpec", {}).get("executors", {}).items():
        kinds = sorted(set(executor) & {"container", "importer", "resolver", "customJob"}) or sorted(executor)
        if kinds not in (["container"], ["importer"]):
            yield f"executor {label} is {'/'.join(kinds)}: non-container and non-importer executor not implemented"


@rule("v2/compiler/visitor.go L107-110, L136-139, L155-162")
def components_and_executors_exist(spec):
    for name, task in _tasks(spec).items():
        ref = task.get("componentRef", {}).get("name", "")
        if not ref or ref not in spec.get("components", {}):
            yield f"task {name}: component ref {ref!r} not found"
            continue
        component = spec["components"][ref]
        if "dag" not in component and not component.get("executorLabel"):
            yield f"component {ref}: unknown component implementation"
        elif component.get("executorLabel") and not _executor(spec, component):
            yield f"component {ref}: executor(label={component['executorLabel']!r}) not found in deployment config"


@rule("v2/compiler/argocompiler/dag.go L41-44, L655-706 (producers); Argo validateDAG (dependencies)")
def producers_and_dependencies_are_sibling_tasks(spec):
    tasks = _tasks(spec)
    for name, task in tasks.items():
        inputs = task.get("inputs", {})
        for source in [*inputs.get("parameters", {}).values(), *inputs.get("artifacts", {}).values()]:
            for key in ("taskOutputParameter", "taskOutputArtifact"):
                if key in source and source[key].get("producerTask") not in tasks:
                    yield f"task {name}: unknown producer task {source[key].get('producerTask')!r} in DAG"
        for dependency in task.get("dependentTasks", []):
            if dependency not in tasks:
                yield f"task {name}: depends on unknown task {dependency!r}"


@rule("v2/driver/resolve.go L700-805 (a missing output key crashes the driver), L577-694")
def upstream_outputs_exist(spec):
    tasks = _tasks(spec)
    for name, task in tasks.items():
        for kind, source_key, output_key in (("artifacts", "taskOutputArtifact", "outputArtifactKey"),
                                             ("parameters", "taskOutputParameter", "outputParameterKey")):
            for key, source in task.get("inputs", {}).get(kind, {}).items():
                producer = source.get(source_key)
                if not producer or producer.get("producerTask") not in tasks:
                    continue  # an unknown producer is producers_and_dependencies_are_sibling_tasks'
                outputs = _component(spec, tasks[producer["producerTask"]]).get("outputDefinitions", {})
                if producer.get(output_key) not in outputs.get(kind, {}):
                    yield f"task {name}: input {key} reads {producer}, which its producer does not output"


@rule("Argo validateWorkflowFieldNames via v2/compiler/argocompiler/dag.go L250, L293 (task key and <key>-driver)")
def task_keys_are_argo_names(spec):
    for name in _tasks(spec):
        if not ARGO_NAME.match(name) or len(name) > 121:
            yield f"task key {name!r} is not an Argo task name ([a-zA-Z0-9][-a-zA-Z0-9]*, at most 121 with -driver)"


@rule("v2/driver/driver.go L710-730 ('task spec is required'); v2/component/importer_launcher.go L136")
def task_info_names(spec):
    for name, task in _tasks(spec).items():
        info = task.get("taskInfo", {}).get("name", "")
        if not info:
            yield f"task {name}: taskInfo.name is empty"
        elif "importer" in _executor(spec, _component(spec, task)) and info != name:
            yield f"importer task {name}: taskInfo.name {info!r} differs from its key (downstream lookups fail)"


@rule("v2/driver/container.go L88-95 (the driver evaluates triggerPolicy.condition on the task's resolved inputs), "
      "v2/expression/expression.go L134-162; argocompiler/container.go L327-331 (the executor runs when it held)")
def trigger_conditions_the_driver_evaluates(spec):
    for name, task in _tasks(spec).items():
        condition = task.get("triggerPolicy", {}).get("condition")
        if not condition:
            continue
        match = CONDITION.match(condition)
        if not match:
            yield f"task {name}: triggerPolicy.condition {condition!r} is not of the form modelled here"
        elif match["key"] not in task.get("inputs", {}).get("artifacts", {}):
            yield (f"task {name}: triggerPolicy.condition reads input artifact {match['key']!r}, which the task does "
                   "not have (the driver's evaluation fails)")


@rule("v2/compiler/argocompiler/dag.go L65-70, L337-342; v2/driver/dag.go L160-162")
def no_artifact_iterators_or_importer_conditions(spec):
    for name, task in _tasks(spec).items():
        if task.get("artifactIterator"):
            yield f"task {name}: artifact iterator not implemented"
        if "importer" in _executor(spec, _component(spec, task)) and task.get("triggerPolicy", {}).get("condition"):
            yield f"importer task {name}: triggerPolicy.condition on importer task is not supported"


@rule("v2/driver/resolve.go L187-193, L203-251 (a non-optional input without a value: refused, or \"\")")
def every_component_input_has_a_value(spec):
    for name, task in _tasks(spec).items():
        given = task.get("inputs", {}).get("parameters", {})
        for key, definition in _component(spec, task).get("inputDefinitions", {}).get("parameters", {}).items():
            if key not in given and not definition.get("isOptional"):
                yield f"task {name}: non-optional parameter {key!r} has no task input (its default is not applied)"
        for key, definition in _component(spec, task).get("inputDefinitions", {}).get("artifacts", {}).items():
            if key not in task.get("inputs", {}).get("artifacts", {}) and not definition.get("isOptional"):
                yield f"task {name}: non-optional input artifact {key!r} has no source"


@rule("v2/driver/resolve.go L218-253 (no string-to-number coercion), L389-405 (parent DAG input)")
def parameter_values_match_their_types(spec):
    root = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    for name, task in _tasks(spec).items():
        declared = _component(spec, task).get("inputDefinitions", {}).get("parameters", {})
        for key, source in task.get("inputs", {}).get("parameters", {}).items():
            kind = declared.get(key, {}).get("parameterType", "STRING")
            if "componentInputParameter" in source:
                parent = root.get(source["componentInputParameter"])
                if parent is None:
                    yield f"task {name}: parent DAG does not have input parameter {source['componentInputParameter']!r}"
                elif kind != "STRING" and parent.get("parameterType") != kind:
                    yield f"task {name}: {key} is {kind} but root input is {parent.get('parameterType')}"
            constant = source.get("runtimeValue", {}).get("constant")
            if constant is not None and kind in JSON_KINDS and (
                    not isinstance(constant, JSON_KINDS[kind]) or (kind != "BOOLEAN" and isinstance(constant, bool))):
                yield f"task {name}: {key} is {kind} but its constant is {type(constant).__name__}"


@rule("v2/driver/resolve.go L430-452 (whole-string placeholders only)")
def placeholders_the_driver_substitutes(spec):
    for name, task in _tasks(spec).items():
        for key, source in task.get("inputs", {}).get("parameters", {}).items():
            constant = source.get("runtimeValue", {}).get("constant")
            if isinstance(constant, str) and "{{$." in constant and constant not in DRIVER_PLACEHOLDERS:
                yield f"task {name}: {key} embeds a placeholder the driver leaves as is: {constant[:80]!r}"


@rule("v2/driver/util.go L165-288 (container args), v2/component/launcher_v2.go L1051-1173")
def container_placeholders_resolve(spec):
    known = re.compile(r"\{\{\$(\.inputs\.parameters\['([^']+)'\]|\.inputs\.artifacts\['([^']+)'\]\.(uri|path)"
                       r"|\.outputs\.(parameters|artifacts)\['([^']+)'\][.a-z_]*)?\}\}")
    for name, task in _tasks(spec).items():
        component = _component(spec, task)
        container = _executor(spec, component).get("container")
        if container is None:
            continue
        if not container.get("image"):
            yield f"task {name}: container without an image"
        inputs = component.get("inputDefinitions", {})
        for arg in [*container.get("command", []), *container.get("args", [])]:
            for match in re.finditer(r"\{\{\$[^}]*\}\}", arg):
                parsed = known.fullmatch(match.group(0))
                if not parsed:
                    yield f"task {name}: placeholder {match.group(0)!r} is not substituted"
                elif parsed.group(2) and parsed.group(2) not in inputs.get("parameters", {}):
                    yield f"task {name}: parameter {parsed.group(2)!r} not found in executor input"


@rule("v2/component/launcher_v2.go L1175-1186, v2/metadata/client.go L1199-1210 (glog.Fatal 'No title')")
def output_artifact_types_have_a_title(spec):
    for ref, component in spec.get("components", {}).items():
        for key, output in component.get("outputDefinitions", {}).get("artifacts", {}).items():
            kind = output.get("artifactType", {})
            if not kind.get("schemaTitle") and not re.search(r"^title:", kind.get("instanceSchema", ""), re.M):
                yield f"component {ref}: output {key} has an artifact type without a title"


@rule("backend features this module does not model: sub-DAGs, loops, exit handlers (argocompiler/dag.go L63-181)")
def no_unmodelled_features(spec):
    for name, task in _tasks(spec).items():
        for feature in ("parameterIterator", "iteratorPolicy"):
            if task.get(feature):
                yield f"task {name}: {feature} (not checked by these rules)"
        if task.get("triggerPolicy", {}).get("strategy"):  # exit handlers; a condition is the rule above's
            yield f"task {name}: triggerPolicy.strategy (not checked by these rules)"
        if "dag" in _component(spec, task):
            yield f"task {name}: a sub-DAG (not checked by these rules)"
    if spec.get("root", {}).get("dag", {}).get("outputs"):
        yield "the root DAG has outputs (not checked by these rules)"


# -- the Kubernetes platform spec ---------------------------------------------------------------------------------

def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _unknown(fields: dict, known) -> List[str]:
    allowed = set(known) | {_camel(name) for name in known}
    return sorted(set(fields) - allowed)


def _get(fields: dict, name: str):
    """A field under its JSON name or its own name, as protojson accepts either."""
    return fields.get(_camel(name), fields.get(name))


def _kubernetes_executors(platform: dict) -> dict:
    kubernetes = platform.get("platforms", {}).get("kubernetes") or {}
    return (kubernetes.get("deploymentSpec") or kubernetes.get("deployment_spec") or {}).get("executors") or {}


@platform_rule("apiserver/template/v2_template.go L244-259, L428-440 (a document that does not parse strictly as a "
               "PlatformSpec with a kubernetes entry is not taken as the platform spec)")
def a_platform_spec_the_api_server_keeps(platform, spec):
    try:
        json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec(), ignore_unknown_fields=False)
    except json_format.ParseError as e:
        yield f"not a PlatformSpec, so the API server drops it: {e}"
        return
    if "kubernetes" not in platform.get("platforms", {}):
        yield "no `platforms.kubernetes` entry: the API server drops the document"


@platform_rule("v2/compiler/visitor.go L105-121 (a component's executor config is looked up by its executorLabel; "
               "others are ignored)")
def platform_executors_are_the_specs(platform, spec):
    labels = {component.get("executorLabel") for component in spec.get("components", {}).values()}
    containers = {label for label, executor in spec.get("deploymentSpec", {}).get("executors", {}).items()
                  if "container" in executor}
    for label in sorted(_kubernetes_executors(platform)):
        if label not in labels or label not in containers:
            yield f"executor {label!r} is no container executor of a component: its Kubernetes config is ignored"


@platform_rule("kubernetes_platform/proto/kubernetes_executor_config.proto L24-44, L65-82; v2/cmd/driver/main.go "
               "L492-500 with common/util/json.go L72-77 (DiscardUnknown: an unknown field sets nothing)")
def kubernetes_config_fields_exist(platform, spec):
    for label, config in sorted(_kubernetes_executors(platform).items()):
        for field in _unknown(config, KUBERNETES_CONFIG_FIELDS):
            yield f"executor {label}: {field!r} is no KubernetesExecutorConfig field (the driver drops it)"
        for entry in _get(config, "secret_as_env") or []:
            for field in _unknown(entry, SECRET_AS_ENV_FIELDS):
                yield f"executor {label}: {field!r} is no SecretAsEnv field (the driver drops it)"
            for mapping in _get(entry, "key_to_env") or []:
                for field in _unknown(mapping, KEY_TO_ENV_FIELDS):
                    yield f"executor {label}: {field!r} is no SecretKeyToEnvMap field (the driver drops it)"


@platform_rule("v2/driver/k8s.go L347-393 (each keyToEnv entry becomes one variable from the secret named by "
               "secretNameParameter, else secretName; neither: 'missing either SecretName or SecretNameParameter')")
def secret_as_env_names_a_secret_and_its_variables(platform, spec):
    root = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    for label, config in sorted(_kubernetes_executors(platform).items()):
        for entry in _get(config, "secret_as_env") or []:
            name, parameter = _get(entry, "secret_name"), _get(entry, "secret_name_parameter")
            constant = (parameter or {}).get("runtimeValue", {}).get("constant")
            if parameter and "componentInputParameter" in parameter:
                if parameter["componentInputParameter"] not in root:
                    yield (f"executor {label}: secretNameParameter reads {parameter['componentInputParameter']!r}, "
                           "which the root DAG does not declare")
            elif parameter and not isinstance(constant, str):
                yield f"executor {label}: secretNameParameter is not a string constant or a root input: {parameter}"
            elif not parameter and not name:
                yield f"executor {label}: missing either SecretName or SecretNameParameter"
            elif parameter and name and constant != name:
                yield (f"executor {label}: secretNameParameter {constant!r} and secretName {name!r} differ (the "
                       "driver takes secretNameParameter)")
            mappings = _get(entry, "key_to_env") or []
            if not mappings:
                yield f"executor {label}: secretAsEnv without keyToEnv sets no variable"
            for mapping in mappings:
                if not (_get(mapping, "secret_key") and _get(mapping, "env_var")):
                    yield f"executor {label}: keyToEnv entry {mapping} lacks its secretKey or envVar"


@platform_rule("the Kubernetes executor config beyond secretAsEnv is not modelled by these rules")
def only_modelled_kubernetes_config(platform, spec):
    for label, config in sorted(_kubernetes_executors(platform).items()):
        for field in sorted(set(config) - {"secretAsEnv", "secret_as_env"}):
            if field not in _unknown(config, KUBERNETES_CONFIG_FIELDS):
                yield f"executor {label}: {field} (not checked by these rules)"
    kubernetes = platform.get("platforms", {}).get("kubernetes") or {}
    for field in sorted(set(kubernetes) - {"deploymentSpec", "deployment_spec"}):
        yield f"platforms.kubernetes.{field} (not checked by these rules)"
