"""Serve the pushed model over TensorFlow Serving's REST and gRPC APIs, on this machine, without TensorFlow Serving.

    python pipeline/serve.py                       # what `make run` pushed, on http://127.0.0.1:8501 and :8500
    python pipeline/serve.py --serving-dir DIR [--model-name bert_classifier] [--host 127.0.0.1] [--port 8501]
    python pipeline/serve.py --model-config-file models.config    # TF Serving's: models, version policies, labels
    python pipeline/serve.py --request-log logs/requests [--request-log-sampling 0.1]    # keep what it is asked

The same client code works against this server and against the TensorFlow Serving deployment in k8s/: REST status,
metadata, predict (row or columnar), classify and regress; gRPC PredictionService and ModelService with TF Serving's
stubs; Prometheus metrics at /monitoring/prometheus/metrics. Like TF Serving it serves the newest version folder (or
what a model config file's policy names), picks up new ones as the Pusher writes them (after loading and warming them
up), batches concurrent requests, and answers every error with TF Serving's status. It logs sampled requests with
their answers as TF Serving's PredictionLog records in TFRecord files when asked (--request-log, or a model config
entry's logging_config; docs/serving.md). Stop it with Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from components.runtime import object_store  # noqa: E402
from components.runtime.quiet_exit import quiet_exit  # noqa: E402
from components.runtime.storage import is_uri  # noqa: E402
from components.settings import base as contract  # noqa: E402
from pipeline.cli.flags import HelpFormatter  # noqa: E402
from pipeline.cli.locations import S3_ENDPOINT_HELP  # noqa: E402
from pipeline.dag.config import default_serving_dir  # noqa: E402
from pipeline.data import datasets  # noqa: E402
from pipeline.serving.server import ServerSettings  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="serve.py",
        description="Serve the pushed model over TensorFlow Serving's REST API (status, metadata, :predict in row "
                    "or columnar format, :classify, :regress) and its gRPC API (PredictionService, ModelService) on "
                    "this machine, so the same client works here and against TF Serving in k8s/. Prometheus "
                    "metrics: GET /monitoring/prometheus/metrics.",
        epilog="Like TF Serving it serves the newest version folder (or the versions a --model-config-file's "
               "policy names, with its labels, re-read while serving) and switches to a new one once it has loaded and "
               "answered its warm-up requests (a version that fails is reported in the status and the previous one "
               "keeps serving), and it merges concurrent requests into one model call. Every error is answered "
               "{\"error\": \"...\"} with TF Serving's HTTP status. Exit status: 0 stopped (Ctrl-C, SIGTERM), 2 "
               "invalid flags, a missing serving folder, a model config file that cannot be used (a logging_config "
               "included), a request log prefix that cannot be written, or a port in use.",
        formatter_class=HelpFormatter)
    contract.add_flags(parser.add_argument_group("server"), ServerSettings)
    parser.add_argument("--s3-endpoint", metavar="URL", help=S3_ENDPOINT_HELP)
    parser.add_argument("--verbose", action="store_true", help="log every request and TensorFlow's messages")
    return parser.parse_args(argv)


def curl_line(host: str, port: int, name: str) -> str:
    return (f"curl -s -X POST http://{host}:{port}/v1/models/{name}:predict -H 'Content-Type: application/json' "
            "-d '{\"instances\": [\"a gripping, beautifully acted film\", \"a dull mess\"]}'")


def main(argv=None) -> int:
    args = parse_args(argv)
    # TensorFlow (imported when the first version loads) prints C++ notices on stderr; the console is for people.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if args.verbose else "3")
    try:
        settings = contract.from_args(ServerSettings, args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    locations = [settings.model_config_file or settings.serving_dir or ""]
    if is_uri(locations[0]):  # a URI stays one: Path() would make s3://b/m "s3:/b/m"
        try:
            object_store.configure_s3(args.s3_endpoint)
            flag = "--model-config-file" if settings.model_config_file else "--serving-dir"
            object_store.require(locations[0], flag)
            object_store.check_bucket(locations[0], flag)
        except object_store.StorageError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        object_store.load_file_systems(locations)
    if settings.model_config_file:
        serving_dir = settings.model_config_file
        found = is_uri(serving_dir) or os.path.isfile(serving_dir)
        if not found:
            print(f"error: --model-config-file {serving_dir} does not exist.", file=sys.stderr)
            return 2
    elif is_uri(settings.serving_dir or ""):
        import tensorflow as tf

        serving_dir = settings.serving_dir.rstrip("/")
        found = tf.io.gfile.isdir(serving_dir)
    else:
        serving_dir = str(Path(settings.serving_dir or default_serving_dir(datasets.DEFAULT)).resolve())
        found = os.path.isdir(serving_dir)
    if not found:
        print(f"error: --serving-dir {serving_dir} does not exist: run the pipeline first (`make run`), or pass the "
              "--serving-dir it pushed to.", file=sys.stderr)
        return 2
    try:
        # IPPROTO_TCP spelled out: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets that say so, and
        # with it on, a response written in two parts waits ~40 ms for the client's delayed ACK.
        sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET, socket.SOCK_STREAM,
                             socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.host, settings.port))
        sock.listen(2048)  # connections wait in the backlog until the server takes them: none refused at start
    except OSError as e:
        print(f"error: cannot listen on {settings.host}:{settings.port} ({e.strerror}); pass another --port or "
              "--host.", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if not args.verbose:
        for name in ("tensorflow", "absl", "h5py"):
            logging.getLogger(name).setLevel(logging.ERROR)
    import uvicorn

    from components.tf_serving.model_config import ConfigError, request_logging
    from pipeline.serving import grpc_api
    from pipeline.serving.metrics import Metrics
    from pipeline.serving.model_set import ModelSet
    from pipeline.serving.models import BatchingOptions
    from pipeline.serving.request_log import FileOptions, RequestLogs
    from pipeline.serving.server import create_app

    batching = None if settings.no_batching else BatchingOptions(settings.max_batch_size, settings.batch_timeout_ms)
    metrics = Metrics(lambda: {name: r.status() for name, r in models.registries.items()})
    try:
        if settings.model_config_file:
            models = ModelSet.from_config_file(serving_dir, settings.poll_seconds, batching, metrics.batch,
                                               settings.model_config_poll_seconds)
            what = f"{', '.join(models.names)} from {serving_dir}"
        else:
            model_dir = f"{serving_dir}/{settings.model_name}"
            logged = request_logging(settings.request_log, settings.request_log_sampling) \
                if settings.request_log else None
            models = ModelSet.single(model_dir, settings.model_name, settings.poll_seconds, batching, metrics.batch,
                                     logging=logged)
            what = model_dir
    except ConfigError as e:
        print(f"error: {'--model-config-file: ' if settings.model_config_file else ''}{e}", file=sys.stderr)
        return 2
    problem = check_log_prefixes(models.policies, settings.model_config_file, args.s3_endpoint)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    logs = RequestLogs(FileOptions(int(settings.request_log_file_mb * 2 ** 20), settings.request_log_file_seconds,
                                   settings.request_log_keep_seconds, int(settings.request_log_keep_mb * 2 ** 20),
                                   settings.request_log_queue), metrics)
    logs.configure({name: policy.logging for name, policy in models.policies.items()})
    models.on_apply = lambda policies: logs.configure({name: p.logging for name, p in policies.items()})
    for name, registry in models.registries.items():
        if not registry.version_folders():
            print(f"no version of {name} under {registry.base_dir} yet: waiting for the pipeline to push one")
    try:
        grpc_server, grpc_port = grpc_api.start(models, metrics, settings.host, settings.grpc_port, logs=logs)
    except (OSError, RuntimeError) as e:  # grpcio raises RuntimeError when it cannot bind
        print(f"error: cannot listen on {settings.host}:{settings.grpc_port} for gRPC ({e}); pass another "
              "--grpc-port.", file=sys.stderr)
        logs.close()
        return 2
    models.start()
    mode = f"batching up to {settings.max_batch_size} examples a call" if batching else "batching off"
    print(f"serving {what} on http://{settings.host}:{port} ({mode}); gRPC on {settings.host}:{grpc_port}",
          flush=True)
    print("try: " + curl_line(settings.host, port, models.names[0]), flush=True)
    config = uvicorn.Config(create_app(models, settings, metrics, logs),
                            log_level="info" if args.verbose else "warning", access_log=args.verbose,
                            timeout_keep_alive=5)
    # uvicorn shuts down gracefully on SIGINT and SIGTERM, then raises the signal again for the caller: SIGTERM as
    # KeyboardInterrupt too, so that the block below closes the request logs (the default action would kill the
    # process first, losing every open log file).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        grpc_server.stop(grace=2).wait(5)  # the calls in flight end (and are logged) first
        models.stop()
        logs.close()  # each model's queued records written, its open file closed and published
    return 0


def check_log_prefixes(policies, config_file: str, s3_endpoint) -> str:
    """'' when every request log prefix can be written to, else one sentence naming it: a local folder is created,
    an object store's file system must be installed and, for S3, its bucket must answer."""
    for name, policy in sorted(policies.items()):
        if policy.logging is None:
            continue
        prefix = policy.logging.filename_prefix
        where = (f"--model-config-file {config_file}, model {name!r}, logging_config filename_prefix {prefix}"
                 if config_file else f"--request-log {prefix}")
        if is_uri(prefix):
            try:
                object_store.configure_s3(s3_endpoint)
                object_store.require(prefix, where.rsplit(" ", 1)[0])
                object_store.check_bucket(prefix, where.rsplit(" ", 1)[0])
            except object_store.StorageError as e:
                return str(e)
            object_store.load_file_systems([prefix])
            continue
        folder = prefix if prefix.endswith("/") else os.path.dirname(prefix)
        try:
            os.makedirs(folder or ".", exist_ok=True)
        except OSError as e:
            return f"{where}: cannot create the folder {folder} ({e.strerror}); name a writable path."
    return ""


def main_exit() -> None:
    """`python pipeline/serve.py` and the console script `bert-tfx-serve` (pyproject.toml):
    main, ended by quiet_exit."""
    quiet_exit(main())


if __name__ == "__main__":
    main_exit()
