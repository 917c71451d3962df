"""The HTTP side of the local model server: TensorFlow Serving's REST API on Starlette, run by uvicorn.

    GET  /                                              a demo page: type texts, see labels and probabilities
    GET  /demo/model.json                               the version in service, its class names, model card and inputs
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]               version status
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata      signature defs
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict       row ("instances") or columnar ("inputs")
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:classify      tf.Examples as JSON ("examples", "context")
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:regress       the same, on a regress signature
    GET  /monitoring/prometheus/metrics                             Prometheus metrics (metrics.py)

Every error is `{"error": "..."}` with TF Serving's HTTP status for it (400 bad request, 404 unknown model, version
or path, 405 wrong method, 413 body over --max-request-mb, 504 past --request-timeout, 500 a model failure that is
not the request's fault).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any, ClassVar, Optional

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from components.features import CLASS_NAMES_FILE
from components.settings.base import setting
from pipeline.dag.config import MODEL_NAME
from pipeline.serving import inference, rest, rest_examples
from pipeline.serving import metrics as metrics_lib
from pipeline.serving.model_set import ModelSet
from pipeline.serving.models import LoadedVersion, ModelRegistry, Signature
from pipeline.serving.request_log import RequestLogs

REST_PORT = 8501  # TF Serving's REST port (k8s/serving-deployment.yaml)
GRPC_PORT = 8500  # TF Serving's gRPC port (its --port)
DEMO_PAGE = Path(__file__).resolve().parent / "demo.html"
# Files of a version's assets.extra/ (ignored by TF Serving) that the demo page shows when present: the class names
# (written by the Trainer) and the model card (components/release/model_card.py, CARD_JSON; named here so that the
# server does not import TFX).
MODEL_CARD_FILE = "model_card.json"


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """The local model server's settings (pipeline/serve.py's flags)."""

    COMPONENT: ClassVar[str] = "serve.py"

    serving_dir: str = setting("", "the pipeline's serving folder: the model is SERVING_DIR/MODEL_NAME/<version>/ "
                                   "(default: that of `make run`, outputs/rotten_tomatoes/serving)",
                               flag="--serving-dir")
    model_config_file: str = setting("", "TF Serving's model config file (text ModelServerConfig): the models to "
                                         "serve, each with its base_path (relative: to the file's folder), version "
                                         "policy and version labels, instead of --serving-dir and --model-name",
                                     flag="--model-config-file")
    model_config_poll_seconds: float = setting(
        2.0, "seconds between re-reads of --model-config-file, applied when it changed (0: read once; TF Serving's "
             "--model_config_file_poll_wait_seconds, whose default is 0)", flag="--model-config-poll-seconds")
    model_name: str = setting(MODEL_NAME, "the model's name in the URLs and under the serving folder (TF Serving's "
                                          "--model_name)", flag="--model-name")
    host: str = setting("127.0.0.1", "address to listen on (127.0.0.1: this machine only)", flag="--host")
    port: int = setting(REST_PORT, "port to listen on (TF Serving's REST port; 0 picks a free one)", flag="--port")
    grpc_port: int = setting(GRPC_PORT, "port of TF Serving's gRPC API (PredictionService and ModelService), as TF "
                                        "Serving's --port; 0 picks a free one", flag="--grpc-port")
    poll_seconds: float = setting(1.0, "seconds between looks for a new version folder (TF Serving's "
                                       "--file_system_poll_wait_seconds)", flag="--poll-seconds", positive=True)
    no_batching: bool = setting(False, "give every request its own model call (TF Serving without "
                                       "--enable_batching)", flag="--no-batching")
    max_batch_size: int = setting(32, "most examples merged into one model call when batching", flag="--max-batch-size",
                                  positive=True)
    batch_timeout_ms: float = setting(0.0, "how long a batch waits for more requests, in milliseconds (0: it takes "
                                           "what is already waiting, so a lone request runs at once)",
                                      flag="--batch-timeout-ms")
    max_request_mb: float = setting(16.0, "largest request body in MiB; a larger one is refused with HTTP 413",
                                    flag="--max-request-mb", positive=True)
    request_timeout: float = setting(30.0, "seconds a request may take, from its first byte to its answer (HTTP 504 "
                                           "after)", flag="--request-timeout", positive=True)
    request_log: str = setting("", "log the model's requests with its answers, as TF Serving's PredictionLog records "
                                   "in TFRecord files named PREFIX-<time>-...tfrecord: a local path, "
                                   "s3://BUCKET/PREFIX or gs://BUCKET/PREFIX. The texts users send are stored. With "
                                   "--model-config-file, each model's logging_config says it instead (default: off)",
                               flag="--request-log")
    request_log_sampling: float = setting(1.0, "share of the answered requests logged, drawn request by request (TF "
                                               "Serving's sampling_config.sampling_rate)",
                                          flag="--request-log-sampling", unit_interval=True)
    request_log_file_mb: float = setting(32.0, "a log file is closed and a new one opened at this size, in MiB",
                                         flag="--request-log-file-mb", positive=True)
    request_log_file_seconds: float = setting(600.0, "... or once it has been open this many seconds (also without "
                                                     "new requests)", flag="--request-log-file-seconds",
                                              positive=True)
    request_log_keep_seconds: float = setting(0.0, "delete closed log files of the prefix opened longer ago than "
                                                   "this (0: keep them)", flag="--request-log-keep-seconds")
    request_log_keep_mb: float = setting(0.0, "delete the oldest closed log files of the prefix while all of them "
                                              "together are over this many MiB (0: no limit)",
                                         flag="--request-log-keep-mb")
    request_log_queue: int = setting(5000, "records waiting to be written, per model, before more are dropped "
                                           "(counted; the requests are answered all the same)",
                                     flag="--request-log-queue", positive=True)

    def __post_init__(self):
        if self.batch_timeout_ms < 0:
            raise ValueError("--batch-timeout-ms must be 0 or more")
        if not 0 <= self.port <= 65535:
            raise ValueError("--port must be between 0 and 65535")
        if not 0 <= self.grpc_port <= 65535:
            raise ValueError("--grpc-port must be between 0 and 65535")
        if self.port and self.port == self.grpc_port:
            raise ValueError("--grpc-port must differ from --port")
        if self.model_config_poll_seconds < 0:
            raise ValueError("--model-config-poll-seconds must be 0 or more")
        if self.model_config_file and self.serving_dir:
            raise ValueError("pass --serving-dir or --model-config-file, not both: the config file names each "
                             "model's folder (base_path)")
        if self.model_config_file and self.request_log:
            raise ValueError("--request-log is for the one model of --serving-dir: with --model-config-file, give "
                             "each model that should log a logging_config { log_collector_config { type: "
                             "\"tfrecord\" filename_prefix: \"...\" } sampling_config { sampling_rate: ... } }")
        if not 0.0 <= self.request_log_sampling <= 1.0:
            raise ValueError("--request-log-sampling must be between 0 and 1")
        if self.request_log_keep_seconds < 0 or self.request_log_keep_mb < 0:
            raise ValueError("--request-log-keep-seconds and --request-log-keep-mb must be 0 (no limit) or more")


class JSONResponse(Response):
    """JSON as TF Serving writes it: NaN and infinities as the literals NaN/Infinity, UTF-8 text as is."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=True, separators=(",", ":")).encode("utf-8")


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


# /v1/models/<name>[/versions/<version> | /labels/<label>][/metadata | :<verb>]
_PATH = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
                   r"(?:/(?P<metadata>metadata)|:(?P<verb>[^/:]+))?$")
API = {"predict": "Predict", "classify": "Classify", "regress": "Regress"}


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise rest.RestError(413, f"Request body of {int(declared)} bytes is over the limit of {limit} bytes "
                                  "(--max-request-mb)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise rest.RestError(413, f"Request body is over the limit of {limit} bytes (--max-request-mb)")
        chunks.append(chunk)
    return b"".join(chunks)


async def run_signature(signature: Signature, inputs):
    """The signature's outputs: through its batcher when batching (merged with concurrent requests), else a call
    of its own in a worker thread."""
    future = signature.batcher.submit(inputs) if signature.batcher else None
    if future is None:
        return await run_in_threadpool(signature, inputs)
    return await asyncio.wrap_future(future)


def _version_of(match) -> Optional[int]:
    if match["version"] is None:
        return None
    if not match["version"].isdigit():
        raise rest.RestError(400, f"Malformed version: {match['version']!r} is not a version number")
    return int(match["version"])


def _target(models: ModelSet, match, outcome: metrics_lib.Outcome, status: bool):
    """(registry, version or None) the path names; a label is resolved to its version here."""
    outcome.model = match["name"]
    if status and match["name"] not in models.registries:
        raise rest.RestError(404, f"Could not find any versions of model {match['name']}")
    registry = models.get(match["name"])
    version = _version_of(match)
    if match["label"] is not None:
        version = registry.version_for_label(match["label"])
    return registry, version


def _status(registry: ModelRegistry, version: Optional[int]) -> JSONResponse:
    statuses = registry.status(version)
    if not statuses:
        raise rest.RestError(404, f"Could not find version {version} of model {registry.name}" if version is not None
                             else f"Could not find any versions of model {registry.name}")
    return JSONResponse({"model_version_status": statuses})


def _metadata(registry: ModelRegistry, version: Optional[int], outcome) -> JSONResponse:
    loaded = registry.serving(version)
    outcome.version = str(loaded.version)
    return JSONResponse({"model_spec": {"name": registry.name, "signature_name": "", "version": str(loaded.version)},
                         "metadata": {"signature_def": loaded.metadata}})


def _model_error(e: Exception) -> rest.RestError:
    """A model call's exception as TF Serving answers it: 400 when the request was at fault, else 500."""
    import tensorflow as tf

    message = str(getattr(e, "message", "") or e).strip().splitlines()[0][:500] if str(e).strip() \
        else type(e).__name__
    return rest.RestError(400 if isinstance(e, (tf.errors.InvalidArgumentError, ValueError, TypeError)) else 500,
                          message)


def _serving(registry: ModelRegistry, version: Optional[int], outcome) -> LoadedVersion:
    """The version a request goes to, held until it is answered: a version switch does not affect it."""
    loaded = registry.serving(version)
    outcome.version = str(loaded.version)
    return loaded


async def _predict(registry: ModelRegistry, version: Optional[int], body: bytes, outcome,
                   logs: Optional[RequestLogs], requested: tuple) -> JSONResponse:
    signature_name, key, payload = rest.parse_predict(body)
    outcome.signature = signature_name
    loaded = _serving(registry, version, outcome)
    signature = loaded.signatures.get(signature_name)
    if signature is None:
        raise rest.RestError(400, f"Serving signature name: \"{signature_name}\" not found in signature def "
                                  f"(the model has {', '.join(sorted(loaded.signatures))})")
    inputs = rest.decode_inputs(key, payload, signature.inputs)
    outcome.examples = len(next(iter(inputs.values())))
    try:
        outputs = await run_signature(signature, inputs)
    except Exception as e:  # noqa: BLE001 - answered as TF Serving would
        raise _model_error(e) from None
    answer = JSONResponse(rest.encode_outputs(key, outputs))
    collector = logs.sampled(registry.name) if logs else None
    if collector:  # the request as the equivalent gRPC PredictRequest, built on the log's own thread
        from pipeline.serving import log_records

        collector.submit(log_records.rest_predict, registry.name, loaded.version, signature_name, *requested, inputs,
                         outputs)
    return answer


async def _classify_or_regress(registry: ModelRegistry, version: Optional[int], verb: str, body: bytes,
                               outcome, logs: Optional[RequestLogs], requested: tuple) -> JSONResponse:
    """`:classify` and `:regress`: the JSON becomes the gRPC request message, answered by the same code as gRPC."""
    from tensorflow_serving.apis import classification_pb2, regression_pb2

    request = (classification_pb2.ClassificationRequest if verb == "classify" else
               regression_pb2.RegressionRequest)()
    rest_examples.parse_request(body, verb, request)
    loaded = _serving(registry, version, outcome)
    request.model_spec.name = outcome.model
    outcome.signature = request.model_spec.signature_name or rest.DEFAULT_SIGNATURE
    kind = request.input.WhichOneof("kind")
    outcome.examples = len(getattr(request.input, kind).examples) if kind else 0
    run = inference.classify if verb == "classify" else inference.regress
    try:
        response = await run_in_threadpool(run, loaded, request)  # the batcher's wait blocks: not on the loop
    except rest.RestError:
        raise
    except Exception as e:  # noqa: BLE001 - answered as TF Serving would
        raise _model_error(e) from None
    answer = JSONResponse(rest_examples.classification_json(response.result) if verb == "classify"
                          else rest_examples.regression_json(response.result))
    collector = logs.sampled(registry.name) if logs else None
    if collector:
        from pipeline.serving import log_records

        collector.submit(log_records.from_protos, f"{verb}_log", registry.name, loaded.version, outcome.signature,
                         request, response, *requested)
    return answer


def _demo_model(registry: ModelRegistry) -> Response:
    """The demo page's model facts: the version in service, its class names and model card."""
    current = registry.current
    if current is None:
        return error(404, f"The server has no version of {registry.name} yet: it serves one as soon as the "
                          "pipeline has pushed it (make run).")
    extra = {}
    for key, name in (("class_names", CLASS_NAMES_FILE), ("model_card", MODEL_CARD_FILE)):
        path = os.path.join(current.path, "assets.extra", name)
        try:
            with open(path, encoding="utf-8") as f:
                extra[key] = json.load(f)
        except (OSError, ValueError):
            extra[key] = None
    # The raw-text signature's inputs, a box each on the page: `text`, or a pair's columns in the model card's order.
    default = current.signatures.get("serving_default")
    names = list(default.inputs) if default else ["text"]
    card = extra.get("model_card") if isinstance(extra.get("model_card"), dict) else {}
    ordered = [c for c in str((card.get("data") or {}).get("text_column") or "").split(",") if c in names]
    extra["text_inputs"] = ordered + [n for n in names if n not in ordered]
    return JSONResponse({"name": registry.name, "version": current.version, **extra})


def create_app(models: ModelSet, settings: ServerSettings, metrics: metrics_lib.Metrics,
               logs: Optional[RequestLogs] = None) -> Starlette:
    """The HTTP application: TF Serving's REST routes under /v1/models/, its metrics path, and the demo page at /
    (for the first model). `logs`: the request logs of the models that log (request_log.py)."""
    limit = int(settings.max_request_mb * 2 ** 20)

    async def handle(request: Request, match, outcome) -> Response:
        registry, version = _target(models, match, outcome,
                                    status=request.method == "GET" and not match["metadata"] and not match["verb"])
        if request.method == "GET":
            if match["verb"]:
                return error(405, f"{request.url.path} takes POST, not GET")
            return _metadata(registry, version, outcome) if match["metadata"] else _status(registry, version)
        if match["verb"] not in API:
            return error(405 if not match["verb"] else 404, f"Malformed request: POST {request.url.path}")
        body = await read_body(request, limit)
        requested = (_version_of(match), match["label"])  # as the gRPC request's model spec would name them
        if match["verb"] == "predict":
            return await _predict(registry, version, body, outcome, logs, requested)
        return await _classify_or_regress(registry, version, match["verb"], body, outcome, logs, requested)

    async def model_routes(request: Request) -> Response:
        match = _PATH.match(request.path_params["rest"])
        if not match:
            return error(404, f"Malformed request: {request.method} {request.url.path}")
        if request.method == "GET":
            api = "GetModelMetadata" if match["metadata"] else "GetModelStatus"
        else:
            api = API.get(match["verb"] or "", "Unknown")
        with metrics.request(api, "REST") as outcome:
            answer = await _answer(request, match, outcome)
            if answer.status_code != 200:
                outcome.status = metrics_lib.STATUS_NAMES.get(answer.status_code, "UNKNOWN")
                if logs and request.method == "POST":
                    logs.failed(outcome.model)  # never logged as an answer: counted
            return answer

    async def _answer(request: Request, match, outcome) -> Response:
        try:
            return await asyncio.wait_for(handle(request, match, outcome), settings.request_timeout)
        except rest.RestError as e:
            return error(e.status, e.message)
        except RecursionError:  # a value nested too deeply for a step after parsing: still the request's fault
            return error(400, rest.TOO_DEEP)
        except asyncio.TimeoutError:
            return error(504, f"Request timed out after {settings.request_timeout:g} s (--request-timeout)")
        except ClientDisconnect:
            return error(499, "Client closed the request")

    first = models.names[0] if models.names else MODEL_NAME
    page = DEMO_PAGE.read_text(encoding="utf-8").replace("__MODEL_NAME__", first)

    async def demo(request: Request) -> Response:
        return HTMLResponse(page)

    async def demo_model(request: Request) -> Response:
        try:
            return _demo_model(models.get(first))
        except rest.RestError as e:
            return error(e.status, e.message)

    async def no_model_name(request: Request) -> Response:  # TF Serving's answer; Starlette would redirect
        return error(400, "Missing model name in request.")

    async def prometheus(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=metrics_lib.CONTENT_TYPE)

    async def not_found(request: Request, exc: HTTPException) -> Response:
        return error(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}")

    app = Starlette(routes=[Route("/", demo), Route("/demo/model.json", demo_model),
                            Route(metrics_lib.PATH, prometheus),
                            Route("/v1/models", no_model_name, methods=["GET", "POST"]),
                            Route("/v1/models/", no_model_name, methods=["GET", "POST"]),
                            Route("/v1/models/{rest:path}", model_routes, methods=["GET", "POST"])],
                    exception_handlers={HTTPException: not_found})
    app.state.models = models
    return app
