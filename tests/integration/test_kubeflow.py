"""Tests of pipeline/run_kubeflow.py's `compile`: the KFP v2 spec it writes, its runtime parameters and the settings
contract through them, and the Trainer as a Vertex AI job. No cluster is needed: `compile` really runs (once as a user
would, in a fresh interpreter, and again in-process to check the output is identical; the `compiled` fixture of
tests/integration/conftest.py), and the masked-LM stage in the spec. The commands that talk to a KFP API are
test_kubeflow_commands.py.
"""

import json
import re

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline.dag import nodes
from pipeline.kubeflow import cli as kfp_cli
from pipeline.kubeflow import errors, parameters
from support import assert_one_error

# The fixtures (compiled, stub, cli; _keep_process_state is autouse) are ./conftest.py's.
from support.kubeflow import COMPILE_ARGS, ENTRYPOINT, IMAGE, NAME, PARAMETERS, process_state_kept

# ----------------------------------------------------------------------------------------------------------------
# compile

def test_compiled_spec_parses_as_kfp_protos(compiled):
    job = json_format.ParseDict(compiled.job, pipeline_spec_pb2.PipelineJob())
    spec = json_format.ParseDict(compiled.spec, pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == NAME == job.display_name
    assert spec.schema_version == "2.1.0" and spec.sdk_version.startswith("tfx-")
    assert f"wrote {compiled.path}" in compiled.stdout and "runtime parameters: data_root" in compiled.stdout


def _upstream(task: dict) -> set:
    deps = set(task.get("dependentTasks", []))
    inputs = task.get("inputs", {})
    for artifact in inputs.get("artifacts", {}).values():
        deps.add(artifact["taskOutputArtifact"]["producerTask"])
    for parameter in inputs.get("parameters", {}).values():
        if "taskOutputParameter" in parameter:
            deps.add(parameter["taskOutputParameter"]["producerTask"])
    return deps


def test_one_task_per_component_in_dependency_order(compiled):
    tasks = compiled.spec["root"]["dag"]["tasks"]
    assert set(tasks) == {component.id for component in compiled.components}  # no resolver node, no extra query

    upstream = {name: _upstream(task) for name, task in tasks.items()}
    level = {}

    def depth(name, seen=()):
        assert name not in seen, f"cycle through {name}"
        if name not in level:
            level[name] = 1 + max((depth(u, seen + (name,)) for u in upstream[name]), default=-1)
        return level[name]

    order = sorted(tasks, key=lambda name: (depth(name), name))
    for position, name in enumerate(order):
        assert upstream[name] <= set(order[:position]), f"{name} depends on a later or unknown task"
    assert set(order[:2]) == {"BaselineLookup", "CsvExampleGen"}
    assert not upstream["CsvExampleGen"] and not upstream["BaselineLookup"]
    last = max(level.values())
    # The run report after the Pusher, whose output says whether and where the model was pushed.
    assert {name for name, v in level.items() if v == last} == {"RunReport"} and "Pusher" in upstream["RunReport"]
    assert upstream["StatisticsGen"] == {"CsvExampleGen"}
    assert {"DataValidationGate", "CsvExampleGen", "ImportSchemaGen"} <= upstream["Transform"]
    assert "Transform" in upstream["Trainer"]
    assert {"Trainer", "BaselineLookup", "ServingCheck"} <= upstream["Evaluator"]
    assert upstream["ServingCheck"] == {"Trainer"}
    assert upstream["ModelCardWriter"] == {"Trainer", "Evaluator", "CsvExampleGen"}
    assert upstream["Pusher"] == {"Evaluator", "ServingCheck", "ModelCardWriter"}
    assert {"ModelCardWriter", "Evaluator", "Trainer", "Transform", "TextStatisticsGen", "DriftValidator",
            "ExampleValidator", "StatisticsGen"} <= upstream["RunReport"]
    report = tasks["RunReport"]
    assert report["inputs"]["artifacts"]["baseline_statistics"]["taskOutputArtifact"] == {
        "producerTask": "BaselineLookup", "outputArtifactKey": "data_statistics"}
    context = json.loads(report["inputs"]["parameters"]["context"]["runtimeValue"]["constant"])
    assert context["setup"]["label_key"] == "label"
    assert {"min_accuracy", "max_macro_f1_drop"} <= set(context["evaluator"])


def test_every_executor_runs_the_image_and_code_is_referenced_by_module_path(compiled):
    spec = compiled.spec
    executors = spec["deploymentSpec"]["executors"]
    for name, task in spec["root"]["dag"]["tasks"].items():
        executor = executors[spec["components"][task["componentRef"]["name"]]["executorLabel"]]
        assert executor["container"]["image"] == IMAGE, name
        assert executor["container"]["command"] == ENTRYPOINT, name
        assert not {"module_file", "module_path"} & set(task.get("inputs", {}).get("parameters", {})), name
    tasks = spec["root"]["dag"]["tasks"]
    constant = lambda task, key: tasks[task]["inputs"]["parameters"][key]["runtimeValue"]["constant"]  # noqa: E731
    assert constant("Trainer", "run_fn") == "components.module_files.trainer.run_fn"
    assert constant("Transform", "preprocessing_fn") == "components.module_files.preprocessing.preprocessing_fn"
    assert constant("ImportSchemaGen", "schema_file") == "/pipeline/schema/rotten_tomatoes/schema.pbtxt"
    gate_args = executors["DataValidationGate_executor"]["container"]["args"]
    assert gate_args[gate_args.index("--executor_class_path") + 1].startswith("components.validation.gates.")


def test_runtime_parameters_are_root_inputs_with_the_compiled_defaults(compiled):
    spec = compiled.spec
    declared = spec["root"]["inputDefinitions"]["parameters"]
    assert set(declared) == PARAMETERS
    assert all(p["parameterType"] == "STRING" and p["isOptional"] and p["description"] for p in declared.values())
    defaults = {name: p["defaultValue"] for name, p in declared.items()}
    assert defaults["data_root"] == "gs://bucket/reviews"
    assert json.loads(defaults["train_args"]) == {"splits": ["train"], "num_steps": 50}
    trainer = json.loads(defaults["trainer_config"])
    assert trainer["epochs"] == 2 and trainer["learning_rate"] == 3e-5
    assert trainer["pretrained_dir"] == "/pipeline/data/checkpoints/all-MiniLM-L6-v2"
    assert trainer["vocab_file"] == "/pipeline/data/checkpoints/all-MiniLM-L6-v2/vocab.txt"
    accuracy = json.loads(defaults["eval_config"])["metrics_specs"][0]["metrics"][1]
    assert accuracy["class_name"] == "SparseCategoricalAccuracy"
    assert accuracy["threshold"]["value_threshold"]["lower_bound"] == 0.7
    # The same defaults for a PipelineJob consumer (Vertex), and the tasks read the parameters.
    assert compiled.job["runtimeConfig"]["parameterValues"] == defaults
    tasks = spec["root"]["dag"]["tasks"]
    reads = lambda task, key: tasks[task]["inputs"]["parameters"][key]["componentInputParameter"]  # noqa: E731
    assert reads("CsvExampleGen", "input_base") == "data_root"
    assert reads("Trainer", "train_args") == "train_args"
    assert reads("Trainer", "custom_config") == "trainer_config"
    assert reads("Evaluator", "eval_config") == "eval_config"
    assert spec["defaultPipelineRoot"] == str(compiled.root)
    # ExampleGen's output depends on files KFP's cache key does not see: never served from the cache.
    assert tasks["CsvExampleGen"]["cachingOptions"] == {}
    assert tasks["Trainer"]["cachingOptions"] == {"enableCache": True}


def test_compiling_twice_gives_the_same_spec_and_yaml_holds_the_same(compiled):
    first, again = compiled.path.read_text(), (compiled.base / "again.json").read_text()
    if again != first:
        # The spec carries a digest of components/*.py (code_version, for TFX's cache); only an edit of that code
        # between the two compiles may change it, and nothing else may differ.
        versions = re.compile(r'(code_version\\?": \\?")([0-9a-f]{16})')
        assert versions.sub(r"\1-", again) == versions.sub(r"\1-", first), "compiling twice gave different specs"
        assert len({m.group(2) for m in versions.finditer(first + again)}) == 2
    text = (compiled.base / "spec.yaml").read_text()
    assert text.startswith("# PIPELINE DEFINITION")
    assert yaml.safe_load(text) == json.loads(again)["pipelineSpec"]


def test_compiling_touches_no_pipeline_root(compiled):
    assert not compiled.root.exists()
    text = compiled.path.read_text()
    assert "_wheels" not in text and ".whl" not in text
    assert sorted(p.name for p in compiled.base.iterdir()) == ["again.json", "cli.json", "spec.yaml"]


@pytest.mark.parametrize("args, fragments", [
    (["--name", "Bad_Name"], ["--name 'Bad_Name'"]),
    (["--dataset", "custom"], ["needs --data-root"]),
    (["--data-root", "relative/folder"], ["--data-root 'relative/folder'", "absolute path"]),
    (["--dataset", "custom", "--data-root", "gs://b/d"], ["--labels"]),
    (["--input-splits", "train,test"], ["'eval' split"]),
])
def test_compile_input_errors(tmp_path, capsys, compiled, args, fragments):
    assert kfp_cli.main(["compile", "--output", str(tmp_path / "x.json"), "--pipeline-root", "gs://b/r", *args]) == 2
    assert_one_error(capsys.readouterr().err, *fragments)
    assert not (tmp_path / "x.json").exists()


def test_compile_custom_data_in_span_folders(tmp_path, capsys, compiled):
    output = tmp_path / "spans.yaml"
    args = ["compile", "--output", str(output), "--dataset", "custom", "--data-root", "gs://b/incoming", "--spans",
            "--labels", "neg,pos", "--text-column", "review", "--serving-dir", "gs://b/serving", "--image", IMAGE]
    # The gates publish what they accept under the pipeline root (and, without a schema, the pipeline freezes one
    # there): it needs to know where that is.
    assert kfp_cli.main(args) == 2
    assert_one_error(capsys.readouterr().err, "pass --pipeline-root: the gates publish the statistics they accept")
    assert kfp_cli.main([*args, "--pipeline-root", "gs://b/root"]) == 0
    spec = yaml.safe_load(output.read_text())
    tasks = spec["root"]["dag"]["tasks"]
    example_gen = tasks["CsvExampleGen"]
    patterns = json.loads(example_gen["inputs"]["parameters"]["input_config"]["runtimeValue"]["constant"])
    assert patterns == {"splits": [{"name": "all", "pattern": "span-{SPAN}/*.csv"}]}
    assert example_gen["cachingOptions"] == {}  # the same data_root brings a new span each time
    # No curated schema: SchemaGen's, curated, validates the first span and is frozen once accepted; later runs use
    # the frozen one (SchemaCurator reads it from the pipeline root when it is there).
    assert "ImportSchemaGen" not in tasks
    constant = lambda task, key: tasks[task]["inputs"]["parameters"][key]["runtimeValue"]["constant"]  # noqa: E731
    assert constant("SchemaCurator", "frozen_dir") == constant("SchemaFreezer", "frozen_dir") == "gs://b/root/schema"
    assert json.loads(constant("SchemaCurator", "label_names")) == ["neg", "pos"]
    assert "TextValidationGate" in tasks["SchemaFreezer"].get("dependentTasks", [])
    assert json.loads(spec["root"]["inputDefinitions"]["parameters"]["trainer_config"]["defaultValue"])[
        "text_key"] == "review"


def test_help_of_every_subcommand(capsys):
    for command in ("compile", "upload", "run", "schedule"):
        with pytest.raises(SystemExit) as exit_info:
            kfp_cli.main([command, "--help"])
        assert exit_info.value.code == 0
        assert f"run_kubeflow.py {command}" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------------------------
# The settings contract, through the compiled spec

def test_every_trainer_setting_is_in_the_runtime_parameter_and_settable_per_run(compiled):
    """Each TrainerSettings field reaches the spec's trainer_config with the value compile was given (its default
    unless a flag set it), and each hyperparameter can be changed per run with --param; what results is a config
    run_fn reads (strictly)."""
    import dataclasses

    from components.settings.data import read_config
    from components.settings.trainer import TrainerSettings, hyperparameters

    declared = compiled.spec["root"]["inputDefinitions"]["parameters"]
    default = json.loads(declared["trainer_config"]["defaultValue"])
    given = {"epochs": 2, "learning_rate": 3e-5}  # COMPILE_ARGS
    for field in dataclasses.fields(TrainerSettings):
        assert field.name in default, field.name
        if field.metadata["flag"]:
            assert default[field.name] == given.get(field.name, field.default), field.name
    assert read_config(TrainerSettings, default)[0].epochs == 2
    for field in hyperparameters():
        rule = field.metadata["default_by"]  # a default that follows from other settings
        default_value = rule(TrainerSettings()) if rule else field.default
        value = {bool: "true", int: "7", float: "0.25", str: None}[type(default_value)]
        if value is None and not field.metadata["choices"]:
            value = "2"  # task_weights: one weight for the one label column
        if value is None:
            value = next(c for c in field.metadata["choices"] if c != field.default)
        if field.name == "warm_start":
            continue  # needs a spec compiled with --warm-start: test_warm_start_is_compiled_in
        merged = json.loads(parameters.resolve_parameters(compiled.spec, [f"{field.name}={value}"])["trainer_config"])
        expected = {"true": True, "7": 7, "0.25": 0.25}.get(value, value)
        assert merged == {**default, field.name: expected}, field.name
        assert getattr(read_config(TrainerSettings, merged)[0], field.name) == expected


def test_a_partial_trainer_config_is_refused_before_connecting(stub, cli, compiled):
    declared = compiled.spec["root"]["inputDefinitions"]["parameters"]
    partial = json.loads(declared["trainer_config"]["defaultValue"])
    del partial["pretrained_dir"], partial["epochs"]
    result = cli("run", "--host", stub.url, "--param", f"trainer_config={json.dumps(partial)}", compiled.path)
    assert result.status == 2
    assert_one_error(result.err, "trainer_config", "missing key(s) pretrained_dir, epochs")
    assert stub.requests == []
    for bad, fragment in [("dropout=1.5", "between 0 and 1"), ("pooling=max", "one of cls, mean"),
                          ("epochs=0", "not a positive integer"), ("warm_start=maybe", "not true or false")]:
        with pytest.raises(errors.UserError, match=fragment):
            parameters.resolve_parameters(compiled.spec, [bad])


def test_local_options_the_compiler_allows(tmp_path, compiled):
    """--vocab learn and --warm-start compile (a rolling span window does not: no span-range resolver in TFX's V2
    compiler, refused in one line by test_settings.py)."""
    learned = tmp_path / "learned.json"
    assert kfp_cli.main(["compile", "--output", str(learned), "--pipeline-root", "gs://b/r", "--pretrained", "none",
                         "--vocab", "learn", "--vocab-size", "3000"]) == 0
    tasks = json.loads(learned.read_text())["pipelineSpec"]["root"]["dag"]["tasks"]
    transform = json.loads(tasks["Transform"]["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constant"])
    assert transform["vocab_mode"] == "learn" and transform["learned_vocab_size"] == 3000
    assert transform["vocab_file"] == ""

    warm = tmp_path / "warm.json"
    assert kfp_cli.main(["compile", "--output", str(warm), "--pipeline-root", "gs://b/r", "--warm-start"]) == 0
    spec = json.loads(warm.read_text())["pipelineSpec"]
    trainer = spec["root"]["dag"]["tasks"]["Trainer"]
    assert trainer["inputs"]["artifacts"]["base_model"]["taskOutputArtifact"] == {
        "producerTask": "BaselineLookup", "outputArtifactKey": "model"}
    off = json.loads(parameters.resolve_parameters(spec, ["warm_start=false"])["trainer_config"])
    assert off["warm_start"] is False
    # Without --warm-start the Trainer has no model in service to start from: turning it on per run is refused.
    assert "base_model" not in compiled.spec["root"]["dag"]["tasks"]["Trainer"]["inputs"].get("artifacts", {})
    with pytest.raises(errors.UserError, match="compile with --warm-start"):
        parameters.resolve_parameters(compiled.spec, ["warm_start=true"])


# ----------------------------------------------------------------------------------------------------------------
# The Trainer as a multi-worker Vertex AI Training job (--trainer-workers N)

VERTEX_ARGS = ["--trainer-workers", "3", "--trainer-machine-type", "n1-highmem-16", "--vertex-project", "my-project",
               "--vertex-region", "europe-west4"]
PLAIN_TRAINER = "tfx.components.trainer.executor.GenericExecutor"
VERTEX_TRAINER = "components.module_files.trainer_executor.VertexTrainerExecutor"


def _trainer_executor(spec: dict) -> dict:
    component = spec["root"]["dag"]["tasks"]["Trainer"]["componentRef"]["name"]
    return spec["deploymentSpec"]["executors"][spec["components"][component]["executorLabel"]]["container"]


def _class_path(container: dict) -> str:
    return container["args"][container["args"].index("--executor_class_path") + 1]


@pytest.fixture(scope="module")
def vertex_spec(tmp_path_factory):
    output = tmp_path_factory.mktemp("kfp-vertex") / "vertex.json"
    with process_state_kept():
        assert kfp_cli.main(["compile", *COMPILE_ARGS, *VERTEX_ARGS, "--pipeline-root", "gs://bucket/root",
                             "--output", str(output)]) == 0
    return json.loads(output.read_text())["pipelineSpec"]


def test_one_trainer_worker_keeps_the_plain_trainer(compiled):
    assert _class_path(_trainer_executor(compiled.spec)) == PLAIN_TRAINER
    default = json.loads(compiled.spec["root"]["inputDefinitions"]["parameters"]["trainer_config"]["defaultValue"])
    assert not [key for key in default if key.startswith("ai_platform_")]


def test_trainer_workers_run_the_trainer_as_a_vertex_job(vertex_spec, compiled):
    from components.settings.data import read_config
    from components.settings.trainer import TrainerSettings

    tasks = vertex_spec["root"]["dag"]["tasks"]
    assert set(tasks) == set(compiled.spec["root"]["dag"]["tasks"])  # the same DAG, the node id still Trainer
    container = _trainer_executor(vertex_spec)
    assert _class_path(container) == VERTEX_TRAINER and container["image"] == IMAGE
    assert tasks["Trainer"]["inputs"]["parameters"]["custom_config"]["componentInputParameter"] == "trainer_config"
    config = json.loads(vertex_spec["root"]["inputDefinitions"]["parameters"]["trainer_config"]["defaultValue"])
    assert config["ai_platform_enable_vertex"] is True
    assert config["ai_platform_vertex_region"] == "europe-west4"
    job = config["ai_platform_training_args"]
    assert job["project"] == "my-project"
    pools = job["job_spec"]["worker_pool_specs"]
    machine = {"machine_type": "n1-highmem-16"}
    # Vertex AI: the first pool is the chief (one replica), the second the other workers; every replica runs the
    # pipeline's image (TFX's executor sets the command).
    assert pools == [{"machine_spec": machine, "replica_count": 1, "container_spec": {"image_uri": IMAGE}},
                     {"machine_spec": machine, "replica_count": 2, "container_spec": {"image_uri": IMAGE}}]
    # run_fn reads the same settings as from the plain Trainer's config (the ai_platform_* keys are TFX's).
    assert read_config(TrainerSettings, config)[0].epochs == 2
    plain = json.loads(compiled.spec["root"]["inputDefinitions"]["parameters"]["trainer_config"]["defaultValue"])
    assert {k: v for k, v in config.items() if not k.startswith("ai_platform_")} == plain


def test_vertex_trainer_config_per_run_keeps_the_worker_pools(vertex_spec):
    default = json.loads(vertex_spec["root"]["inputDefinitions"]["parameters"]["trainer_config"]["defaultValue"])
    merged = json.loads(parameters.resolve_parameters(vertex_spec, ["epochs=5"])["trainer_config"])
    assert merged == {**default, "epochs": 5}
    # A whole trainer_config without the compiled ai_platform_* keys would fail in the Trainer step: refused now.
    bare = {k: v for k, v in default.items() if not k.startswith("ai_platform_")}
    with pytest.raises(errors.UserError, match="ai_platform_enable_vertex, ai_platform_training_args, "
                                               "ai_platform_vertex_region"):
        parameters.resolve_parameters(vertex_spec, [f"trainer_config={json.dumps(bare)}"])
    assert parameters.resolve_parameters(vertex_spec, [f"trainer_config={json.dumps(default)}"])


@pytest.mark.parametrize("args, fragments", [
    (["--trainer-workers", "2"], ["--trainer-workers 2", "needs --vertex-project"]),
    (["--trainer-workers", "4", "--vertex-project", "p"], ["--trainer-workers 4", "needs --vertex-region"]),
    (["--trainer-workers", "2", "--vertex-region", "r"], ["needs --vertex-project"]),
    (["--trainer-workers", "0"], ["--trainer-workers must be 1 or more, not 0"]),
    (["--trainer-workers", "-3"], ["--trainer-workers must be 1 or more, not -3"]),
    (["--vertex-project", "p"], ["--vertex-project applies only with --trainer-workers above 1"]),
    (["--trainer-machine-type", "n1-standard-4"], ["--trainer-machine-type applies only with --trainer-workers"]),
])
def test_trainer_workers_errors(tmp_path, capsys, args, fragments):
    output = tmp_path / "x.json"
    assert kfp_cli.main(["compile", "--output", str(output), "--pipeline-root", "gs://b/r", *args]) == 2
    assert_one_error(capsys.readouterr().err, *fragments)
    assert not output.exists()


def test_vertex_workers_need_a_cloud_storage_pipeline_root(tmp_path, capsys):
    output = tmp_path / "x.json"
    assert kfp_cli.main(["compile", "--output", str(output), *VERTEX_ARGS, "--pipeline-root", "/mnt/pipeline"]) == 2
    assert_one_error(capsys.readouterr().err, "--pipeline-root must be on Cloud Storage", "/mnt/pipeline")


# ----------------------------------------------------------------------------------------------------------------
# the masked-LM stage in the spec

def test_the_kubeflow_spec_runs_the_stage_before_the_trainer(tmp_path):
    output = tmp_path / "spec.json"
    assert kfp_cli.main(["compile", "--output", str(output), "--pipeline-root", "gs://b/root", "--pretrain-epochs",
                         "2", "--whole-word-masking", "--unlabeled-data", "gs://b/unlabeled"]) == 0
    spec = json.loads(output.read_text())["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    assert nodes.PRETRAINER in tasks[nodes.TRAINER]["dependentTasks"]
    base_model = tasks[nodes.TRAINER]["inputs"]["artifacts"]["base_model"]["taskOutputArtifact"]
    assert base_model == {"producerTask": nodes.PRETRAINER, "outputArtifactKey": "model"}
    config = json.loads(tasks[nodes.PRETRAINER]["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constant"])
    assert config["pretrain_epochs"] == 2 and config["whole_word_masking"] is True
    assert config["unlabeled_data"] == "gs://b/unlabeled"
    executor = spec["deploymentSpec"]["executors"][spec["components"][tasks[nodes.PRETRAINER]["componentRef"]["name"]]
                                                   ["executorLabel"]]["container"]
    assert ("components.module_files.pretraining.run_fn" in json.dumps(executor)
            or "run_fn" in json.dumps(tasks[nodes.PRETRAINER]))


# ----------------------------------------------------------------------------------------------------------------
# the distillation stage in the spec

def test_the_kubeflow_spec_releases_the_student_and_never_the_teacher(tmp_path):
    output = tmp_path / "spec.json"
    assert kfp_cli.main(["compile", "--output", str(output), "--pipeline-root", "gs://b/root", "--student-layers",
                         "3", "--distill-temperature", "3"]) == 0
    spec = json.loads(output.read_text())["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    teacher = {"producerTask": nodes.TRAINER, "outputArtifactKey": "model"}
    assert tasks[nodes.DISTILLER]["inputs"]["artifacts"]["base_model"]["taskOutputArtifact"] == teacher
    config = json.loads(tasks[nodes.DISTILLER]["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constant"])
    assert config["student_layers"] == 3 and config["temperature"] == 3.0
    run_fn = tasks[nodes.DISTILLER]["inputs"]["parameters"]["run_fn"]["runtimeValue"]["constant"]
    assert run_fn == "components.module_files.distillation.run_fn"
    student = {"producerTask": nodes.DISTILLER, "outputArtifactKey": "model"}
    for task in (nodes.SERVING_CHECK, nodes.EVALUATOR, nodes.MODEL_CARD, nodes.RUN_REPORT):
        assert tasks[task]["inputs"]["artifacts"]["model"]["taskOutputArtifact"] == student, task
    # Only the Distiller reads the Trainer's model: the teacher reaches no release step.
    readers = {name for name, task in tasks.items()
               for source in task.get("inputs", {}).get("artifacts", {}).values()
               if source.get("taskOutputArtifact") == teacher}
    assert readers == {nodes.DISTILLER}


def test_the_kubeflow_compiler_refuses_a_student_as_deep_as_the_checkpoint(tmp_path, capsys):
    output = tmp_path / "spec.json"
    assert kfp_cli.main(["compile", "--output", str(output), "--pipeline-root", "gs://b/root",
                         "--student-layers", "6"]) == 2
    assert_one_error(capsys.readouterr().err, "--student-layers 6", "which has 6", "--student-layers 5 or less")


# ----------------------------------------------------------------------------------------------------------------
# several label columns in the spec

def test_the_kubeflow_spec_of_several_label_columns_gates_and_trains_each(tmp_path, capsys):
    """The built-in drug_reviews: the compiler reads each column's domain from this checkout's curated schema; the
    trainer_config parameter holds them and the eval_config parameter gates each task on its own output."""
    output = tmp_path / "spec.json"
    assert kfp_cli.main(["compile", "--output", str(output), "--pipeline-root", "gs://b/root", "--dataset",
                         "drug_reviews", "--task-weights", "2,1"]) == 0
    parameters = json.loads(output.read_text())["pipelineSpec"]["root"]["inputDefinitions"]["parameters"]
    trainer = json.loads(parameters["trainer_config"]["defaultValue"])
    assert trainer["label_key"] == "rating,condition" and trainer["label_names"] == []
    assert trainer["task_label_names"][0] == ["negative", "neutral", "positive"]
    assert trainer["task_label_names"][1][-1] == "other" and trainer["task_weights"] == "2,1"
    evaluation = json.loads(parameters["eval_config"]["defaultValue"])
    spec = evaluation["model_specs"][0]
    assert spec["label_keys"] == {"rating": "label_id_rating", "condition": "label_id_condition"}
    assert spec["prediction_keys"] == {"rating": "rating/probabilities", "condition": "condition/probabilities"}
    gated = {tuple(s["output_names"]) for s in evaluation["metrics_specs"]
             if any("threshold" in m for m in s["metrics"])}
    assert gated == {("rating",), ("condition",)}
    # --labels names one column's values: with several, the schema must list them
    assert kfp_cli.main(["compile", "--output", str(tmp_path / "x.json"), "--pipeline-root", "gs://b/root",
                         "--dataset", "drug_reviews", "--labels", "a,b"]) == 2
    assert_one_error(capsys.readouterr().err, "--labels lists the values of one label column", "rating, condition")
