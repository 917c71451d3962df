"""Kubeflow Pipelines (KFP v2): compile the pipeline into a spec, and upload, run and schedule it on a KFP cluster.

Each file has one job: `compile_config` (compile's flags as a PipelineConfig, paths as the pods see them), `vertex`
(the Trainer as a Vertex AI Training job, --trainer-workers), `errors` (what
the commands can fail with), `parameters` (the compiled pipeline's runtime parameters and `--param NAME=VALUE`),
`compiler` (create_pipeline() to a KFP v2 spec), `specs` (reading spec files),
`client` (the KFP API), `cron` (schedules), `commands` (upload, run, schedule) and `cli` (the command line of
pipeline/run_kubeflow.py).
"""
