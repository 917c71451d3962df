"""The one typed configuration shared by every runner, and the project's defaults.

`create_pipeline(config)` in pipeline.py reads nothing else; both runners turn their command lines into a
`PipelineConfig` through their front doors (pipeline/cli/). The data's and the components' settings (and their
defaults) are defined beside the code that reads them and composed here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath
from typing import Optional, Tuple, Union

from components.release.run_summary import RunSetup
from components.runtime import storage
from components.settings.data import DataSettings
from components.settings.distillation import DistillerSettings
from components.settings.evaluator import EvaluatorSettings
from components.settings.pretraining import PretrainerSettings
from components.settings.serving_loop import ServingLoopSettings, absolute_prefix
from components.settings.trainer import TrainerSettings
from components.settings.transform import TransformSettings
from components.tasks import Task
from pipeline.data.datasets import REPO_ROOT

PIPELINE_NAME = "bert_text_classifier"
MODEL_NAME = "bert_classifier"  # the model's name under the serving directory (TF Serving's --model_name)

# Module paths of the user code: referenced by path (not uploaded module files) so the same pipeline runs
# from this checkout locally and from the code baked into the image on Kubeflow.
PREPROCESSING_FN = "components.module_files.preprocessing.preprocessing_fn"
RUN_FN = "components.module_files.trainer.run_fn"
PRETRAIN_RUN_FN = "components.module_files.pretraining.run_fn"  # the masked-LM stage's Trainer
DISTILL_RUN_FN = "components.module_files.distillation.run_fn"  # the distillation stage's Trainer (the student)

OUTPUTS_DIR = REPO_ROOT / "outputs"

BEAM_DIRECT_MODES = ("in_memory", "multi_processing")
# Where the Beam steps (ExampleGen, StatisticsGen, Transform, Evaluator, ...) run: Beam's DirectRunner in the step's
# own process, Google Cloud Dataflow, or a Flink or Spark cluster through its Beam job server (Beam's PortableRunner).
# The beam_pipeline_args of each are built in pipeline/cli/runner_options.py (`beam_pipeline_args`).
BEAM_RUNNERS = ("direct", "dataflow", "flink", "spark")
# How a portable runner (flink, spark) starts the Python SDK workers that run the user code: in a container of the
# SDK image (DOCKER), from a worker pool already running (EXTERNAL), or as a command on each node (PROCESS).
BEAM_ENVIRONMENTS = ("DOCKER", "EXTERNAL", "PROCESS")
# The Vertex AI Training machine type of each Trainer replica when the Trainer runs as a multi-worker job.
DEFAULT_TRAINER_MACHINE_TYPE = "n1-standard-8"



@dataclasses.dataclass(frozen=True)
class VertexTraining:
    """The Trainer as a multi-worker Vertex AI Training custom job (TFX's Google Cloud AI Platform Trainer): a chief
    pool of one replica and a worker pool of `workers - 1`, every replica `machine_type` running `image` (the
    pipeline's own image, which has the project's code). Vertex AI sets TF_CONFIG in each replica."""

    workers: int
    project: str
    region: str
    image: str
    machine_type: str = DEFAULT_TRAINER_MACHINE_TYPE

    def __post_init__(self):
        if self.workers < 2:
            raise ValueError(f"a Vertex AI Training job of the Trainer has at least 2 workers, not {self.workers}.")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Everything a pipeline run depends on. Paths are strings so they may be local or URIs (gs://...).

    The data's settings (`data`: columns, classes, vocabulary) and the components' own (`transform`, `trainer`,
    `evaluator`, ...) are their dataclasses, each defined once beside the code that reads it; this class adds where
    things live and how the data is laid out."""

    # Where things live.
    pipeline_root: str
    data_root: str
    serving_dir: str
    data: DataSettings
    transform: TransformSettings
    trainer: TrainerSettings
    evaluator: EvaluatorSettings = EvaluatorSettings()
    pretrainer: PretrainerSettings = PretrainerSettings()  # the masked-LM stage; off by default
    distiller: DistillerSettings = DistillerSettings()  # the distillation stage (a smaller student); off by default
    serving: ServingLoopSettings = ServingLoopSettings()  # what is read of the model in service's traffic
    pipeline_name: str = PIPELINE_NAME
    model_name: str = MODEL_NAME
    metadata_path: Optional[str] = None  # SQLite file for ML Metadata; None: the runner's own store (KFP)
    # "local" or "kubeflow": what the pipeline is built for (where it keeps state: relative to the pipeline root
    # locally, full locations on Kubeflow; and the RunReport step, on Kubeflow only)
    orchestrator: str = "local"
    dataset: str = "custom"  # a built-in dataset's name, or "custom" for a user's CSV files

    # Input data: CSV files with a header; `input_splits` lists sub-folders that are already
    # train/eval/test splits, empty means one set of files split by hash (components/ingestion/csv_files.py).
    input_splits: Tuple[str, ...] = ()
    # Span folders (`span-1/`, `span-2/`, ... under data_root, each laid out as above): each run ingests the
    # newest span; Transform and Trainer see the last `spans_window` spans ingested so far.
    use_spans: bool = False
    spans_window: int = 1
    schema_file: Optional[str] = None  # the schema the data is validated against; None: none yet (see schema_source)
    # Where schema_file comes from: "--schema", "curated" (a built-in dataset's), "frozen" (the one this pipeline
    # froze on its first accepted run, components/validation/frozen_schema.py), or "none": this run curates SchemaGen's
    # schema and freezes it under the pipeline root once the data passes the checks.
    schema_source: str = "none"
    # The schema file as the user knows it, for messages, when schema_file is a snapshot of it (the local runner
    # imports a copy named by its content, so an edited schema is not taken from TFX's cache).
    schema_origin: Optional[str] = None
    # With a frozen schema: '' while it is as frozen, else the edited file's digest (a new cache key for the step that
    # publishes it, components/validation/frozen_schema.py).
    frozen_edit: str = ""
    # Thresholds of the checks on the tokenized text (components/validation/text_stats.py): a text_checks.toml, by
    # default the one beside the curated schema; None: text_checks.DEFAULT_CHECKS.
    text_checks_file: Optional[str] = None

    train_steps: Optional[int] = None  # caps the number of training steps (quick runs); None: full epochs
    # Local runs with a Docker daemon: after the project's ServingCheck, TFX's InfraValidator starts the pinned
    # tensorflow/serving image on the candidate; the Pusher then needs its blessing. (Not on Kubeflow: TFX 1.16's V2
    # compiler refuses InfraValidator, tfx/orchestration/kubeflow/v2/step_builder.py.)
    infra_validator: bool = False
    # TF Serving's model config file (components/tf_serving/model_config.py): its version policy says which pushed
    # version is in service, the run's baseline; "": the highest version (TF Serving's default policy).
    model_config_file: str = ""

    # Execution.
    beam_pipeline_args: Tuple[str, ...] = ()
    # Kubeflow: None runs the Trainer in its step's pod (one process); else the Trainer step launches a multi-worker
    # Vertex AI Training job (pipeline/dag/training.py).
    vertex_training: Optional[VertexTraining] = None
    enable_cache: bool = True

    @property
    def text_key(self) -> str:
        return self.data.text_key

    @property
    def label_key(self) -> str:
        return self.data.label_key

    @property
    def label_names(self) -> Tuple[str, ...]:
        return self.data.label_names

    @property
    def serving_logs(self) -> str:
        """--serving-logs, a local prefix made absolute ("": none)."""
        return absolute_prefix(self.serving.serving_logs)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def tasks(self) -> Tuple[Task, ...]:
        """One per label column, each with its classes (components/tasks.py)."""
        return self.data.tasks

    def run_setup(self) -> RunSetup:
        """What the run summary says was asked (components/release/run_summary.py), the same on every runner."""
        pretrained = self.trainer.pretrained_dir
        student = f", student of {self.distiller.student_layers} layers" if self.distiller.enabled else ""
        return RunSetup(
            dataset=self.dataset, data_root=self.data_root, schema=self.schema_origin or self.schema_file,
            schema_source=self.schema_source,
            model=(f"pretrained:{PurePosixPath(pretrained).name}" if pretrained else self.trainer.model_size) + student,
            student_layers=self.distiller.student_layers,
            model_size=PurePosixPath(pretrained).name if pretrained else self.trainer.model_size,
            max_seq_length=self.transform.max_seq_length, text_key=self.text_key, label_key=self.label_key)


def default_pipeline_root(name: str) -> Path:
    return OUTPUTS_DIR / name / "pipeline_root"


def default_serving_dir(name: str) -> Path:
    return OUTPUTS_DIR / name / "serving"


def local_state_dir(pipeline_root: Union[str, Path]) -> Path:
    """The local folder of what a local run keeps on this machine's disk (the ML Metadata store, the run lock, the
    log file, the probe's timings): the pipeline root itself when it is local; for an object-store root, a folder
    under outputs/object-store/ named after it (TFX keeps ML Metadata apart from the pipeline root in the same way: on
    Kubeflow it is the cluster's metadata service)."""
    if not storage.is_uri(pipeline_root):
        return Path(pipeline_root)
    rest = str(pipeline_root).split("://", 1)[1].strip("/")
    return OUTPUTS_DIR / "object-store" / storage.scheme(pipeline_root) / rest


__all__ = [
    "PipelineConfig", "PIPELINE_NAME", "MODEL_NAME", "PREPROCESSING_FN", "PRETRAIN_RUN_FN", "DISTILL_RUN_FN", "RUN_FN",
    "BEAM_DIRECT_MODES", "BEAM_RUNNERS", "BEAM_ENVIRONMENTS",
    "DEFAULT_TRAINER_MACHINE_TYPE", "VertexTraining",
    "default_pipeline_root", "default_serving_dir", "local_state_dir",
]
