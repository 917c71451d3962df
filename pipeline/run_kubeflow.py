"""Compile the pipeline for Kubeflow Pipelines (KFP v2), and upload, run and schedule it on a KFP cluster.

    python pipeline/run_kubeflow.py compile --output bert.json --image REGISTRY/bert-tfx-pipeline:TAG \\
        --pipeline-root gs://BUCKET/bert/root --serving-dir gs://BUCKET/bert/serving
    python pipeline/run_kubeflow.py upload --host http://localhost:8080 bert.json
    python pipeline/run_kubeflow.py run --host http://localhost:8080 --param epochs=5 bert.json
    python pipeline/run_kubeflow.py schedule --host http://localhost:8080 --cron "0 3 * * 1" \\
        --pipeline bert-text-classifier
    python pipeline/run_kubeflow.py schedule --host http://localhost:8080 --pause bert-text-classifier-retraining

`compile` builds the very pipeline run_local.py runs (`create_pipeline(config)`) and turns it into a KFP v2
pipeline spec with TFX's KubeflowV2DagRunner. It reads nothing from the pipeline root and uploads nothing: the user
code is referenced by module path and runs from the image built with k8s/Dockerfile (code under /pipeline, on
PYTHONPATH; the built-in datasets, the packaged checkpoint and the curated schemas inside it).

`compile` takes run_local.py's data, model and training flags. Runtime parameters (pipeline/kubeflow/parameters.py):
data_root, train_args, trainer_config (every Trainer setting) and eval_config; `run` and `schedule` take
`--param NAME=VALUE` for those, and for single fields of the JSON ones, merged into the compiled default: train_steps,
every Trainer hyperparameter and the Evaluator's gates (e.g. `--param epochs=5 --param min_accuracy=0.8`).

The KFP server is addressed with --host (or KF_PIPELINES_ENDPOINT); credentials, where the endpoint wants them, come
from KF_PIPELINES_TOKEN (a bearer token) or KF_PIPELINES_COOKIE (e.g. "authservice_session=...").

Exit status: 0 on success; 2 for invalid input (arguments, spec file, cron expression, parameters); 1 when the
Kubeflow Pipelines API could not be reached, or refused or failed a request.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow is imported anywhere: TFT/TFMA need Keras 2
if __package__ in (None, ""):  # `python pipeline/run_kubeflow.py`: make the repo root importable, not pipeline/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from pipeline.kubeflow.cli import main  # noqa: E402  (after the path and Keras set-up above)

if __name__ == "__main__":
    sys.exit(main())
