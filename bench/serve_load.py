"""Load test of ``tfstyle serve``: bursts of clients over loopback, against the same model in-process.

    python bench/serve_load.py                                   # random-init model, own server
    python bench/serve_load.py --model_base_path=saved_models --model=mosaic_slim,mosaic --clients=1,8,32 \\
        --requests=200 > bench/results/serve_load_zen4.jsonl
    python bench/serve_load.py --url=http://127.0.0.1:8501 --model=mosaic   # a server already running
    python bench/serve_load.py --quick                           # a tiny run (used by the tests)

For each model and each ``--clients`` count, a fresh server of every model in ``--model_base_path``
(default flags plus ``--server_flags``; the run starts once all are AVAILABLE) gets ``--requests``
predict requests from that many client threads, each a ``--size`` photo (PNG, base64 JSON) to the
``stylize_bytes`` signature, bounded by ``--max_seconds``. Just before and just after each server
run, the same photos go through the SavedModel's ``stylize_bytes`` in this process, as many times,
from ``--inprocess_threads`` threads (the server's ``--max_concurrent`` default: it runs that many
model calls at once); the mean of the two is the reference, and a change in the machine's load
during the run shows as their spread. Prints one JSON line per model and client count: throughput,
p50 / p99 latency, errors by HTTP status, the server's peak RSS (VmHWM, when this script started
it), the in-process figures and the server's shortfall in % (1 - server over in-process
throughput). Only loopback URLs are accepted. Without ``--model_base_path`` the model is a freshly
initialized transformer: speed does not depend on the weights.
"""

import argparse
import base64
import collections
import http.client
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

import numpy as np  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PHOTOS = os.path.join(REPO, "..", "shared", "data", "content", "eval")
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def photos(directory, width, height, count):
    """``count`` PNG files of photos resized to ``width`` x ``height`` (random pixels without photos)."""
    import io

    from PIL import Image

    from tfstyle.images import list_images, load_image

    paths = list_images(directory)[:count] if os.path.isdir(directory) else []
    arrays = [np.asarray(Image.fromarray(load_image(p)).resize((width, height), Image.LANCZOS)) for p in paths]
    rng = np.random.default_rng(0)
    while len(arrays) < count:
        arrays.append(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    files = []
    for array in arrays:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        files.append(buffer.getvalue())
    return files


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(base, server_flags, log):
    """A server of every model under ``base``."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tfstyle", "serve", f"--model_base_path={base}", f"--port={port}",
                             *server_flags], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO})
    return proc, f"http://127.0.0.1:{port}"


def wait_ready(url, models, proc, timeout=600):
    """Seconds until every one of ``models`` is AVAILABLE on the server at ``url`` (models load in the
    background: the run must not share the CPU with loads)."""
    start = time.monotonic()
    while time.monotonic() < start + timeout:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"error: the server exited with status {proc.returncode}")
        try:
            replies = [post_or_get(url, "GET", f"/v1/models/{model}") for model in models]
            if all(status == 200 and json.loads(body)["model_version_status"][0]["state"] == "AVAILABLE"
                   for status, body in replies):
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"error: {url} did not serve {', '.join(models)} within {timeout} s")


def post_or_get(url, method, path, body=None, conn=None):
    parts = urllib.parse.urlsplit(url)
    own = conn is None
    conn = conn or http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        if own:
            conn.close()


def rss_mb(pid, field="VmHWM"):
    """The process's peak (VmHWM) or current (VmRSS) resident memory in MB, from /proc."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None


def percentile(values, q):
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


def run_clients(clients, files, total, max_seconds, call):
    """Runs ``call(conn_state, data)`` from ``clients`` threads; returns (latencies, errors, wall seconds)."""
    latencies, errors, lock = [], [], threading.Lock()
    counter = iter(range(total))
    deadline = time.monotonic() + max_seconds

    def worker():
        state = {}
        while time.monotonic() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            start = time.perf_counter()
            try:
                error = call(state, files[i % len(files)])
            except Exception as e:  # a dropped connection counts as an error, the run goes on
                error, state = f"{type(e).__name__}: {e}", {}
            elapsed = time.perf_counter() - start
            with lock:
                (errors.append(error) if error else latencies.append(elapsed))

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - start


def load_server(url, model, clients, files, requests, max_seconds):
    """Latencies, errors and wall time of ``requests`` predicts from ``clients`` threads."""
    path = f"/v1/models/{model}:predict"
    bodies = {f: json.dumps({"signature_name": "stylize_bytes",
                             "instances": [{"b64": base64.b64encode(f).decode("ascii")}]}).encode() for f in files}
    parts = urllib.parse.urlsplit(url)

    def call(state, data):
        if "conn" not in state:
            state["conn"] = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
        status, body = post_or_get(url, "POST", path, bodies[data], conn=state["conn"])
        return None if status == 200 and b'"predictions"' in body else f"HTTP {status}: {body[:120]!r}"

    post_or_get(url, "POST", path, bodies[files[0]])  # warm-up (first call traces the function)
    return run_clients(clients, files, requests, max_seconds, call)


def load_inprocess(signature, files, requests, threads, max_seconds):
    """(runs per second, p50 ms) of a SavedModel's ``stylize_bytes`` from ``threads`` threads here."""
    import tensorflow as tf

    def call(state, data):
        signature(image_bytes=tf.constant([data]))["stylized_bytes"].numpy()

    call({}, files[0])  # warm-up
    latencies, _, wall = run_clients(threads, files, requests, max_seconds, call)
    return len(latencies) / wall, percentile(latencies, 50)


def error_counts(errors):
    """{"HTTP 429": 3, ...}: errors by their first word pair."""
    return dict(collections.Counter(" ".join(e.split()[:2]).rstrip(":") for e in errors))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="", help="a running server (loopback only); empty: start one per run")
    parser.add_argument("--model_base_path", default="", help="models for the servers started here; empty: a "
                        "random-init transformer exported to a temporary folder")
    parser.add_argument("--model", default="mosaic", help="model names, comma-separated")
    parser.add_argument("--clients", default="4", help="concurrent client counts, comma-separated")
    parser.add_argument("--requests", type=int, default=40, help="requests per run (and in-process runs)")
    parser.add_argument("--max_seconds", type=float, default=600, help="stop sending after this long")
    parser.add_argument("--size", default="256x171", help="photo WIDTHxHEIGHT in pixels")
    parser.add_argument("--photos_dir", default=DEFAULT_PHOTOS)
    parser.add_argument("--server_flags", default="", help="more `tfstyle serve` flags, e.g. '--enable_batching'")
    parser.add_argument("--inprocess_threads", type=int, default=2, help="threads of the in-process reference "
                        "(the server's --max_concurrent default)")
    parser.add_argument("--quick", action="store_true", help="2 clients, 4 requests of 64x43 photos")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.requests, args.size = "2", 4, "64x43"
    if args.url and urllib.parse.urlsplit(args.url).hostname not in LOOPBACK:
        raise SystemExit(f"error: {args.url}: this load test only talks to loopback addresses")
    width, height = (int(n) for n in args.size.lower().split("x"))
    models, client_counts = args.model.split(","), [int(n) for n in args.clients.split(",")]
    server_flags = shlex.split(args.server_flags)

    files = photos(args.photos_dir, width, height, min(args.requests, 8))
    tmp = tempfile.TemporaryDirectory(prefix="serve_load_")
    base, weights = args.model_base_path, "given"
    if not args.url and not base:
        import keras

        from tfstyle import export
        from tfstyle.transformer import build_transformer

        keras.utils.set_random_seed(0)
        base, weights = tmp.name, "random init"
        for model in models:
            export.export_savedmodel(build_transformer(), base, model)

    import tensorflow as tf

    for model in models:
        signature = None
        if base:
            versions = [v for v in os.listdir(os.path.join(base, model)) if v.isdigit()]
            model_dir = os.path.join(base, model, max(versions, key=int))  # the version the server serves
            signature = tf.saved_model.load(model_dir).signatures["stylize_bytes"]
        for clients in client_counts:
            local, threads = [], args.inprocess_threads
            if signature is not None:
                local.append(load_inprocess(signature, files, args.requests, threads, args.max_seconds))
            proc, url = None, args.url.rstrip("/")
            log = open(os.path.join(tmp.name, f"serve_{model}_{clients}.log"), "w")
            if not args.url:
                proc, url = start_server(base, server_flags, log)
            try:
                served = sorted(n for n in os.listdir(base) if os.path.isdir(os.path.join(base, n))) if proc else [model]
                ready_s = wait_ready(url, served, proc)
                latencies, errors, wall = load_server(url, model, clients, files, args.requests, args.max_seconds)
                peak, rss = (rss_mb(proc.pid), rss_mb(proc.pid, "VmRSS")) if proc else (None, None)
            finally:
                if proc:
                    proc.terminate()
                    proc.wait(30)
                log.close()
            if signature is not None:
                local.append(load_inprocess(signature, files, args.requests, threads, args.max_seconds))
            throughput = len(latencies) / wall if wall else 0
            row = {
                "bench": "serve_load", **common.machine(), "model": model, "size": f"{width}x{height}",
                "clients": clients, "server_flags": args.server_flags, "requests": len(latencies) + len(errors),
                "ok": len(latencies), "errors": len(errors), "errors_by_status": error_counts(errors),
                "first_error": errors[0] if errors else None, "wall_s": round(wall, 2),
                "throughput_rps": round(throughput, 3), "p50_ms": percentile(latencies, 50),
                "p99_ms": percentile(latencies, 99), "server_ready_s": round(ready_s, 1) if proc else None,
                "server_peak_rss_mb": peak, "server_rss_after_mb": rss, "weights": weights, "quick": args.quick,
            }
            if local:
                rps = (local[0][0] + local[1][0]) / 2
                row.update({"inprocess_threads": threads, "inprocess_rps": round(rps, 3),
                            "inprocess_rps_before_after": [round(local[0][0], 3), round(local[1][0], 3)],
                            "inprocess_p50_ms": local[1][1], "shortfall_pct": round((1 - throughput / rps) * 100, 1)})
            common.emit(row)


if __name__ == "__main__":
    main()
