"""The pipeline as a program: the DAG and the runners that start it.

data/: the built-in datasets and pretrained weights. dag/: `create_pipeline(config)`, a pure function of a
`PipelineConfig`, and the node ids. cli/: the front door shared by the runners (flags, input checks, console, run
summary and report). serving/: the local TF Serving-compatible server. kubeflow/: compile, upload, run and schedule on
Kubeflow Pipelines. The entry points (run_local.py, run_kubeflow.py, serve.py, train_job.py) stay thin at the top.
Imports run downward in that order; pipeline/ may import components/, never the reverse."""
