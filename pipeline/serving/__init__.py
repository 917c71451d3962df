"""A local model server speaking TensorFlow Serving's REST API (pipeline/serve.py is its command line).

rest.py: the JSON request and response formats; models.py: the versions of a model folder, loaded, warmed up and
switched like TF Serving's default policy; batching.py: server-side batching; server.py: the HTTP application;
grpc_api.py: the gRPC services; request_log.py and log_records.py: each model's request log, in TF Serving's
PredictionLog format (the files themselves: components/tf_serving/request_log.py).
"""
