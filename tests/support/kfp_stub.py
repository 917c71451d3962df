"""A small stand-in for the Kubeflow Pipelines v2beta1 REST API, for tests of pipeline/run_kubeflow.py.

It serves the endpoints that kfp 2.13's `kfp.Client` (through kfp_server_api 2.4) calls for uploading, running and
scheduling pipelines, on 127.0.0.1 at an ephemeral port, from a background thread; it records every request
(method, path, query, parsed body, headers) and answers with plausible JSON, keeping pipelines, versions,
experiments, runs and recurring runs in memory. Knobs: `deny` (401/403 for every request), `names_elsewhere`
(pipeline names taken in a namespace the caller cannot see: listing does not show them, uploading gets a 409) and
`list_ignores_namespace` (listing pipelines shows those of every namespace).
"""

from __future__ import annotations

import dataclasses
import email.parser
import email.policy
import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qs, urlsplit

import yaml

API = "/apis/v2beta1"


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: Dict[str, str]
    body: Any  # parsed JSON; for multipart uploads {field: {"filename": ..., "content": bytes}}; else None
    headers: Dict[str, str]  # names in lowercase


class KfpStub:
    def __init__(self):
        self.requests: List[Request] = []
        self.pipelines: Dict[str, dict] = {}
        self.versions: Dict[str, List[dict]] = {}
        self.experiments: Dict[str, dict] = {}
        self.runs: Dict[str, dict] = {}
        self.recurring_runs: Dict[str, dict] = {}
        self.deny: Optional[int] = None
        self.names_elsewhere: set = set()
        self.list_ignores_namespace = False  # list pipelines of every namespace, whatever the query asks
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "KfpStub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- helpers for tests --------------------------------------------------------------------------------------

    def calls(self, method: Optional[str] = None, path: Optional[str] = None) -> List[Request]:
        return [r for r in self.requests if (method is None or r.method == method) and (path is None or r.path == path)]

    def new_id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids)}"

    def timestamp(self) -> str:  # increasing, so that "created_at desc" has a meaning
        return f"2024-01-01T00:00:{next(self._ids) % 60:02d}Z"

    def add_pipeline(self, name: str, spec: Optional[dict] = None, namespace: str = "") -> dict:
        pipeline = {"pipeline_id": self.new_id("pipeline"), "display_name": name, "namespace": namespace,
                    "created_at": self.timestamp()}
        self.pipelines[pipeline["pipeline_id"]] = pipeline
        self.versions[pipeline["pipeline_id"]] = []
        self.add_version(pipeline["pipeline_id"], name, spec or {})
        return pipeline

    def add_version(self, pipeline_id: str, name: str, spec: dict) -> dict:
        version = {"pipeline_id": pipeline_id, "pipeline_version_id": self.new_id("version"), "display_name": name,
                   "created_at": self.timestamp(), "pipeline_spec": spec}
        self.versions[pipeline_id].append(version)
        return version

    def add_recurring_run(self, name: str, mode: str = "ENABLE") -> dict:
        job = {"recurring_run_id": self.new_id("recurring"), "display_name": name, "mode": mode,
               "max_concurrency": "1", "no_catchup": True, "trigger": {"cron_schedule": {"cron": "0 0 3 * * 1"}}}
        self.recurring_runs[job["recurring_run_id"]] = job
        return job


def _display_name(query: Dict[str, str]) -> Optional[str]:
    if "filter" not in query:
        return None
    for predicate in json.loads(query["filter"]).get("predicates", []):
        if predicate.get("key") == "display_name" and predicate.get("operation") in ("EQUALS", 1):
            return predicate.get("stringValue", predicate.get("string_value"))
    return None


def _parse_multipart(content_type: str, data: bytes) -> dict:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + data)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[name] = {"filename": part.get_filename(), "content": part.get_payload(decode=True)}
    return fields


def _handler(stub: KfpStub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            self._handle("GET")

        def do_POST(self):
            self._handle("POST")

        def do_DELETE(self):
            self._handle("DELETE")

        def _send(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str, code: int) -> None:
            self._send(status, {"error_message": message, "code": code, "message": message, "details": []})

        def _handle(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("multipart/form-data"):
                body = _parse_multipart(content_type, raw)
            else:
                body = json.loads(raw) if raw else None
            with stub._lock:
                stub.requests.append(Request(method, parts.path, query, body,
                                             {k.lower(): v for k, v in self.headers.items()}))
                if stub.deny:
                    reason = "Unauthenticated" if stub.deny == 401 else "PermissionDenied"
                    return self._error(stub.deny, f"{reason}: request is not allowed", 16 if stub.deny == 401 else 7)
                for route_method, pattern, action in ROUTES:
                    match = re.fullmatch(API + pattern, parts.path)
                    if match and route_method == method:
                        return action(self, stub, query, body, **match.groupdict())
                return self._error(404, f"no route for {method} {parts.path}", 5)

    return Handler


# -- routes -----------------------------------------------------------------------------------------------------

def healthz(h, stub, query, body):
    h._send(200, {"multi_user": False})


def list_pipelines(h, stub, query, body):
    name, namespace = _display_name(query), query.get("namespace")
    found = [p for p in stub.pipelines.values() if (name is None or p["display_name"] == name)
             and (not namespace or stub.list_ignores_namespace or p["namespace"] in (namespace, ""))]
    h._send(200, {"pipelines": found, "total_size": len(found)} if found else {})


def upload_pipeline(h, stub, query, body):
    name = query.get("name") or body["uploadfile"]["filename"]
    taken = [p for p in stub.pipelines.values() if p["display_name"] == name and
             p["namespace"] == query.get("namespace", "")]
    if name in stub.names_elsewhere or taken:
        return h._error(409, f"Failed to create a new pipeline. The name {name} already exists. Please specify a "
                             "new name", 6)
    spec = yaml.safe_load(body["uploadfile"]["content"])
    pipeline = stub.add_pipeline(name, spec, query.get("namespace", ""))
    h._send(200, pipeline)


def upload_version(h, stub, query, body):
    pipeline_id = query.get("pipelineid")
    if pipeline_id not in stub.pipelines:
        return h._error(404, f"Pipeline {pipeline_id} not found", 5)
    if any(v["display_name"] == query.get("name") for v in stub.versions[pipeline_id]):
        return h._error(409, f"The name {query.get('name')} already exists", 6)
    version = stub.add_version(pipeline_id, query.get("name"), yaml.safe_load(body["uploadfile"]["content"]))
    h._send(200, version)


def list_versions(h, stub, query, body, pid):
    if pid not in stub.pipelines:
        return h._error(404, f"Pipeline {pid} not found", 5)
    versions = list(stub.versions[pid])
    if "desc" in query.get("sort_by", ""):
        versions.reverse()
    versions = versions[:int(query.get("page_size") or 10)]
    h._send(200, {"pipeline_versions": versions, "total_size": len(versions)})


def get_version(h, stub, query, body, pid, vid):
    for version in stub.versions.get(pid, []):
        if version["pipeline_version_id"] == vid:
            return h._send(200, version)
    h._error(404, f"Pipeline version {vid} not found", 5)


def get_pipeline(h, stub, query, body, pid):
    if pid not in stub.pipelines:
        return h._error(404, f"Pipeline {pid} not found", 5)
    h._send(200, stub.pipelines[pid])


def list_experiments(h, stub, query, body):
    name = _display_name(query)
    found = [e for e in stub.experiments.values() if name is None or e["display_name"] == name]
    h._send(200, {"experiments": found, "total_size": len(found)} if found else {})


def create_experiment(h, stub, query, body):
    experiment = {**body, "experiment_id": stub.new_id("experiment"), "created_at": stub.timestamp()}
    stub.experiments[experiment["experiment_id"]] = experiment
    h._send(200, experiment)


def create_run(h, stub, query, body):
    run = {"run_id": stub.new_id("run"), "display_name": body.get("display_name"),
           "experiment_id": body.get("experiment_id"), "created_at": stub.timestamp()}
    stub.runs[run["run_id"]] = {**body, **run}
    h._send(200, run)


def list_recurring_runs(h, stub, query, body):
    name = _display_name(query)
    found = [r for r in stub.recurring_runs.values() if name is None or r["display_name"] == name]
    # kfp_server_api 2.4 reads this list under the camelCase key.
    h._send(200, {"recurringRuns": found, "total_size": len(found)} if found else {})


def create_recurring_run(h, stub, query, body):
    job = {**body, "recurring_run_id": stub.new_id("recurring"), "created_at": stub.timestamp()}
    stub.recurring_runs[job["recurring_run_id"]] = job
    h._send(200, job)


def get_recurring_run(h, stub, query, body, rid):
    if rid not in stub.recurring_runs:
        return h._error(404, f"RecurringRun {rid} not found", 5)
    h._send(200, stub.recurring_runs[rid])


def delete_recurring_run(h, stub, query, body, rid):
    if stub.recurring_runs.pop(rid, None) is None:
        return h._error(404, f"RecurringRun {rid} not found", 5)
    h._send(200, {})


def set_mode(mode):
    def action(h, stub, query, body, rid):
        if rid not in stub.recurring_runs:
            return h._error(404, f"RecurringRun {rid} not found", 5)
        stub.recurring_runs[rid]["mode"] = mode
        h._send(200, {})
    return action


ROUTES = [
    ("GET", "/healthz", healthz),
    ("GET", "/pipelines", list_pipelines),
    ("POST", "/pipelines/upload", upload_pipeline),
    ("POST", "/pipelines/upload_version", upload_version),
    ("GET", "/pipelines/(?P<pid>[^/]+)/versions", list_versions),
    ("GET", "/pipelines/(?P<pid>[^/]+)/versions/(?P<vid>[^/]+)", get_version),
    ("GET", "/pipelines/(?P<pid>[^/]+)", get_pipeline),
    ("GET", "/experiments", list_experiments),
    ("POST", "/experiments", create_experiment),
    ("POST", "/runs", create_run),
    ("GET", "/recurringruns", list_recurring_runs),
    ("POST", "/recurringruns", create_recurring_run),
    ("GET", "/recurringruns/(?P<rid>[^/:]+)", get_recurring_run),
    ("DELETE", "/recurringruns/(?P<rid>[^/:]+)", delete_recurring_run),
    ("POST", "/recurringruns/(?P<rid>[^/:]+):enable", set_mode("ENABLE")),
    ("POST", "/recurringruns/(?P<rid>[^/:]+):disable", set_mode("DISABLE")),
]
