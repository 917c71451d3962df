"""TF Serving's files, read and written in one place: its model config file, with version policies, labels and
request logging (model_config.py), and the request logs the model server writes, TFRecord files of PredictionLog
protos (request_log.py). The model server (pipeline/serving/) and the pipeline's steps (BaselineLookup, and what reads
the logs) share them, so they never disagree about the model in service or the logs' format.

May import components.features, components.tasks and components.runtime; nothing else of components/, never
pipeline/."""
