"""The Kubeflow Pipelines API through kfp.Client: every failure becomes an ApiError of one line, and the lookups the
commands share (pipelines by name, their versions, experiments, what to run)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import re
import socket
import warnings
from typing import Iterator, Optional

from pipeline.kubeflow import compile_config
from pipeline.kubeflow.errors import ApiError, UserError, one_line
from pipeline.kubeflow.specs import load_platform_spec, load_spec, write_upload_file

ENV_TOKEN = "KF_PIPELINES_TOKEN"
ENV_COOKIE = "KF_PIPELINES_COOKIE"
ENV_ENDPOINT = "KF_PIPELINES_ENDPOINT"  # the variable kfp.Client itself reads
CONNECT_TIMEOUT = (10, 60)  # seconds (connect, read) of the first request, which finds out whether the host answers


def _server_message(body) -> Optional[str]:
    """The error message in a KFP error response ({"error_message"|"message"|"error": ...}), if there is one."""
    if body is None:
        return None
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(body)
    except ValueError:
        text = body.strip()
        return one_line(text, 200) if text and "<" not in text[:1] and len(text) < 400 else None
    if isinstance(data, dict):
        for key in ("error_message", "message", "error"):
            if isinstance(data.get(key), str) and data[key].strip():
                return one_line(data[key], 300)
    return None


def _connection_reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or error
    text = str(reason)
    match = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    if match:
        return match.group(0).strip()
    if "timed out" in text.lower():
        return "timed out"
    return type(reason).__name__


class Kfp:
    """A kfp.Client for one host and namespace, whose calls turn every failure into an ApiError of one line."""

    def __init__(self, host: str, namespace: Optional[str]):
        if not re.match(r"^https?://[^/\s]+", host):
            raise UserError(f"--host {host!r} must be the KFP API's URL, starting with http:// or https:// "
                            "(e.g. http://localhost:8080 after `kubectl port-forward -n kubeflow "
                            "svc/ml-pipeline-ui 8080:80`).")
        self.host = host.rstrip("/")
        self.namespace = namespace or None
        with self.call(f"connecting to {self.host}"):
            self.client = _make_client(self.host, self.namespace)

    def link(self, fragment: str) -> str:
        return f"{self.host}/#/{fragment}"

    @contextlib.contextmanager
    def call(self, action: str, conflict: Optional[str] = None) -> Iterator[None]:
        """Runs kfp.Client calls: its printed links are dropped (this CLI prints its own) and its exceptions become
        an ApiError saying what was being done and what went wrong. `conflict` replaces the message of a 409."""
        import kfp_server_api
        import requests
        import urllib3

        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        except kfp_server_api.ApiException as e:
            raise ApiError(self._describe(e, action, conflict), status=e.status) from None
        except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, ConnectionError,
                socket.gaierror, socket.timeout) as e:
            raise ApiError(f"{action}: cannot reach the Kubeflow Pipelines API at {self.host} "
                           f"({_connection_reason(e)}); check --host and that the API is reachable from here "
                           "(e.g. kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80).") from None
        except (ValueError, TimeoutError) as e:  # kfp.Client's own checks (e.g. several pipelines of one name)
            raise ApiError(f"{action}: {one_line(e)}") from None

    def _describe(self, e, action: str, conflict: Optional[str]) -> str:
        status, detail = e.status, _server_message(e.body)
        said = f": {detail}" if detail else ""
        where = f" in namespace {self.namespace}" if self.namespace else ""
        if not status:  # no HTTP answer: TLS failure and the like
            return f"{action}: could not talk to {self.host}: {one_line(e.reason or 'unknown error', 200)}"
        if status == 401:
            return (f"{action}: {self.host} refused the request as unauthenticated (HTTP 401{said}); set {ENV_TOKEN} "
                    f"to a bearer token, or {ENV_COOKIE} to a session cookie, that it accepts.")
        if status == 403:
            return (f"{action}: {self.host} denied access{where} (HTTP 403{said}); the credentials in use "
                    f"({ENV_TOKEN}/{ENV_COOKIE}) lack the permission, or --namespace is not one they may use.")
        if status == 409 and conflict:
            return f"{action}: {conflict} (HTTP 409{said})"
        if status == 404:
            return f"{action}: not found on {self.host}{where} (HTTP 404{said})."
        if status == 302 or 300 <= status < 400:
            return f"{action}: {self.host} redirected (HTTP {status}), probably to a login page; see {ENV_TOKEN}."
        return f"{action}: {self.host} answered HTTP {status} {e.reason or ''}".rstrip() + f"{said}."


def _make_client(host: str, namespace: Optional[str]):
    import kfp
    import kfp_server_api

    class Client(kfp.Client):
        """kfp.Client whose health check is one request with a timeout (kfp's retries 5 times, sleeping 5 s between
        tries, and then raises a TimeoutError that does not say why) and checks the answer is the KFP API's."""
        checked = False

        def get_kfp_healthz(self, sleep_duration: int = 0):
            response = self._healthz_api.healthz_service_get_healthz(
                _preload_content=False, _request_timeout=CONNECT_TIMEOUT)
            try:
                data = json.loads(response.data)
            except ValueError:
                data = None
            if not isinstance(data, dict):
                kind = response.headers.get("Content-Type", "no JSON") if response.headers else "no JSON"
                raise ApiError(f"connecting to {host}: it answered, but not as the Kubeflow Pipelines API ({kind}; a "
                               f"login page?); check --host, and {ENV_TOKEN}/{ENV_COOKIE} if it needs credentials.")
            self.checked = True
            return kfp_server_api.V2beta1GetHealthzResponse(multi_user=data.get("multi_user"))

    # kfp.Client asks the health endpoint itself when it has no namespace; otherwise ask it here, so that a wrong
    # host or refused credentials show at once rather than in the middle of the first real request.
    client = Client(host=host, namespace=namespace or "kubeflow", existing_token=os.environ.get(ENV_TOKEN) or None,
                    cookies=os.environ.get(ENV_COOKIE) or None)
    if not client.checked:
        client.get_kfp_healthz()
    return client


def name_filter(name: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]})


def find_pipeline(kfp: Kfp, name: str):
    """The pipeline named `name` visible in the namespace (shared ones too), or None. One of that name that the
    server lists under another namespace is an error: a new version must not go into someone else's pipeline."""
    with kfp.call(f"looking up pipeline {name!r}"):
        response = kfp.client.list_pipelines(filter=name_filter(name), namespace=kfp.namespace, page_size=10)
    found = [p for p in (response.pipelines or []) if p.display_name == name]
    if kfp.namespace:
        elsewhere = [p for p in found if p.namespace and p.namespace != kfp.namespace]
        if elsewhere and len(elsewhere) == len(found):
            raise ApiError(f"a pipeline named {name!r} already exists in namespace {elsewhere[0].namespace}, not "
                           f"{kfp.namespace}; pass another --name.")
        found = [p for p in found if not p.namespace or p.namespace == kfp.namespace]
    if len(found) > 1:
        raise ApiError(f"several pipelines are named {name!r} ({', '.join(p.pipeline_id for p in found)}); "
                       "use --pipeline-id.")
    return found[0] if found else None


def latest_version(kfp: Kfp, pipeline_id: str):
    with kfp.call(f"listing the versions of pipeline {pipeline_id}"):
        response = kfp.client.list_pipeline_versions(pipeline_id, sort_by="created_at desc", page_size=1)
    versions = response.pipeline_versions or []
    return versions[0] if versions else None


def get_experiment(kfp: Kfp, name: str):
    with kfp.call(f"getting or creating experiment {name!r}"):
        return kfp.client.create_experiment(name, namespace=kfp.namespace)


@dataclasses.dataclass
class Source:
    """What a run or schedule runs: a spec file, or an uploaded pipeline version."""
    spec: dict
    package_path: Optional[str] = None
    pipeline_id: Optional[str] = None
    version_id: Optional[str] = None
    label: str = ""


def pipeline_source(kfp: Kfp, args: argparse.Namespace, folder: str, spec: Optional[dict]) -> Source:
    if spec is not None:  # FILE, loaded before connecting
        package = write_upload_file(spec, folder, spec["pipelineInfo"]["name"], load_platform_spec(args.file))
        return Source(spec, package_path=package,
                      label=f"spec file {args.file}")
    pipeline_id = args.pipeline_id
    if args.pipeline:
        found = find_pipeline(kfp, args.pipeline)
        if found is None:
            raise ApiError(f"no pipeline named {args.pipeline!r} on {kfp.host}"
                           f"{' in namespace ' + kfp.namespace if kfp.namespace else ''}; upload it first.")
        pipeline_id = found.pipeline_id
    version_id = args.version_id
    if not version_id:
        latest = latest_version(kfp, pipeline_id)
        if latest is None:
            raise ApiError(f"pipeline {pipeline_id} has no versions.")
        version_id = latest.pipeline_version_id
    with kfp.call(f"getting version {version_id} of pipeline {pipeline_id}"):
        version = kfp.client.get_pipeline_version(pipeline_id, version_id)
    spec = version.pipeline_spec if isinstance(version.pipeline_spec, dict) else {}
    if isinstance(spec.get("pipeline_spec"), dict):  # stored together with a platform spec
        spec = spec["pipeline_spec"]
    spec.setdefault("pipelineInfo", {}).setdefault("name", args.pipeline or pipeline_id)
    return Source(spec, pipeline_id=pipeline_id, version_id=version_id,
                  label=f"pipeline {pipeline_id} version {version_id}")


def check_source_args(args: argparse.Namespace) -> Optional[dict]:
    chosen = [x for x in (args.file, args.pipeline_id, args.pipeline) if x]
    if len(chosen) != 1:
        raise UserError("name what to run: a spec FILE, or --pipeline-id ID, or --pipeline NAME (one of them).")
    if args.version_id and not (args.pipeline_id or args.pipeline):
        raise UserError("--version-id goes with --pipeline-id or --pipeline.")
    return load_spec(args.file) if args.file else None


def run_options(args: argparse.Namespace) -> dict:
    """kfp.Client's options of a run or recurring run from the command line."""
    chosen = {"enable_caching": False if args.no_cache else None, "service_account": args.service_account}
    if args.pipeline_root:
        chosen["pipeline_root"] = compile_config.pod_location(args.pipeline_root, "--pipeline-root")
    return chosen
