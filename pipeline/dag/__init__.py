"""The DAG: `create_pipeline(config)` (pipeline.py), a pure function of the `PipelineConfig` (config.py) that knows
nothing of the runner, the node ids (nodes.py) and the Beam workers' dependencies (beam_dependencies.py).

May import components/ and pipeline.data; never cli/, serving/, kubeflow/ or the entry points."""
