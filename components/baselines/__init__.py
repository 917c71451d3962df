"""What a run compares with, kept by earlier runs in versioned folders rather than in ML Metadata
(components/runtime/versioned_folders.py), so that every orchestrator (the local runner, open-source Kubeflow
Pipelines, Vertex AI) finds it the same way: BaselineLookup (lookup.py), the step that reads the model in service and
the last accepted statistics.

May import features, runtime and tf_serving; nothing else of components/, never pipeline/."""
