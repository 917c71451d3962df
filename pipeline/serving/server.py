"""The HTTP side of the local model server: TensorFlow Serving's REST API on Starlette, run by uvicorn.

    GET  /                                              a demo page: type texts, see labels and probabilities
    GET  /demo/model.json                               the version in service, its class names and model card
    GET  /v1/models/{name}[/versions/{v}]              version status
    GET  /v1/models/{name}[/versions/{v}]/metadata     signature defs
    POST /v1/models/{name}[/versions/{v}]:predict      row ("instances") or columnar ("inputs") format

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
from pipeline.serving import rest
from pipeline.serving.models import ModelRegistry, Signature

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
    model_name: str = setting(MODEL_NAME, "the model's name in the URLs and under the serving folder (TF Serving's "
                                          "--model_name)", flag="--model-name")
    host: str = setting("127.0.0.1", "address to listen on (127.0.0.1: this machine only)", flag="--host")
    port: int = setting(REST_PORT, "port to listen on (TF Serving's REST port; 0 picks a free one)", flag="--port")
    grpc_port: int = setting(GRPC_PORT, "port of TF Serving's gRPC API (PredictionService.Predict and "
                                        "GetModelMetadata, ModelService.GetModelStatus), as TF Serving's --port; 0 "
                                        "picks a free one", flag="--grpc-port")
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

    def __post_init__(self):
        if self.batch_timeout_ms < 0:
            raise ValueError("--batch-timeout-ms must be 0 or more")
        if not 0 <= self.port <= 65535:
            raise ValueError("--port must be between 0 and 65535")
        if not 0 <= self.grpc_port <= 65535:
            raise ValueError("--grpc-port must be between 0 and 65535")
        if self.port and self.port == self.grpc_port:
            raise ValueError("--grpc-port must differ from --port")


class JSONResponse(Response):
    """JSON as TF Serving writes it: NaN and infinities as the literals NaN/Infinity, UTF-8 text as is."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=True, separators=(",", ":")).encode("utf-8")


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


# /v1/models/<name>[/versions/<version>][/metadata | :<verb>]
_PATH = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?"
                   r"(?:/(?P<metadata>metadata)|:(?P<verb>[^/:]+))?$")


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


def _check_name(registry: ModelRegistry, name: str, what: str) -> None:
    if name != registry.name:
        raise rest.RestError(404, f"{what}: this server serves model {registry.name!r} only, not {name!r}")


def _status(registry: ModelRegistry, name: str, version: Optional[int]) -> JSONResponse:
    _check_name(registry, name, "Could not find any versions of model " + name)
    statuses = registry.status(version)
    if not statuses:
        raise rest.RestError(404, f"Could not find version {version} of model {name}" if version is not None
                             else f"Could not find any versions of model {name}")
    return JSONResponse({"model_version_status": statuses})


def _metadata(registry: ModelRegistry, name: str, version: Optional[int]) -> JSONResponse:
    _check_name(registry, name, "Servable not found")
    loaded = registry.serving(version)
    return JSONResponse({"model_spec": {"name": name, "signature_name": "", "version": str(loaded.version)},
                         "metadata": {"signature_def": loaded.metadata}})


async def _predict(registry: ModelRegistry, limit: int, request: Request, name: str,
                   version: Optional[int]) -> JSONResponse:
    _check_name(registry, name, "Servable not found")
    body = await read_body(request, limit)
    signature_name, key, payload = rest.parse_predict(body)
    loaded = registry.serving(version)  # held until answered: a version switch does not affect this request
    signature = loaded.signatures.get(signature_name)
    if signature is None:
        raise rest.RestError(400, f"Serving signature name: \"{signature_name}\" not found in signature def "
                                  f"(the model has {', '.join(sorted(loaded.signatures))})")
    inputs = rest.decode_inputs(key, payload, signature.inputs)
    try:
        outputs = await run_signature(signature, inputs)
    except Exception as e:  # noqa: BLE001 - answered as TF Serving would
        import tensorflow as tf

        message = str(getattr(e, "message", "") or e).strip().splitlines()[0][:500] if str(e).strip() \
            else type(e).__name__
        status_code = 400 if isinstance(e, (tf.errors.InvalidArgumentError, ValueError, TypeError)) else 500
        raise rest.RestError(status_code, message) from None
    return JSONResponse(rest.encode_outputs(key, outputs))


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
    return JSONResponse({"name": registry.name, "version": current.version, **extra})


def create_app(registry: ModelRegistry, settings: ServerSettings) -> Starlette:
    """The HTTP application: TF Serving's REST routes under /v1/models/, and the demo page at /."""
    limit = int(settings.max_request_mb * 2 ** 20)

    async def models(request: Request) -> Response:
        match = _PATH.match(request.path_params["rest"])
        if not match:
            return error(404, f"Malformed request: {request.method} {request.url.path}")
        try:
            version = _version_of(match)
            if request.method == "GET":
                if match["verb"]:
                    return error(405, f"{request.url.path} takes POST, not GET")
                return (_metadata if match["metadata"] else _status)(registry, match["name"], version)
            if match["verb"] != "predict":
                if match["verb"] in ("classify", "regress"):
                    return error(400, f"this server implements :predict only (for tf.Examples: :predict with "
                                      f"\"signature_name\": \"serving_examples\" and {{\"b64\": ...}} values), not "
                                      f":{match['verb']}")
                return error(405 if not match["verb"] else 404, f"Malformed request: POST {request.url.path}")
            return await asyncio.wait_for(_predict(registry, limit, request, match["name"], version),
                                          settings.request_timeout)
        except rest.RestError as e:
            return error(e.status, e.message)
        except RecursionError:  # a value nested too deeply for a step after parsing: still the request's fault
            return error(400, rest.TOO_DEEP)
        except asyncio.TimeoutError:
            return error(504, f"Request timed out after {settings.request_timeout:g} s (--request-timeout)")
        except ClientDisconnect:
            return error(499, "Client closed the request")

    page = DEMO_PAGE.read_text(encoding="utf-8").replace("__MODEL_NAME__", registry.name)

    async def demo(request: Request) -> Response:
        return HTMLResponse(page)

    async def demo_model(request: Request) -> Response:
        return _demo_model(registry)

    async def no_model_name(request: Request) -> Response:  # TF Serving's answer; Starlette would redirect
        return error(400, "Missing model name in request.")

    async def not_found(request: Request, exc: HTTPException) -> Response:
        return error(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}")

    app = Starlette(routes=[Route("/", demo), Route("/demo/model.json", demo_model),
                            Route("/v1/models", no_model_name, methods=["GET", "POST"]),
                            Route("/v1/models/", no_model_name, methods=["GET", "POST"]),
                            Route("/v1/models/{rest:path}", models, methods=["GET", "POST"])],
                    exception_handlers={HTTPException: not_found})
    app.state.registry = registry
    return app
