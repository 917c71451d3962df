"""What a run compares with, kept by earlier runs in folders rather than in ML Metadata, so that every orchestrator
(the local runner, open-source Kubeflow Pipelines, Vertex AI) finds it the same way: versioned folders published
atomically (store.py) and the step that reads the model in service and the last accepted statistics (lookup.py).

May import features and runtime; nothing else of components/, never pipeline/."""
