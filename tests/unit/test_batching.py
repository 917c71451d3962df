"""The server's batching and REST codec on in-memory inputs (pipeline/serving/batching.py, rest.py)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from pipeline.serving import rest
from pipeline.serving.batching import Batcher


class SlowModel:
    """Doubles its input; each call takes `seconds` and is recorded with its batch size."""

    def __init__(self, seconds=0.05):
        self.seconds, self.batches = seconds, []

    def __call__(self, inputs):
        self.batches.append(len(inputs["x"]))
        time.sleep(self.seconds)
        if (inputs["x"] < 0).any():
            raise ValueError("negative input")
        return {"y": inputs["x"] * 2, "n": np.full(len(inputs["x"]), len(inputs["x"]))}


def _concurrently(batcher, inputs_list):
    results = [None] * len(inputs_list)

    def one(i):
        results[i] = batcher.submit(inputs_list[i]).result(timeout=30)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(inputs_list))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_requests_share_model_calls_and_get_their_own_rows():
    model = SlowModel()
    batcher = Batcher(model, max_batch_size=8, timeout_ms=0)
    inputs = [{"x": np.array([i, 100 + i])} for i in range(12)]  # 12 requests of 2 rows
    results = _concurrently(batcher, inputs)
    for i, out in enumerate(results):
        np.testing.assert_array_equal(out["y"], [2 * i, 2 * (100 + i)])
    assert sum(model.batches) == 24 and len(model.batches) < 12 and max(model.batches) <= 8


def test_a_lone_request_runs_at_once_with_no_timeout_and_waits_with_one():
    model = SlowModel(seconds=0)
    batcher = Batcher(model, max_batch_size=8, timeout_ms=0)
    start = time.time()
    batcher.submit({"x": np.array([1])}).result(timeout=5)
    assert time.time() - start < 0.5
    waiting = Batcher(model, max_batch_size=8, timeout_ms=1000)
    start = time.time()
    waiting.submit({"x": np.array([1])}).result(timeout=5)
    assert time.time() - start >= 0.99


def test_errors_reach_every_request_of_the_batch_and_closing_stops_taking_requests():
    batcher = Batcher(SlowModel(), max_batch_size=8, timeout_ms=100)
    futures = [batcher.submit({"x": np.array([v])}) for v in (1, -1)]
    for future in futures:
        with pytest.raises(ValueError, match="negative input"):
            future.result(timeout=5)
    queued = batcher.submit({"x": np.array([3])})
    batcher.close()
    assert queued.result(timeout=5)["y"].tolist() == [6]  # queued before closing: still answered
    assert batcher.submit({"x": np.array([4])}) is None


def test_requests_of_other_shapes_are_not_merged():
    model = SlowModel()
    batcher = Batcher(model, max_batch_size=16, timeout_ms=50)
    results = _concurrently(batcher, [{"x": np.ones((1, 3))}, {"x": np.ones((1, 4))}])
    assert [r["y"].shape for r in results] == [(1, 3), (1, 4)] and model.batches == [1, 1]


TEXT = {"text": rest.InputSpec("string", (None,))}
TWO = {"a": rest.InputSpec("int64", (None,)), "b": rest.InputSpec("float32", (None, 2))}


def test_row_and_columnar_requests_decode_to_the_same_batches():
    rows = rest.decode_inputs("instances", ["x", {"b64": "eQ=="}], TEXT)
    columns = rest.decode_inputs("inputs", {"text": ["x", "y"]}, TEXT)
    assert rows["text"].tolist() == columns["text"].tolist() == [b"x", b"y"]
    named = rest.decode_inputs("instances", [{"a": 1, "b": [0.5, 1]}, {"a": 2, "b": [1, 2]}], TWO)
    assert named["a"].dtype == np.int64 and named["b"].shape == (2, 2) and named["b"].dtype == np.float32
    with pytest.raises(rest.RestError, match="must be an object naming them"):
        rest.decode_inputs("instances", [1, 2], TWO)
    with pytest.raises(rest.RestError, match="missing named input"):
        rest.decode_inputs("inputs", {"a": [1]}, TWO)
    with pytest.raises(rest.RestError, match="different batch sizes"):
        rest.decode_inputs("inputs", {"a": [1, 2], "b": [[1, 2]]}, TWO)
    with pytest.raises(rest.RestError, match="not of expected type: int64"):
        rest.decode_inputs("inputs", {"a": [1.5], "b": [[1, 2]]}, TWO)
    with pytest.raises(rest.RestError, match="same length"):
        rest.decode_inputs("instances", [{"a": 1, "b": [1, 2]}, {"a": 1, "b": [1]}], TWO)


def test_outputs_encode_like_tf_serving():
    outputs = {"label": np.array([b"fresh", b"\xff"], dtype=object),
               "score_bytes": np.array([b"ab", b"c"], dtype=object),
               "p": np.array([[0.25, 0.75], [1.0, 0.0]], dtype=np.float32)}
    rows = rest.encode_outputs("instances", outputs)["predictions"]
    assert rows[0] == {"label": "fresh", "p": [0.25, 0.75], "score_bytes": {"b64": "YWI="}}
    assert rows[1]["label"] == {"b64": "/w=="}  # not UTF-8: base64, as TF Serving does
    columns = rest.encode_outputs("inputs", {"p": outputs["p"]})
    assert columns == {"outputs": [[0.25, 0.75], [1.0, 0.0]]}
    assert rest.encode_outputs("instances", {"p": outputs["p"]}) == {"predictions": [[0.25, 0.75], [1.0, 0.0]]}
