"""components/model/distribution.py: which strategy run_fn trains under, who keeps what it writes (no TensorFlow
needed)."""

import json

import pytest

from components.model import distribution as d

CLUSTER = {"chief": ["h:1"], "worker": ["h:2", "h:3"]}


def config(task_type="worker", index=0, cluster=CLUSTER):
    return {"cluster": cluster, "task": {"type": task_type, "index": index}}


@pytest.mark.parametrize("setting, tf_config, gpus, expected", [
    ("auto", {}, 0, "default"),
    ("auto", {}, 1, "default"),
    ("auto", {}, 2, "mirrored"),
    ("auto", config(), 0, "multi_worker"),
    ("auto", config(cluster={"worker": ["h:1"]}), 0, "default"),  # a cluster of one task: nothing to synchronise
    ("auto", config(cluster={"worker": ["h:1"]}), 4, "mirrored"),
    ("default", config(), 2, "default"),
    ("mirrored", {}, 0, "mirrored"),
    ("multi_worker", config(cluster={"worker": ["h:1"]}), 0, "multi_worker"),
])
def test_choice(setting, tf_config, gpus, expected):
    assert d.choose(setting, tf_config, gpus) == expected


def test_choice_errors():
    with pytest.raises(d.DistributionError, match="needs TF_CONFIG"):
        d.choose("multi_worker", {}, 0)
    with pytest.raises(d.DistributionError, match="'evaluator' task"):
        d.choose("auto", config("evaluator", cluster={**CLUSTER, "evaluator": ["h:9"]}), 0)
    with pytest.raises(d.DistributionError, match="unknown distribution 'ps'"):
        d.choose("ps", {}, 0)


@pytest.mark.parametrize("text, fragment", [
    ("[1, 2]", "must be a JSON object"),
    ("{bad", "not valid JSON"),
    ('{"cluster": {"worker": "h:1"}}', "lists of host:port"),
    (json.dumps(config(cluster={"ps": ["h:1"], "worker": ["h:2"]})), "parameter-server training is not supported"),
    (json.dumps(config("worker", 5)), "worker:5 is not in its cluster"),
    (json.dumps({"cluster": CLUSTER, "task": {"type": "boss"}}), "must name this process's type"),
])
def test_bad_tf_config(text, fragment):
    with pytest.raises(d.DistributionError, match=fragment):
        d.read_tf_config({"TF_CONFIG": text})


def test_tf_config_read_and_sized():
    assert d.read_tf_config({}) == {} and d.read_tf_config({"TF_CONFIG": "  "}) == {}
    assert d.cluster_size(d.read_tf_config({"TF_CONFIG": json.dumps(config())})) == 3
    assert d.cluster_size({}) == 0


@pytest.mark.parametrize("tf_config, chief, name", [
    ({}, True, ""),
    (config("chief"), True, "chief:0"),
    (config("worker", 0), False, "worker:0"),  # there is a chief
    (config("worker", 0, {"worker": ["h:1", "h:2"]}), True, "worker:0"),  # no chief: worker 0 is
    (config("worker", 1, {"worker": ["h:1", "h:2"]}), False, "worker:1"),
    (config("master", 0, {"master": ["h:1"], "worker": ["h:2"]}), True, "master:0"),
])
def test_who_keeps_what_it_writes(tf_config, chief, name):
    assert d.is_chief(tf_config) is chief
    assert d.task_name(tf_config) == name


def test_write_location(tmp_path, monkeypatch):
    target = str(tmp_path / "model" / "Format-Serving")
    with d.write_location(target, chief=True) as where:
        assert where == target
    monkeypatch.setenv("TMPDIR", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    with d.write_location(target, chief=False) as where:
        assert where.startswith(str(tmp_path / "scratch")) and where.endswith("Format-Serving")
        (tmp_path / "scratch").joinpath("marker").write_text("x")
        open(where + ".txt", "w").close()
    assert sorted(p.name for p in (tmp_path / "scratch").iterdir()) == ["marker"]  # its own folder is gone
    assert not (tmp_path / "model").exists()


def test_a_localhost_cluster_is_one_chief_and_workers_on_distinct_free_ports():
    configs = [json.loads(c) for c in d.localhost_cluster(3)]
    assert [d.task_name(c) for c in configs] == ["chief:0", "worker:0", "worker:1"]
    assert [d.is_chief(c) for c in configs] == [True, False, False]
    for c in configs:
        assert d.read_tf_config({"TF_CONFIG": json.dumps(c)}) == c and d.cluster_size(c) == 3
    addresses = configs[0]["cluster"]["chief"] + configs[0]["cluster"]["worker"]
    assert len(set(addresses)) == 3 and all(a.startswith("127.0.0.1:") for a in addresses)
