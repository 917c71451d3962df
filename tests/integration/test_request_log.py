"""Request logging by pipeline/serve.py, run for real on 127.0.0.1 with TF Serving's own clients, on a small model
with the classifier's signatures (support/tiny_classifier.py; the server's other tests use the quick run's model).

One server per scenario, its traffic sent by a module fixture and its files read after it stopped; the tests check
what the scenario left:
- `logged`: a model config file with two models, one logging to a folder and one to the tests' S3 server, both at
  rate 1.0; REST (row, columnar, :classify) and gRPC (Predict, Classify) requests, two failed ones, a new version
  pushed while requests flow, then SIGTERM;
- `sampled`: rate 0.1 over 2,000 requests, files rotated by size, the last one closed by age with no request;
- `killed`: SIGKILL while requests flow;
- `full_disk`: the server's files limited to 64 KiB (RLIMIT_FSIZE), so every log write fails.
The collector's own rules (rotation, retention, drops) are tested in process: tests/unit/test_request_log_collector.py.
"""

from __future__ import annotations

import itertools
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from components.tf_serving import request_log as files
from support import REPO, tiny_classifier
from support.serving_server import MODEL, Server

BIAS = {1: 0.0, 2: 2.0}  # each version's bias: an answer's probabilities say which version gave it
SECOND = "second"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    base = tmp_path_factory.mktemp("tiny")
    return {version: tiny_classifier.save(base / str(version), bias) for version, bias in BIAS.items()}


def publish(model_dir: Path, base: Path, version: int) -> None:
    """A version folder appears whole (copied beside, then renamed), as the Pusher publishes one."""
    base.mkdir(parents=True, exist_ok=True)
    shutil.copytree(model_dir, base / f".staging-{version}")
    os.rename(base / f".staging-{version}", base / str(version))


def unique_texts():
    """Texts never sent twice (a record is found by its texts), of lengths that give different scores."""
    return (f"review {i}: " + "so good " * (i % 7) for i in itertools.count())


def metrics(server) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(server.url + "/monitoring/prometheus/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric(values: dict, name: str, **labels) -> float:
    return sum(v for (n, found), v in values.items() if n == name and set(labels.items()) <= set(found))


def grpc_stub(server):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    return prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(server.grpc_target))


def grpc_predict(stub, texts, model=MODEL, signature=""):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(texts))
    return request, stub.Predict(request, timeout=30)


def grpc_classify(stub, texts):
    from tensorflow_serving.apis import classification_pb2

    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "classification"
    for text in texts:
        request.input.example_list.examples.add().features.feature["text"].bytes_list.value.append(text.encode())
    return request, stub.Classify(request, timeout=30)


def rest_rows(answer: dict) -> list:
    """A REST predict answer, row or columnar, as one {output: value} per example."""
    if "predictions" in answer:
        return answer["predictions"]
    columns = answer["outputs"]
    return [{name: values[i] for name, values in columns.items()} for i in range(len(columns["label"]))]


def records(paths) -> list:
    return list(files.read(paths))


def by_texts(logs) -> dict:
    found = {}
    for log in logs:
        key = tuple(e.text for e in files.examples(log))
        assert key not in found, f"two records of the request {key}"
        found[key] = log
    return found


# -- a model config file: two models, a folder and S3, a hot swap, SIGTERM ------------------------------------------

@pytest.fixture(scope="module")
def logged(saved, tmp_path_factory, s3_server):
    base = tmp_path_factory.mktemp("logged")
    publish(saved[1], base / "models" / MODEL, 1)
    publish(saved[1], base / "models" / SECOND, 1)
    bucket = s3_server.bucket("request-log")
    config = base / "models.config"
    config.write_text(f"""model_config_list {{
      config {{ name: "{MODEL}" base_path: "models/{MODEL}" model_platform: "tensorflow"
        logging_config {{ log_collector_config {{ type: "tfrecord" filename_prefix: "logs/{MODEL}/requests" }}
                          sampling_config {{ sampling_rate: 1.0 }} }} }}
      config {{ name: "{SECOND}" base_path: "models/{SECOND}"
        logging_config {{ log_collector_config {{ type: "tfrecord" filename_prefix: "s3://{bucket}/logs/{SECOND}" }}
                          sampling_config {{ sampling_rate: 1.0 }} }} }}
    }}""")
    texts = unique_texts()
    sent = []  # (how, texts, answer, the gRPC request or None)
    server = Server(None, "--model-config-file", str(config), "--poll-seconds", "0.2", log=base / "serve.log",
                    env=s3_server.env())
    with server:
        for model in (MODEL, SECOND):
            server.wait_for(lambda states: states.get(1, {}).get("state") == "AVAILABLE", what="v1", model=model)
        stub = grpc_stub(server)
        batch = [next(texts), next(texts)]
        sent.append(("rest row", batch, server.predict({"instances": batch}).json(), None))
        batch = [next(texts)]
        sent.append(("rest columnar", batch, server.predict({"inputs": {"text": batch}}, version=1).json(), None))
        batch = [next(texts), next(texts)]
        sent.append(("rest classify", batch, server.predict({"signature_name": "classification", "examples": [
            {"text": t} for t in batch]}, verb="classify").json(), None))
        batch = [next(texts)]
        sent.append(("grpc predict", batch, *reversed(grpc_predict(stub, batch))))
        batch = [next(texts), next(texts)]
        sent.append(("grpc classify", batch, *reversed(grpc_classify(stub, batch))))
        failed = [server.predict({"instances": [1]}).status_code]
        try:
            grpc_predict(stub, [next(texts)], signature="no_such_signature")
        except Exception as e:  # noqa: BLE001 - grpc.RpcError
            failed.append(e.code().name)
        second = [[next(texts)] for _ in range(3)]
        second_answers = [server.predict({"instances": t}, model=SECOND).json() for t in second]
        swap = hot_swap(server, stub, texts, lambda: publish(saved[2], base / "models" / MODEL, 2))
        before_stop = metrics(server)
        server.proc.send_signal(signal.SIGTERM)
        exit_status = server.proc.wait(timeout=60)
    keys = s3_server.keys(bucket, "logs/")
    copies = base / "from-s3"
    copies.mkdir()
    for key in keys:
        (copies / key.rsplit("/", 1)[-1]).write_bytes(s3_server.read(bucket, key))
    return SimpleNamespace(base=base, sent=sent + swap.sent, first=sent, swap=swap, failed=failed,
                           second=list(zip(second, second_answers)), metrics=before_stop, exit_status=exit_status,
                           log=(base / "serve.log").read_text(), prefix=str(base / "logs" / MODEL / "requests"),
                           keys=keys, second_files=sorted(str(p) for p in copies.iterdir()))


def hot_swap(server, stub, texts, push, seconds_after: float = 1.0, timeout: float = 60.0):
    """REST and gRPC requests from three threads while `push` publishes version 2, until version 2 has answered for
    `seconds_after` seconds. Returns the requests sent and whether version 1 answered some of them."""
    sent, lock, stop = [], threading.Lock(), threading.Event()
    lock_texts = threading.Lock()
    seen_new = []

    def take(n):
        with lock_texts:
            return [next(texts) for _ in range(n)]

    def rest_loop():
        session = requests.Session()
        while not stop.is_set():
            batch = take(1)
            answer = session.post(server.model_url(":predict"), json={"instances": batch}, timeout=30)
            assert answer.status_code == 200, answer.text
            with lock:
                sent.append(("rest row", batch, answer.json(), None))

    def grpc_loop():
        while not stop.is_set():
            batch = take(1)
            request, response = grpc_predict(stub, batch)
            if response.model_spec.version.value == 2 and not seen_new:
                seen_new.append(time.monotonic())
            with lock:
                sent.append(("grpc predict", batch, response, request))

    threads = [threading.Thread(target=loop, daemon=True) for loop in (rest_loop, rest_loop, grpc_loop)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    push()
    deadline = time.monotonic() + timeout
    while not (seen_new and time.monotonic() > seen_new[0] + seconds_after) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert seen_new, f"version 2 never answered:\n{server.log.read_text()[-3000:]}"
    return SimpleNamespace(sent=sent)


def test_every_answered_request_is_one_record_holding_what_was_sent_and_answered(logged):
    assert logged.exit_status == 0, logged.log[-3000:]
    closed = files.log_files(logged.prefix)
    assert closed, logged.log[-3000:]
    assert not [n for n in os.listdir(Path(logged.prefix).parent) if n.startswith(".")]  # SIGTERM closed the file
    found = by_texts(records(closed))
    assert len(found) == len(logged.sent)  # exactly one record per answered request, failed ones left out
    for how, texts, answer, request in logged.sent:
        log = found[tuple(texts)]
        kind = log.WhichOneof("log_type")
        meta = log.log_metadata
        assert (meta.model_spec.name, meta.sampling_config.sampling_rate, list(meta.saved_model_tags)) == (
            MODEL, 1.0, ["serve"])
        assert abs(meta.timestamp_secs - time.time()) < 600
        rows = files.examples(log)
        if how.startswith("grpc"):  # kept as it came and as it was sent
            entry = getattr(log, kind)
            assert entry.request == request and entry.response == answer, how
            assert meta.model_spec.version.value == answer.model_spec.version.value
        elif how == "rest classify":
            assert kind == "classify_log"
            assert [[[c, s] for c, s in zip(r.outputs["classes"], r.outputs["scores"])] for r in rows] == \
                answer["results"]
        else:
            assert kind == "predict_log" and [r.outputs for r in rows] == rest_rows(answer), how
        # the version that answered: version 1 before the swap, then each record's version explains its scores
        probabilities = [r.outputs.get("probabilities", r.outputs.get("scores")) for r in rows]
        for text, p in zip(texts, probabilities):
            assert p[1] == pytest.approx(tiny_classifier.score(text, BIAS[meta.model_spec.version.value]), abs=1e-5)


def test_rest_requests_are_logged_as_the_equivalent_grpc_requests(logged):
    import tensorflow as tf

    found = by_texts(records(files.log_files(logged.prefix)))
    (row, columnar, classify) = [found[tuple(texts)] for _, texts, _, _ in logged.first[:3]]
    for log, texts, version in ((row, logged.first[0][1], None), (columnar, logged.first[1][1], 1)):
        request = log.predict_log.request
        assert request.model_spec.name == MODEL and request.model_spec.signature_name == "serving_default"
        assert (request.model_spec.version.value if request.model_spec.HasField("version") else None) == version
        assert list(request.inputs) == ["text"]
        text = request.inputs["text"]
        assert text.dtype == tf.string.as_datatype_enum and [d.size for d in text.tensor_shape.dim] == [len(texts)]
        assert [v.decode() for v in text.string_val] == texts
        assert set(log.predict_log.response.outputs) == {"label", "label_id", "probabilities"}
        assert log.predict_log.response.model_spec.version.value == 1
    examples = classify.classify_log.request.input.example_list.examples
    assert [e.features.feature["text"].bytes_list.value[0].decode() for e in examples] == logged.first[2][1]
    assert classify.classify_log.request.model_spec.signature_name == "classification"


def test_failed_requests_are_counted_not_logged(logged):
    assert logged.failed == [400, "INVALID_ARGUMENT"]
    values = logged.metrics
    assert metric(values, ":local_serving:request_log_failed_requests_total", model_name=MODEL) == 2
    assert metric(values, ":local_serving:request_log_failed_requests_total", model_name=SECOND) == 0
    # no file had closed before SIGTERM (32 MiB, 10 minutes), so none was counted yet; nothing was dropped
    assert metric(values, ":local_serving:request_log_files_total", model_name=MODEL) == 0
    assert metric(values, ":local_serving:request_log_dropped_total") == 0
    assert "dropping records" not in logged.log


def test_two_models_of_one_config_log_apart_one_of_them_on_s3(logged):
    mine = records(files.log_files(logged.prefix))
    assert {log.log_metadata.model_spec.name for log in mine} == {MODEL}
    assert logged.keys and all(k.startswith(f"logs/{SECOND}-") and k.endswith(".tfrecord") for k in logged.keys)
    theirs = by_texts(records(logged.second_files))
    assert len(theirs) == len(logged.second) == 3
    for texts, answer in logged.second:
        log = theirs[tuple(texts)]
        assert log.log_metadata.model_spec.name == SECOND and log.log_metadata.model_spec.version.value == 1
        assert [r.outputs for r in files.examples(log)] == answer["predictions"]


def test_each_record_names_the_version_that_answered_during_a_hot_swap(logged):
    found = by_texts(records(files.log_files(logged.prefix)))
    versions = {}
    for how, texts, answer, _ in logged.swap.sent:
        version = found[tuple(texts)].log_metadata.model_spec.version.value
        versions.setdefault(how, set()).add(version)
        if how == "grpc predict":
            assert version == answer.model_spec.version.value
    # both versions answered over both protocols (the scores matching each record's version are checked above)
    assert versions == {"rest row": {1, 2}, "grpc predict": {1, 2}}, versions


# -- rate 0.1: the sample, rotation by size and by age -------------------------------------------------------------

REQUESTS, RATE, FILE_BYTES, FILE_SECONDS = 2000, 0.1, 4096, 1.5


@pytest.fixture(scope="module")
def sampled(saved, tmp_path_factory):
    base = tmp_path_factory.mktemp("sampled")
    publish(saved[1], base / "serving" / MODEL, 1)
    prefix = str(base / "logs" / "requests")
    folder = Path(prefix).parent
    texts = unique_texts()
    lock = threading.Lock()
    answered = []

    def being_written():
        return [n for n in os.listdir(folder) if n.startswith(".")] if folder.is_dir() else []

    with Server(base / "serving", "--request-log", prefix, "--request-log-sampling", str(RATE),
                "--request-log-file-mb", str(FILE_BYTES / 2 ** 20),
                "--request-log-file-seconds", str(FILE_SECONDS)) as server:
        server.wait_for(lambda states: states.get(1, {}).get("state") == "AVAILABLE", what="v1")

        def client(n, until=lambda: False):
            session = requests.Session()
            for _ in range(n):
                if until():
                    return
                with lock:
                    batch = [next(texts)]
                status = session.post(server.model_url(":predict"), json={"instances": batch}, timeout=30).status_code
                with lock:
                    answered.append(status)

        threads = [threading.Thread(target=client, args=(REQUESTS // 4,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        # A file is left open (the last sampled record may have just filled one): the age rule must close it.
        client(200, until=lambda: time.sleep(0.05) or being_written())
        last_request = time.monotonic()
        deadline = last_request + FILE_SECONDS + 10
        while time.monotonic() < deadline and (being_written() or metric(
                metrics(server), ":local_serving:request_log_records_total") != len(records(
                    files.log_files(prefix)))):
            time.sleep(0.1)
        closed_after_s = time.monotonic() - last_request
        by_age = files.log_files(prefix)
        values = metrics(server)
    return SimpleNamespace(answered=answered, by_age=by_age, closed_after_s=closed_after_s, values=values,
                           after_stop=files.log_files(prefix), prefix=prefix)


def test_rate_0_1_logs_a_binomial_share_of_2000_requests(sampled):
    n = len(sampled.answered)  # 2,000 and the few sent until a file was open
    assert REQUESTS <= n < REQUESTS + 200 and set(sampled.answered) == {200}
    logged = records(sampled.after_stop)
    sd = (n * RATE * (1 - RATE)) ** 0.5  # 13.4
    assert abs(len(logged) - n * RATE) < 5 * sd, len(logged)
    assert {log.log_metadata.sampling_config.sampling_rate for log in logged} == {RATE}
    assert metric(sampled.values, ":local_serving:request_log_records_total") == len(logged)


def test_files_rotate_by_size_and_the_last_one_by_age(sampled):
    sizes = [os.path.getsize(p) for p in sampled.by_age]
    record_bytes = max(len(log.SerializeToString()) + 16 for log in records(sampled.by_age))
    assert len(sizes) >= 5
    assert all(FILE_BYTES <= size < FILE_BYTES + record_bytes for size in sizes[:-1]), sizes
    # the last file, left open after the traffic, closed with no request once FILE_SECONDS had passed: every
    # sampled record was in a closed file before the server stopped, and stopping it had nothing left to close
    assert sizes[-1] < FILE_BYTES
    assert sampled.closed_after_s < FILE_SECONDS + 5 and sampled.after_stop == sampled.by_age
    assert metric(sampled.values, ":local_serving:request_log_records_total") == len(records(sampled.by_age))
    assert files.opened_at(sampled.by_age[0]) < files.opened_at(sampled.by_age[-1])  # names sort by time
    assert metric(sampled.values, ":local_serving:request_log_files_total") == len(sizes)
    assert metric(sampled.values, ":local_serving:request_log_bytes_total") == sum(sizes)


# -- SIGKILL under load --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def killed(saved, tmp_path_factory):
    base = tmp_path_factory.mktemp("killed")
    publish(saved[1], base / "serving" / MODEL, 1)
    prefix = str(base / "logs" / "requests")
    texts = unique_texts()
    lock, stop, answered = threading.Lock(), threading.Event(), []
    with Server(base / "serving", "--request-log", prefix, "--request-log-file-mb", str(2048 / 2 ** 20)) as server:
        server.wait_for(lambda states: states.get(1, {}).get("state") == "AVAILABLE", what="v1")

        def client():
            session = requests.Session()
            while not stop.is_set():
                with lock:
                    batch = [next(texts)]
                try:
                    if session.post(server.model_url(":predict"), json={"instances": batch}, timeout=30).ok:
                        with lock:
                            answered.append(batch[0])
                except requests.RequestException:
                    return  # the server is gone

        threads = [threading.Thread(target=client, daemon=True) for _ in range(4)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(files.log_files(prefix)) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.proc.kill()
        server.proc.wait(timeout=30)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    return SimpleNamespace(prefix=prefix, answered=answered, names=os.listdir(Path(prefix).parent))


def test_sigkill_under_load_leaves_only_whole_files_visible(killed):
    visible = files.log_files(killed.prefix)
    assert len(visible) >= 5
    texts = []
    for path in visible:  # every record of every file reads back (TFRecord's CRCs checked) and parses
        texts += [e.text for log in records([path]) for e in files.examples(log)]
    assert set(texts) <= set(killed.answered) and len(texts) == len(set(texts))
    hidden = [n for n in killed.names if n.startswith(".")]
    assert len(hidden) <= 1 and all(n.endswith(files.TEMP_SUFFIX) for n in hidden)  # at most the open file, unlisted
    assert sorted(n for n in killed.names if not n.startswith(".")) == sorted(os.path.basename(p) for p in visible)


# -- a full disk: the server's files limited to 64 KiB -------------------------------------------------------------

FILE_LIMIT = 64 * 1024
FULL_DISK_REQUESTS = 400  # records of ~1.3 KB: a file fails every ~100 (the writer's buffer is 64 KiB too)


def limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))  # Python ignores SIGXFSZ: writes fail


@pytest.fixture(scope="module")
def full_disk(saved, tmp_path_factory):
    base = tmp_path_factory.mktemp("full")
    publish(saved[1], base / "serving" / MODEL, 1)
    prefix = str(base / "logs" / "requests")
    texts = unique_texts()
    with Server(base / "serving", "--request-log", prefix, "--request-log-file-mb", "1",
                preexec_fn=limit_file_size) as server:
        server.wait_for(lambda states: states.get(1, {}).get("state") == "AVAILABLE", what="v1")
        session = requests.Session()
        long_texts = (t + " long enough to fill the log quickly" * 20 for t in texts)
        statuses = [session.post(server.model_url(":predict"), json={"instances": [next(long_texts)]},
                                 timeout=30).status_code for _ in range(FULL_DISK_REQUESTS)]
        deadline = time.monotonic() + 20
        while not metric(metrics(server), ":local_serving:request_log_dropped_total") and time.monotonic() < deadline:
            time.sleep(0.1)
        values = metrics(server)
    return SimpleNamespace(statuses=statuses, values=values, prefix=prefix, log=server.log.read_text())


def test_a_full_disk_drops_and_counts_records_and_every_request_is_answered(full_disk):
    assert full_disk.statuses == [200] * FULL_DISK_REQUESTS
    dropped = metric(full_disk.values, ":local_serving:request_log_dropped_total", model_name=MODEL,
                     reason="write_failed")
    assert FULL_DISK_REQUESTS / 4 < dropped <= FULL_DISK_REQUESTS, (dropped, full_disk.log[-3000:])
    assert full_disk.log.count("dropping records") == 1  # said once
    for path in files.log_files(full_disk.prefix):  # whatever did close is whole
        assert os.path.getsize(path) <= FILE_LIMIT
        records([path])


# -- refused at start ----------------------------------------------------------------------------------------------

def test_a_logging_setting_that_cannot_be_used_is_refused_at_start_in_one_line(tmp_path):
    def serve(*flags):
        return subprocess.run([sys.executable, "pipeline/serve.py", *flags], cwd=REPO, capture_output=True, text=True,
                              timeout=120)

    config = tmp_path / "models.config"
    config.write_text(f'model_config_list {{ config {{ name: "{MODEL}" base_path: "{tmp_path}" logging_config {{ '
                      'log_collector_config { type: "kafka" filename_prefix: "logs/x" } } } }')
    rate = serve("--serving-dir", str(tmp_path), "--request-log", "logs/x", "--request-log-sampling", "1.5")
    collector = serve("--model-config-file", str(config))
    both = serve("--model-config-file", str(config), "--request-log", "logs/x")
    for refused, message in ((rate, "argument --request-log-sampling: 1.5: must be between 0 and 1"),
                             (collector, "logging_config: log_collector_config.type 'kafka' is not a log collector"),
                             (both, "--request-log is for the one model of --serving-dir")):
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and message in lines[-1], refused.stderr  # the last line; argparse's usage
        assert refused is rate or len(lines) == 1, refused.stderr  # lines come before its own
    assert str(config) in collector.stderr and "model 'bert_classifier'" in collector.stderr
