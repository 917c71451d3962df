"""pipeline/serve.py without a model: its command line refuses a missing serving folder and a busy port, and the demo
page, in a real headless browser, says there is no model yet. The server on the quick run's model is
tests/e2e/test_serving.py's."""

import socket
import subprocess
import sys

import pytest

from support import REPO
from support.browser import ARTIFACTS, open_page
from support.serving_server import Server


def test_the_command_line_refuses_a_missing_folder_and_a_busy_port(tmp_path):
    missing = subprocess.run([sys.executable, "pipeline/serve.py", "--serving-dir", str(tmp_path / "none")], cwd=REPO,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "does not exist: run the pipeline first" in missing.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = subprocess.run([sys.executable, "pipeline/serve.py", "--serving-dir", str(tmp_path), "--port",
                               str(taken.getsockname()[1])], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert busy.returncode == 2 and "cannot listen on 127.0.0.1" in busy.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = subprocess.run([sys.executable, "pipeline/serve.py", "--serving-dir", str(tmp_path), "--port", "0",
                               "--grpc-port", str(taken.getsockname()[1])], cwd=REPO, capture_output=True, text=True,
                              timeout=120)
    assert busy.returncode == 2 and "for gRPC" in busy.stderr and "--grpc-port" in busy.stderr, busy.stderr


def test_grpc_status_without_a_version_is_not_found(tmp_path):
    import grpc
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    (tmp_path / "serving").mkdir()
    with Server(tmp_path / "serving") as empty, grpc.insecure_channel(empty.grpc_target) as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        with pytest.raises(grpc.RpcError) as failed:
            stub.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "bert_classifier"}),
                                timeout=30)
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND


def test_the_demo_page_says_when_there_is_no_model_yet(tmp_path, browser):
    (tmp_path / "serving").mkdir()
    with Server(tmp_path / "serving") as empty:
        page, errors = open_page(browser, empty.url + "/")
        page.wait_for_selector("#message.info")
        assert "has no version of bert_classifier yet" in page.inner_text("#message")
        page.fill("#texts", "anything")
        page.click("#classify")
        page.wait_for_selector("#message.error")
        assert "no model yet" in page.inner_text("#message")
        page.screenshot(path=str(ARTIFACTS / "demo-no-model.png"))
    assert all("404" in e for e in errors)  # the browser logs the 404s it was answered; nothing else
