"""A local run whose every location is on an S3-compatible server (moto's, on 127.0.0.1: support/s3_server.py), as
an on-premises Kubeflow's MinIO or SeaweedFS would hold them: the data root, the pipeline root (artifacts, the frozen
schema, the run-to-run baselines, the report), the serving folder and the masked-LM stage's unlabeled texts are
s3:// URIs, reached through TensorFlow's S3 file system (tensorflow-io) and Beam's (boto3). The first run freezes
its schema, publishes what its gates accepted and pushes; the second finds its frozen schema, baselines and model in
service on the store, and warm-starts from that model; the server serves the pushed model from the store. Nothing is
written where the runner is started, and only ML Metadata, the run lock and the log stay on this machine's disk."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.dag import nodes
from support import REPO
from support.retraining import ARGS, rows, write_csv

BUCKET = "kfp-artifacts"
RUN_ARGS = [*ARGS, "--epochs", "1", "--max-seq-length", "32"]


def run_local(cwd: Path, server, *args):
    env = {**os.environ, **server.env(), "TF_USE_LEGACY_KERAS": "1", "PYTHONPATH": str(REPO), "S3_ENDPOINT": ""}
    return subprocess.run([sys.executable, str(REPO / "pipeline" / "run_local.py"), *args,
                           "--s3-endpoint", server.endpoint], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def store(s3_server, tmp_path_factory):
    s3_server.bucket(BUCKET)
    local = tmp_path_factory.mktemp("object_store")
    csv = local / "upload" / "reviews.csv"
    write_csv(csv, rows(200, seed=4))
    s3_server.client().upload_file(str(csv), BUCKET, "incoming/reviews.csv")
    texts = "\n".join(review for review, _ in rows(120, seed=9)) + "\n"
    s3_server.client().put_object(Bucket=BUCKET, Key="unlabeled/texts.txt", Body=texts.encode())
    cwd = local / "cwd"
    cwd.mkdir()
    root, serving = f"s3://{BUCKET}/pipelines/reviews", f"s3://{BUCKET}/serving"
    flags = [*RUN_ARGS, "--data-root", f"s3://{BUCKET}/incoming", "--pipeline-root", root, "--serving-dir", serving]
    first = run_local(cwd, s3_server, *flags, "--pretrain-epochs", "1", "--unlabeled-data", f"s3://{BUCKET}/unlabeled",
                      "--summary-json", f"s3://{BUCKET}/summaries/first.json")
    after_first = s3_server.keys(BUCKET)
    # The second run retrains from the model in service on the store (--warm-start), for one step and without the
    # masked-LM stage: what it checks is what it finds on the store, not another round of training.
    second = run_local(cwd, s3_server, *flags, "--warm-start", "--train-steps", "1",
                       "--summary-json", f"s3://{BUCKET}/summaries/second.json")
    return dict(server=s3_server, cwd=cwd, first=first, second=second, after_first=after_first, root=root,
                serving=serving)


def summary(store, name):
    return json.loads(store["server"].read(BUCKET, f"summaries/{name}.json"))


def test_the_first_run_pushes_to_the_store_and_keeps_its_artifacts_there(store):
    proc = store["first"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    first = summary(store, "first")
    assert first["blessed"] and first["pushed"], first
    version = first["pushed_dir"].rsplit("/", 1)[1]
    assert first["pushed_dir"] == f"{store['serving']}/bert_classifier/{version}"
    keys = set(store["after_first"])
    served = f"serving/bert_classifier/{version}/"
    assert {served + "saved_model.pb", served + "variables/variables.index",
            served + "assets.extra/tf_serving_warmup_requests"} <= keys
    root = "pipelines/reviews/"
    assert f"Pretrainer: 120 unlabeled texts from s3://{BUCKET}/unlabeled" in store["first"].stdout
    for step in (nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.TRANSFORM, nodes.PRETRAINER, nodes.TRAINER,
                 nodes.EVALUATOR):
        assert any(k.startswith(f"{root}{step}/") for k in keys), step
    assert {root + "schema/schema.pbtxt", root + "report.html", root + "anomalies.json"} <= keys
    records = [k for k in keys if k.startswith(f"{root}history/")]  # the run history: one record, on the store
    assert len(records) == 1 and records[0].endswith(".json"), records
    for gate in (nodes.DATA_GATE, nodes.TEXT_GATE):  # the run-to-run baselines, published by the gates
        assert any(k.startswith(f"{root}baselines/{gate}/") and k.endswith("/baseline.json") for k in keys), gate
    assert os.listdir(store["cwd"]) == []  # no folder named s3:, nothing beside the user


def test_the_second_run_finds_its_schema_baselines_and_model_in_service_on_the_store(store):
    proc = store["second"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    first, second = summary(store, "first"), summary(store, "second")
    served = first["pushed_dir"].rsplit("/", 1)[1]
    lookup = next(line for line in proc.stdout.splitlines() if "BaselineLookup done" in line)
    assert f"model in service {served}" in lookup and "last accepted statistics: data " in lookup, lookup
    assert f"schema: {store['root']}/schema/schema.pbtxt (frozen" in proc.stdout
    assert second["baseline_model"] == first["pushed_dir"], second
    assert f"Trainer: warm start from the model in service, s3://{BUCKET}/serving/" in proc.stdout
    assert second["blessed"], second
    for step in (nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.TRANSFORM):  # the same data: TFX's cache holds
        assert second["components"][step]["state"] == "CACHED", (step, second["components"][step])
    # The run history on the store: the first run's record and this one's, which the report plots.
    history = [k for k in store["server"].keys(BUCKET, "pipelines/reviews/history/")]
    assert len(history) == 2 and history[0] in store["after_first"], history
    page = store["server"].read(BUCKET, "pipelines/reviews/report.html").decode()
    assert 'alt="Accuracy over runs"' in page and "2 run(s) of this pipeline root" in page


def test_ml_metadata_the_lock_and_the_log_stay_on_this_machine(store):
    state = REPO / "outputs" / "object-store" / "s3" / BUCKET / "pipelines" / "reviews"
    assert (state / "metadata.sqlite").is_file() and (state / ".run.lock").is_file()
    assert len(list((state / "logs").glob("run-*.log"))) >= 2
    assert all(not k.endswith(("metadata.sqlite", ".run.lock")) for k in store["server"].keys(BUCKET))


def test_the_server_serves_the_pushed_model_from_the_store(store, tmp_path):
    from pipeline.serving.process import ServerProcess

    server = store["server"]
    env = {**server.env()}
    pushed = [int(summary(store, name)["pushed_dir"].rsplit("/", 1)[1]) for name in ("first", "second")
              if summary(store, name)["pushed"]]
    with ServerProcess(store["serving"], "--s3-endpoint", server.endpoint, log=tmp_path / "serve.log",
                       env=env) as running:
        running.wait_for(lambda states: states.get(max(pushed), {}).get("state") == "AVAILABLE", what="the newest")
        answer = running.predict({"instances": ["a wonderful and moving film", "an awful boring mess"]})
    assert running.proc.returncode == 0, (tmp_path / "serve.log").read_text()  # Ctrl-C: a clean stop, status 0
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
    assert answer.status_code == 200, answer.text
    assert [p["label"] in ("fresh", "rotten") for p in answer.json()["predictions"]] == [True, True], answer.text
