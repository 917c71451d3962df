"""The pipeline as a program: the DAG and the runners that start it.

data/: the built-in datasets (what each is, and its files) and pretrained weights, subsets of a data root. dag/:
`create_pipeline(config)`, a pure function of a `PipelineConfig`, and the node ids. planning/: the sequence length and
what training at it costs, planned from the data before a local run. cli/: the front door shared by the runners
(flags, and a local run's plan: locations, input checks, settings). local/, serving/, kubeflow/: the local runner's
console and reports, the local TF Serving-compatible server, and compile, upload, run and schedule on Kubeflow
Pipelines. The entry points (run_local.py, run_kubeflow.py, serve.py, train_job.py) stay thin at the top. Imports run
downward in that order; pipeline/ may import components/, never the reverse."""
