"""`--beam-runner` presets: the Beam pipeline arguments of each runner reach the local pipeline and the compiled KFP
spec, Apache Beam itself reads them as meant, and every missing or misplaced flag is one line and exit status 2.

No pipeline runs on a non-direct runner here (there is no Dataflow project, Flink or Spark job server): what is
checked is that the arguments reach the Beam steps, and that the installed Beam parses them into the runner, the
options and the SDK worker environment the preset names (`Environment.from_options`, which Beam's PortableRunner
calls when it submits a job).
"""

import csv
import json

import pytest
from apache_beam.options.pipeline_options import (
    DebugOptions,
    DirectOptions,
    GoogleCloudOptions,
    PipelineOptions,
    PortableOptions,
    StandardOptions,
    WorkerOptions,
)
from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator
from apache_beam.transforms import environments
from tfx.dsl.components.base import executor_spec

from pipeline import run_local as run_local_module
from pipeline.cli import local_run
from pipeline.cli.errors import InputError
from pipeline.cli.runner_options import KUBEFLOW, beam_pipeline_args
from pipeline.kubeflow import cli as kfp_cli
from support import assert_one_error, run_local
from support.kubeflow import process_state_kept

IMAGE = "registry.example.com/ml/bert-tfx-pipeline:1.2.3"  # compile --image
SDK_IMAGE = "registry.example.com/ml/bert-tfx-pipeline:1.2.4"  # --beam-sdk-image
DATAFLOW = ["--beam-runner", "dataflow", "--beam-project", "my-project", "--beam-region", "europe-west4",
            "--beam-temp-location", "gs://bucket/tmp"]
# The steps that run Beam pipelines (BeamExecutorSpec); the arguments must reach each of them.
BEAM_STEPS = {"CsvExampleGen", "StatisticsGen", "Transform", "Evaluator"}

DIRECT_DEFAULT = ("--direct_running_mode=in_memory", "--direct_num_workers=1")
# (flags, the Beam pipeline arguments they give) for both runners; {sdk} is the SDK image each runner uses.
PRESETS = {
    "direct": ([], DIRECT_DEFAULT),
    "dataflow": (DATAFLOW, ("--runner=DataflowRunner", "--project=my-project", "--region=europe-west4",
                            "--temp_location=gs://bucket/tmp", "--sdk_container_image={sdk}",
                            "--experiments=use_runner_v2")),
    "flink-docker": (["--beam-runner", "flink", "--beam-job-endpoint", "flink-jobserver:8099"],
                     ("--runner=PortableRunner", "--job_endpoint=flink-jobserver:8099", "--environment_type=DOCKER",
                      "--environment_config={sdk}")),
    "spark-external": (["--beam-runner", "spark", "--beam-job-endpoint", "spark-jobserver:8099",
                        "--beam-environment", "EXTERNAL", "--beam-environment-config", "localhost:50000"],
                       ("--runner=PortableRunner", "--job_endpoint=spark-jobserver:8099",
                        "--environment_type=EXTERNAL", "--environment_config=localhost:50000")),
    "flink-process": (["--beam-runner", "flink", "--beam-job-endpoint", "10.0.0.7:8099", "--beam-environment",
                       "PROCESS", "--beam-environment-config", "/opt/apache/beam/boot"],
                      ("--runner=PortableRunner", "--job_endpoint=10.0.0.7:8099", "--environment_type=PROCESS",
                       '--environment_config={{"command":"/opt/apache/beam/boot"}}')),
}


def expected(name: str, sdk: str) -> tuple:
    return tuple(arg.format(sdk=sdk) for arg in PRESETS[name][1])


# ------------------------------------------------------------------------------------------------ local runner

@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """A small CSV dataset: the local runner checks the data before it builds the pipeline."""
    folder = tmp_path_factory.mktemp("beam") / "data"
    folder.mkdir()
    with open(folder / "reviews.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows([f"a fine film, number {i}", "pos"] if i % 2 else [f"a dull film, number {i}", "neg"]
                         for i in range(40))
    return folder


def local_args(data_root, *flags):
    return run_local_module.build_parser().parse_args(
        ["--data-root", str(data_root), "--pipeline-root", str(data_root.parent / "root"), "--max-seq-length", "32",
         *flags])


def beam_steps(pipeline) -> dict:
    """node id -> beam_pipeline_args of every node that runs a Beam pipeline."""
    return {c.id: list(c.executor_spec.beam_pipeline_args) for c in pipeline.components
            if isinstance(c.executor_spec, executor_spec.BeamExecutorSpec)}


@pytest.mark.parametrize("name", PRESETS)
def test_local_preset_reaches_the_pipeline_and_its_beam_steps(data_root, name):
    from pipeline.dag.pipeline import create_pipeline

    config = local_run.plan(local_args(data_root, *PRESETS[name][0], "--beam-sdk-image", SDK_IMAGE)
                            if name != "direct" else local_args(data_root)).config
    want = expected(name, SDK_IMAGE)
    assert config.beam_pipeline_args == want
    pipeline = create_pipeline(config)
    assert pipeline.beam_pipeline_args == list(want)
    steps = beam_steps(pipeline)
    assert BEAM_STEPS <= set(steps), steps
    for node, args in steps.items():
        assert args == list(want), node


def test_local_direct_flags_still_set_the_direct_runner(data_root):
    config = local_run.plan(local_args(data_root, "--beam-direct-mode", "multi_processing",
                                       "--beam-workers", "2")).config
    assert config.beam_pipeline_args == ("--direct_running_mode=multi_processing", "--direct_num_workers=2")


# ---------------------------------------------------------------------------------------- what Beam reads from them

@pytest.mark.parametrize("name", PRESETS)
def test_beam_reads_every_preset_argument(name):
    """Each argument is one of the installed Beam's options (none discarded as unknown), with the meaning intended."""
    view = PipelineOptions(list(expected(name, SDK_IMAGE)))
    known = view.get_all_options(retain_unknown_options=False)
    assert set(view.get_all_options(retain_unknown_options=True)) == set(known), "Beam does not know an argument"
    runner = view.view_as(StandardOptions).runner
    if name == "direct":
        assert runner is None  # TFX's default: Beam's DirectRunner
        assert view.view_as(DirectOptions).direct_running_mode == "in_memory"
        assert view.view_as(DirectOptions).direct_num_workers == 1
    elif name == "dataflow":
        assert runner == "DataflowRunner"
        cloud = view.view_as(GoogleCloudOptions)
        assert (cloud.project, cloud.region, cloud.temp_location) == ("my-project", "europe-west4", "gs://bucket/tmp")
        assert view.view_as(WorkerOptions).sdk_container_image == SDK_IMAGE
        assert "use_runner_v2" in view.view_as(DebugOptions).experiments
    else:
        assert runner == "PortableRunner"
        portable = view.view_as(PortableOptions)
        assert PipelineOptionsValidator(view, None).validate_environment_options(portable) == []
        # What PortableRunner builds to start the SDK workers on the cluster's nodes.
        environment = environments.Environment.from_options(portable)
        if name == "flink-docker":
            assert isinstance(environment, environments.DockerEnvironment)
            assert environment.container_image == SDK_IMAGE
        elif name == "spark-external":
            assert isinstance(environment, environments.ExternalEnvironment)
            assert environment.url == "localhost:50000"
        else:
            assert isinstance(environment, environments.ProcessEnvironment)
            assert environment.command == "/opt/apache/beam/boot"


# ---------------------------------------------------------------------------------------------------- Kubeflow

@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Specs compiled in-process as `run_kubeflow.py compile` does: Dataflow with extra --beam-args, and Spark with an
    external worker pool."""
    base = tmp_path_factory.mktemp("kfp-beam")
    common = ["compile", "--image", IMAGE, "--pipeline-root", "gs://bucket/root", "--serving-dir", "gs://bucket/serving"]
    runs = {"dataflow": [*DATAFLOW, "--beam-args=--max_num_workers=4 --disk_size_gb=50"],
            "spark-external": PRESETS["spark-external"][0]}
    specs = {}
    with process_state_kept():
        for name, flags in runs.items():
            output = base / f"{name}.json"
            assert kfp_cli.main([*common, *flags, "--output", str(output)]) == 0
            specs[name] = json.loads(output.read_text())["pipelineSpec"]
    return specs


def executor_args(spec: dict, task: str) -> list:
    component = spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]
    return spec["deploymentSpec"]["executors"][spec["components"][component]["executorLabel"]]["container"]["args"]


@pytest.mark.parametrize("name, extra", [("dataflow", ["--max_num_workers=4", "--disk_size_gb=50"]),
                                         ("spark-external", [])])
def test_compiled_beam_steps_get_the_preset_then_beam_args(compiled, name, extra):
    spec = compiled[name]
    # The Dataflow workers run the pipeline's own image unless --beam-sdk-image says otherwise.
    want = list(expected(name, IMAGE)) + extra
    for task in BEAM_STEPS:
        args = executor_args(spec, task)
        assert args[-len(want):] == want, (task, args)
    # ExampleGen's driver (span resolution, before the cache check) gets them too.
    component = spec["root"]["dag"]["tasks"]["CsvExampleGen"]["componentRef"]["name"]
    driver = spec["deploymentSpec"]["executors"][spec["components"][component]["executorLabel"]]["container"]
    assert driver["lifecycle"]["preCacheCheck"]["args"][-len(want):] == want
    # Every argument is one the installed Beam knows.
    view = PipelineOptions(want)
    assert set(view.get_all_options(retain_unknown_options=True)) == set(view.get_all_options())


def test_kubeflow_direct_default_is_unchanged():
    args = kfp_cli.build_parser().parse_args(["compile", "--output", "x.json", "--pipeline-root", "gs://b/r"])
    assert beam_pipeline_args(args, KUBEFLOW) == DIRECT_DEFAULT
    args = kfp_cli.build_parser().parse_args(["compile", "--output", "x.json", "--pipeline-root", "gs://b/r",
                                              "--beam-args=--direct_num_workers=4"])
    assert beam_pipeline_args(args, KUBEFLOW) == (*DIRECT_DEFAULT, "--direct_num_workers=4")


def test_kubeflow_sdk_image_flag_overrides_the_image():
    args = kfp_cli.build_parser().parse_args(["compile", "--output", "x.json", "--image", IMAGE, *DATAFLOW,
                                              "--beam-sdk-image", SDK_IMAGE])
    assert f"--sdk_container_image={SDK_IMAGE}" in beam_pipeline_args(args, KUBEFLOW)


# ------------------------------------------------------------------------------------------------------ errors


def dataflow_without(flag: str) -> list:
    i = DATAFLOW.index(flag)
    return DATAFLOW[:i] + DATAFLOW[i + 2:]


ERRORS = [
    (dataflow_without("--beam-project"), ["--beam-runner dataflow needs --beam-project"]),
    (dataflow_without("--beam-region"), ["--beam-runner dataflow needs --beam-region"]),
    (dataflow_without("--beam-temp-location"), ["--beam-runner dataflow needs --beam-temp-location"]),
    ([*dataflow_without("--beam-temp-location"), "--beam-temp-location", "/tmp/beam"],
     ["--beam-temp-location '/tmp/beam'", "gs://"]),
    (["--beam-runner", "flink"], ["--beam-runner flink needs --beam-job-endpoint"]),
    (["--beam-runner", "spark"], ["--beam-runner spark needs --beam-job-endpoint"]),
    (["--beam-runner", "flink", "--beam-job-endpoint", "flink-jobserver"], ["--beam-job-endpoint", "HOST:PORT"]),
    (["--beam-runner", "spark", "--beam-job-endpoint", "h:8099", "--beam-environment", "EXTERNAL"],
     ["--beam-environment EXTERNAL needs --beam-environment-config"]),
    (["--beam-runner", "spark", "--beam-job-endpoint", "h:8099", "--beam-environment", "PROCESS"],
     ["--beam-environment PROCESS needs --beam-environment-config"]),
    (["--beam-runner", "spark", "--beam-job-endpoint", "h:8099", "--beam-environment", "EXTERNAL",
      "--beam-environment-config", "pool"], ["--beam-environment-config 'pool'", "HOST:PORT"]),
    (["--beam-runner", "flink", "--beam-job-endpoint", "h:8099", "--beam-environment-config", "h:5"],
     ["--beam-environment-config applies only to --beam-environment EXTERNAL or PROCESS"]),
    (["--beam-runner", "flink", "--beam-job-endpoint", "h:8099", "--beam-project", "p"],
     ["--beam-project applies only to --beam-runner dataflow"]),
    ([*DATAFLOW, "--beam-job-endpoint", "h:8099"],
     ["--beam-job-endpoint applies only to --beam-runner flink or spark"]),
    (["--beam-environment", "EXTERNAL"], ["--beam-environment applies only to --beam-runner flink or spark"]),
]


@pytest.mark.parametrize("flags, fragments", ERRORS)
def test_kubeflow_compile_refuses_with_one_line(tmp_path, capsys, flags, fragments):
    output = tmp_path / "x.json"
    with process_state_kept():
        assert kfp_cli.main(["compile", "--output", str(output), "--pipeline-root", "gs://b/r", *flags]) == 2
    assert_one_error(capsys.readouterr().err, *fragments)
    assert not output.exists()


def test_kubeflow_bad_beam_args(tmp_path, capsys):
    with process_state_kept():
        assert kfp_cli.main(["compile", "--output", str(tmp_path / "x.json"), "--beam-args=--x='unclosed"]) == 2
    assert_one_error(capsys.readouterr().err, "--beam-args")


@pytest.mark.parametrize("flags, fragments", [
    *ERRORS,
    # Locally there is no --image to default to: the workers' image must be named.
    (DATAFLOW, ["--beam-runner dataflow needs --beam-sdk-image"]),
    (["--beam-runner", "flink", "--beam-job-endpoint", "h:8099"], ["--beam-runner flink with DOCKER needs "
                                                                     "--beam-sdk-image"]),
])
def test_local_runner_refuses(data_root, flags, fragments):
    with pytest.raises(InputError) as caught:
        local_run.plan(local_args(data_root, *flags))
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_local_runner_refusal_is_one_line_and_exit_status_2(tmp_path):
    """As a user meets it: checked before the data is read, so a missing data folder is not what is reported."""
    proc = run_local("--data-root", tmp_path / "absent", "--pipeline-root", tmp_path / "root", *DATAFLOW, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: --beam-runner dataflow needs --beam-sdk-image (a container image with the project's "
                      "code and tensorflow-text, e.g. the one built from k8s/Dockerfile)."], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "root").exists()


def test_help_explains_the_beam_flags(capsys):
    with pytest.raises(SystemExit), process_state_kept():
        kfp_cli.main(["compile", "--help"])
    helps = {"run_kubeflow.py compile": (capsys.readouterr().out, ["--beam-args"]),
             "run_local.py": (run_local_module.build_parser().format_help(), ["--beam-direct-mode", "--beam-workers"])}
    for prog, (text, flags) in helps.items():
        for flag in ["--beam-runner", "--beam-project", "--beam-region", "--beam-temp-location", "--beam-sdk-image",
                     "--beam-job-endpoint", "--beam-environment", "--beam-environment-config", *flags]:
            assert f"  {flag} " in text, (prog, flag)
