"""serve.py as a child process on 127.0.0.1 (an ephemeral port), for the tests, the serving benchmark and anyone
scripting against a local server: `with ServerProcess(serving_dir, *flags) as server: ...` starts it, waits until it
listens, and stops it (Ctrl-C, then kill) when the block ends."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Union

import requests

from components.runtime.storage import is_uri
from pipeline.dag.config import MODEL_NAME

SERVE = Path(__file__).resolve().parent.parent / "serve.py"
MODEL = MODEL_NAME


class ServerProcess:
    """The server, from `with` until the end of the block."""

    def __init__(self, serving_dir: Union[Path, str, None], *flags: str, log: Optional[Path] = None,
                 env: Optional[dict] = None, preexec_fn: Optional[Callable[[], None]] = None):
        """`serving_dir` None: the flags name a --model-config-file instead (then `log` is needed). `preexec_fn`: run
        in the child before serve.py starts (e.g. resource limits)."""
        # A URI (s3://...) stays a string: Path() would turn it into the local folder s3:/...
        self.serving_dir = serving_dir if serving_dir is None or is_uri(serving_dir) else Path(serving_dir)
        self.flags, self.extra_env, self.preexec_fn = flags, env or {}, preexec_fn
        if log is None and not isinstance(self.serving_dir, Path):
            raise ValueError("a serving folder on an object store, or a model config file, needs log=PATH")
        self.log = log or self.serving_dir.parent / "serve.log"
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""
        self.grpc_target = ""  # HOST:PORT of the gRPC API

    def __enter__(self) -> "ServerProcess":
        env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", **self.extra_env}
        with open(self.log, "w") as out:
            ports = ["--port", "0"] + ([] if "--grpc-port" in self.flags else ["--grpc-port", "0"])
            where = [] if self.serving_dir is None else ["--serving-dir", str(self.serving_dir)]
            self.proc = subprocess.Popen([sys.executable, str(SERVE), *where, *ports, *self.flags],
                                         cwd=SERVE.parent.parent, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         preexec_fn=self.preexec_fn)
        deadline = time.time() + 60
        while time.time() < deadline and not self.url:
            match = re.search(r"on (http://127\.0\.0\.1:\d+) .*; gRPC on (127\.0\.0\.1:\d+)", self.log.read_text())
            if match:
                self.url, self.grpc_target = match.group(1), match.group(2)
            elif self.proc.poll() is not None:
                raise RuntimeError(f"serve.py exited with {self.proc.returncode}:\n{self.log.read_text()}")
            else:
                time.sleep(0.1)
        if not self.url:
            self.__exit__()
            raise RuntimeError(f"serve.py did not start listening:\n{self.log.read_text()}")
        return self

    def __exit__(self, *_):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def model_url(self, suffix: str = "", version: Optional[int] = None, model: str = MODEL,
                  label: Optional[str] = None) -> str:
        return (f"{self.url}/v1/models/{model}" + (f"/versions/{version}" if version else "") +
                (f"/labels/{label}" if label else "") + suffix)

    def status(self, model: str = MODEL) -> dict:
        answer = requests.get(self.model_url(model=model), timeout=10)
        return answer.json() if answer.status_code == 200 else {"model_version_status": []}

    def states(self, model: str = MODEL) -> dict:
        return {int(s["version"]): s for s in self.status(model)["model_version_status"]}

    def wait_for(self, condition, timeout: float = 120, what: str = "", model: str = MODEL) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if condition(self.states(model)):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve.py exited:\n{self.log.read_text()}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}: {json.dumps(self.status())}\n{self.log.read_text()}")

    def predict(self, body, version: Optional[int] = None, verb: str = "predict", model: str = MODEL,
                label: Optional[str] = None, **kwargs) -> requests.Response:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return requests.post(self.model_url(f":{verb}", version, model, label), data=data, timeout=60, **kwargs)
