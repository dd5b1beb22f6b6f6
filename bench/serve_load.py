"""Load test of ``tfstyle serve``: throughput and latency over loopback, against the same model in-process.

    python bench/serve_load.py                                   # random-init model, own server
    python bench/serve_load.py --model_base_path=saved_models --model=mosaic
    python bench/serve_load.py --url=http://127.0.0.1:8501 --model=mosaic   # a server already running
    python bench/serve_load.py --quick                           # a tiny run (used by the tests)

``--clients`` threads each send photos (``--size`` px square crops, JPEG) to the
``stylize_bytes`` signature until ``--requests`` requests are done or
``--max_seconds`` pass. Then the same photos go through the SavedModel in this
process with the same number of threads. Prints one JSON line: throughput, p50 /
p99 latency, errors, the server's peak RSS (when this script started it), the
in-process figures and the server's overhead in % (in-process throughput over
server throughput, minus 1). Only loopback URLs are accepted. Without
``--model_base_path`` the model is a freshly initialized transformer: speed does
not depend on the weights.
"""

import argparse
import base64
import http.client
import json
import os
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


def photos(directory, size, count):
    """``count`` JPEG files of ``size`` x ``size`` centre crops (synthetic gradients without photos)."""
    import io

    from PIL import Image

    from tfstyle.images import list_images, load_image

    paths = list_images(directory)[:count] if os.path.isdir(directory) else []
    arrays = []
    for path in paths:
        image = load_image(path)
        scale = size / min(image.shape[:2])
        img = Image.fromarray(image).resize((max(size, round(image.shape[1] * scale)),
                                             max(size, round(image.shape[0] * scale))))
        left, top = (img.width - size) // 2, (img.height - size) // 2
        arrays.append(np.asarray(img.crop((left, top, left + size, top + size))))
    rng = np.random.default_rng(0)
    while len(arrays) < count:
        arrays.append(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    files = []
    for array in arrays:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="JPEG", quality=92)
        files.append(buffer.getvalue())
    return files


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(base, clients, log):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tfstyle", "serve", f"--model_base_path={base}", f"--port={port}",
                             f"--max_concurrent={clients}"], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO})
    return proc, f"http://127.0.0.1:{port}"


def wait_ready(url, model, proc, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"error: the server exited with status {proc.returncode}")
        try:
            if post_or_get(url, "GET", f"/v1/models/{model}")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"error: {url} did not serve model {model} within {timeout} s")


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


def peak_rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="", help="a running server (loopback only); empty: start one")
    parser.add_argument("--model_base_path", default="", help="models for the server started here; empty: a "
                        "random-init transformer exported to a temporary folder")
    parser.add_argument("--model", default="mosaic")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=40, help="total requests (and in-process runs)")
    parser.add_argument("--max_seconds", type=float, default=120, help="stop sending after this long")
    parser.add_argument("--size", type=int, default=512, help="photo side in pixels")
    parser.add_argument("--photos_dir", default=DEFAULT_PHOTOS)
    parser.add_argument("--quick", action="store_true", help="2 clients, 4 requests of 64 px photos")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.requests, args.size, args.max_seconds = 2, 4, 64, 120
    if args.url and urllib.parse.urlsplit(args.url).hostname not in LOOPBACK:
        raise SystemExit(f"error: {args.url}: this load test only talks to loopback addresses")

    import tensorflow as tf

    files = photos(args.photos_dir, args.size, min(args.requests, 8))
    tmp = tempfile.TemporaryDirectory(prefix="serve_load_")
    base, weights = args.model_base_path, "given"
    if not args.url and not base:
        import keras

        from tfstyle import export
        from tfstyle.transformer import build_transformer

        keras.utils.set_random_seed(0)
        base, weights = tmp.name, "random init"
        export.export_savedmodel(build_transformer(), base, args.model)
    proc, url = (None, args.url.rstrip("/"))
    log = open(os.path.join(tmp.name, "serve.log"), "w")
    if not args.url:
        proc, url = start_server(base, args.clients, log)
    try:
        wait_ready(url, args.model, proc)
        path = f"/v1/models/{args.model}:predict"
        bodies = {f: json.dumps({"signature_name": "stylize_bytes",
                                 "instances": [{"b64": base64.b64encode(f).decode("ascii")}]}).encode() for f in files}
        parts = urllib.parse.urlsplit(url)

        def call_server(state, data):
            if "conn" not in state:
                state["conn"] = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
            status, body = post_or_get(url, "POST", path, bodies[data], conn=state["conn"])
            return None if status == 200 and b'"predictions"' in body else f"HTTP {status}: {body[:120]!r}"

        post_or_get(url, "POST", path, bodies[files[0]])  # warm-up (first call traces the function)
        latencies, errors, wall = run_clients(args.clients, files, args.requests, args.max_seconds, call_server)
        rss = peak_rss_mb(proc.pid) if proc else None
        metadata = json.loads(post_or_get(url, "GET", f"/v1/models/{args.model}/metadata")[1])
        version = metadata["model_spec"]["version"]
    finally:
        if proc:
            proc.terminate()
            proc.wait(30)
        log.close()

    local = []
    if base:
        model_dir = os.path.join(base, args.model, version)
        signature = tf.saved_model.load(model_dir).signatures["stylize_bytes"]

        def call_local(state, data):
            signature(image_bytes=tf.constant([data]))["stylized_bytes"].numpy()

        call_local({}, files[0])  # warm-up
        local_latencies, _, local_wall = run_clients(args.clients, files, len(latencies) or 1, args.max_seconds,
                                                     call_local)
        local = [len(local_latencies) / local_wall, percentile(local_latencies, 50)]
    throughput = len(latencies) / wall if wall else 0
    common.emit({
        "bench": "serve_load", **common.machine(), "size": args.size, "clients": args.clients,
        "requests": len(latencies) + len(errors), "ok": len(latencies), "errors": len(errors),
        "first_error": errors[0] if errors else None, "wall_s": round(wall, 2),
        "throughput_rps": round(throughput, 3), "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
        "server_peak_rss_mb": rss, "inprocess_rps": round(local[0], 3) if local else None,
        "inprocess_p50_ms": local[1] if local else None,
        "overhead_pct": round((local[0] / throughput - 1) * 100, 1) if local and throughput else None,
        "weights": weights, "quick": args.quick,
    })


if __name__ == "__main__":
    main()
