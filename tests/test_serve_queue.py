"""``tfstyle serve`` under a burst: the bounded queue, its deadline, batching, ``/metrics``, models loading.

The app runs in-process (uvicorn in a thread) with fake models that wait for a gate, so a test
decides when predictions finish; nothing here measures time.
"""

import os
import threading

import pytest

from conftest import run_tfstyle
from serve_support import (GatedServable, OneModelRegistry, app_server, b64, encode, metrics, photo, request,
                           wait_for)
from tfstyle import serve
from tfstyle.predict_queue import Batching
from tfstyle.servables import ModelRegistry


def predict(port, body, model="slow"):
    return request(port, "POST", f"/v1/models/{model}:predict", body, {"Content-Type": "application/json"})


def predict_with_headers(port, body, model="slow"):
    """(status, JSON body, Retry-After header) of one predict."""
    import http.client
    import json

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("POST", f"/v1/models/{model}:predict", json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read()), response.getheader("Retry-After")
    finally:
        conn.close()


def in_threads(calls):
    """Starts each ``call()`` in a thread; returns (threads, results by index)."""
    results = {}
    threads = [threading.Thread(target=lambda i=i, c=c: results.update({i: c()})) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    return threads, results


def join(threads):
    for t in threads:
        t.join(120)
        assert not t.is_alive()


def gauge(port, name):
    return metrics(port).get((name, ()))


def test_n_run_m_wait_none_refused_then_429_with_retry_after():
    running, queued = 2, 3
    servable = GatedServable()
    app = serve.create_app(OneModelRegistry(servable), serve.Limits(max_concurrent=running, max_queued=queued))
    with app_server(app) as port:
        threads, results = in_threads([lambda i=i: predict(port, {"instances": [float(i)]})
                                       for i in range(running + queued)])
        wait_for(lambda: servable.running == running and gauge(port, "tfstyle_queue_depth") == queued,
                 what=f"{running} running and {queued} waiting")
        assert gauge(port, "tfstyle_predictions_admitted") == running + queued
        assert request(port, "GET", "/v1/models/slow")[0] == 200  # the event loop is free meanwhile

        status, reply, retry_after = predict_with_headers(port, {"instances": [9.0]})  # one past the bound
        assert status == 429 and "--max_queued=3" in reply["error"], reply
        assert retry_after is not None and int(retry_after) >= 1
        assert not results  # the queued ones are still waiting, not refused

        servable.gate.set()
        join(threads)
        assert results == {i: (200, {"predictions": [2.0 * i]}) for i in range(running + queued)}
        assert servable.rows == [1] * (running + queued)  # without batching: one request per call
        counts = metrics(port)
        assert counts[("tfstyle_predict_requests_total", (("code", "200"), ("model", "slow")))] == running + queued
        assert counts[("tfstyle_predict_requests_total", (("code", "429"), ("model", "slow")))] == 1
        assert counts[("tfstyle_predict_latency_seconds_count", (("model", "slow"),))] == running + queued + 1
        assert counts[("tfstyle_queue_wait_seconds_count", ())] == running + queued
        assert counts[("tfstyle_queue_depth", ())] == 0


def test_past_the_deadline_503_with_retry_after_and_the_worker_is_not_lost():
    servable = GatedServable()
    limits = serve.Limits(max_concurrent=1, max_queued=4, queue_timeout_seconds=0.3)
    with app_server(serve.create_app(OneModelRegistry(servable), limits)) as port:
        threads, results = in_threads([lambda: predict(port, {"instances": [1.0]})])
        wait_for(lambda: servable.running == 1, what="the worker busy")
        status, reply, retry_after = predict_with_headers(port, {"instances": [2.0]})
        assert status == 503 and "deadline passed" in reply["error"] and "queue_timeout_seconds=0.3" in reply["error"]
        assert retry_after is not None and int(retry_after) >= 1
        servable.gate.set()
        join(threads)
        assert results == {0: (200, {"predictions": [2.0]})}
        assert predict(port, {"instances": [3.0]}) == (200, {"predictions": [6.0]})  # the expired one never ran
        assert servable.rows == [1, 1]
        counts = metrics(port)
        assert counts[("tfstyle_predict_requests_total", (("code", "503"), ("model", "slow")))] == 1


def test_batching_joins_waiting_same_shape_requests_and_a_bad_one_fails_alone():
    servable = GatedServable()
    limits = serve.Limits(max_concurrent=1, max_queued=8, batching=Batching(max_batch_size=4))
    with app_server(serve.create_app(OneModelRegistry(servable), limits)) as port:
        first, first_result = in_threads([lambda: predict(port, {"instances": [1.0]})])
        wait_for(lambda: servable.running == 1, what="the worker busy")
        bodies = [{"instances": [2.0]}, {"instances": [-1.0]}, {"inputs": [3.0, 4.0]}, {"instances": [5.0]}]
        threads, results = [], {}
        for i, body in enumerate(bodies):  # one after the other: the queue's order is the list's
            thread = threading.Thread(target=lambda i=i, body=body: results.update({i: predict(port, body)}))
            thread.start()
            threads.append(thread)
            wait_for(lambda: gauge(port, "tfstyle_queue_depth") == i + 1, what=f"{i + 1} waiting")
        servable.gate.set()
        join(first + threads)
        assert first_result == {0: (200, {"predictions": [2.0]})}
        assert results[0] == (200, {"predictions": [4.0]})
        assert results[1][0] == 400 and "negative" in results[1][1]["error"]
        assert results[2] == (200, {"outputs": [6.0, 8.0]})
        assert results[3] == (200, {"predictions": [10.0]})
        # The first alone; then 1 + 1 + 2 rows as one call (max 4), which fails on -1 and runs each alone;
        # then the last.
        assert servable.rows == [1, 4, 1, 1, 2, 1]
        counts = metrics(port)
        assert counts[("tfstyle_batch_rows_count", ())] == 3  # model calls started by the queue
        assert counts[("tfstyle_batch_rows_sum", ())] == 6


def test_tiny_images_get_400_saying_too_small():
    app = serve.create_app(OneModelRegistry(GatedServable()))
    with app_server(app) as port:
        for width, height in ((1, 1), (2, 2), (4, 30)):
            body = {"signature_name": "stylize_bytes", "instances": [b64(encode(photo(width, height)))]}
            status, reply = predict(port, body)
            assert status == 400, reply
            assert reply["error"] == f"image_bytes[0]: image too small: {width}x{height}, at least 5 px a side"


class GatedLoader:
    """A ``ModelRegistry`` loader that returns a ``GatedServable`` (gate open) once ``release`` is set."""

    def __init__(self):
        self.release, self.started = threading.Event(), threading.Event()

    def __call__(self, name, version, path):
        self.started.set()
        assert self.release.wait(60)
        servable = GatedServable(name, version)
        servable.gate.set()
        return servable


def test_status_answers_while_a_model_loads_and_a_predict_waits_for_it(tmp_path):
    os.makedirs(tmp_path / "slow" / "1")
    loader = GatedLoader()
    registry = ModelRegistry(str(tmp_path), loader=loader)
    registry.poll()
    with app_server(serve.create_app(registry)) as port:
        assert loader.started.wait(60)
        assert request(port, "GET", "/v1/models/slow") == (200, {"model_version_status": [
            {"version": "1", "state": "LOADING", "status": {"error_code": "OK", "error_message": ""}}]})
        threads, results = in_threads([lambda: predict(port, {"instances": [1.5]})])
        wait_for(lambda: gauge(port, "tfstyle_predictions_admitted") == 1, what="the predict admitted")
        assert not results  # waiting for the model, not refused
        assert predict(port, {"instances": [1.0]}, model="nope")[0] == 404  # unknown models still fail at once
        loader.release.set()
        join(threads)
        assert results == {0: (200, {"predictions": [3.0]})}
        assert request(port, "GET", "/v1/models/slow")[1]["model_version_status"][0]["state"] == "AVAILABLE"


def test_a_model_that_never_loads_in_time_gets_503(tmp_path):
    os.makedirs(tmp_path / "slow" / "1")
    loader = GatedLoader()
    registry = ModelRegistry(str(tmp_path), loader=loader)
    registry.poll()
    try:
        with app_server(serve.create_app(registry, serve.Limits(queue_timeout_seconds=0.3))) as port:
            status, reply, retry_after = predict_with_headers(port, {"instances": [1.0]})
            assert status == 503 and "model slow still loading" in reply["error"] and retry_after
    finally:
        loader.release.set()


@pytest.mark.parametrize("flag", ["--queue_timeout_seconds=0", "--max_queued=-1", "--max_batch_size=0"])
def test_bad_queue_flags_are_usage_errors(flag):
    result = run_tfstyle("serve", flag)
    assert result.returncode != 0 and "must be" in result.stderr and "Traceback" not in result.stderr
