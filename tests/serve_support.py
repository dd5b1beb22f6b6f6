"""Helpers for the ``tfstyle serve`` tests: models to serve, a live server, raw HTTP.

Models are freshly initialized transformers (random weights): the tests check the
server's contract, not the quality of a style.
"""

import base64
import contextlib
import http.client
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STYLE_NAMES = ["wave", "mosaic", "udnie"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def export_transformer(out_dir, name, seed, version=None):
    """A random-init transformer exported with tfstyle's exporter as ``<out_dir>/<name>/<version>``."""
    import keras

    from tfstyle import export
    from tfstyle.transformer import build_transformer

    keras.utils.set_random_seed(seed)
    return export.export_savedmodel(build_transformer(), out_dir, name, version=version)


def export_blend(out_dir, name="blend"):
    """A stand-in multi-style SavedModel: ``stylize_bytes`` takes ``image_bytes`` [batch], ``style_weights``
    float32 [3] and ``strength`` float32 []; returns the photo times strength * sum(weights), as PNG.
    It carries ``style_names``."""
    import tensorflow as tf

    class Blend(tf.Module):
        def __init__(self):
            super().__init__()
            self.style_names = tf.Variable(STYLE_NAMES, trainable=False)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes"),
                                      tf.TensorSpec([3], tf.float32, name="style_weights"),
                                      tf.TensorSpec([], tf.float32, name="strength")])
        def serve(self, image_bytes, style_weights, strength):
            def one(data):
                image = tf.cast(tf.io.decode_image(data, channels=3, expand_animations=False), tf.float32)
                out = tf.clip_by_value(tf.round(image * strength * tf.reduce_sum(style_weights)), 0, 255)
                return tf.io.encode_png(tf.cast(out, tf.uint8))

            return {"stylized_bytes": tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec([], tf.string))}

    module = Blend()
    path = os.path.join(out_dir, name, "1")
    tf.saved_model.save(module, path, signatures={"stylize_bytes": module.serve})
    return path


def photo(width=64, height=48, seed=0):
    """A small RGB photo-like uint8 image (smooth gradients plus noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], -1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def encode(array, fmt="PNG", **kwargs):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def b64(data):
    return {"b64": base64.b64encode(data).decode("ascii")}


def decode_png(value):
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(value["b64"]))).convert("RGB"))


@contextlib.contextmanager
def running_server(base, log_path, *flags, timeout=180):
    """Starts ``python -m tfstyle serve`` on a free loopback port; yields its port once every model
    folder in ``base`` is AVAILABLE (models load in the background; files beside them are no models)."""
    port = free_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tfstyle", "serve", f"--model_base_path={base}", f"--port={port}", *flags],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}:\n{open(log_path).read()[-3000:]}")
            try:
                if all(available(port, name) for name in os.listdir(base) if os.path.isdir(os.path.join(base, name))):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not answer within {timeout} s:\n{open(log_path).read()[-3000:]}")
            time.sleep(0.3)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def available(port, model):
    status, body = request(port, "GET", f"/v1/models/{model}")
    return status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"


def request(port, method, path, body=None, headers=None, timeout=120):
    """(status, parsed JSON or raw bytes) of one request; ``path`` is sent exactly as given (no normalization)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        if response.getheader("Content-Type", "").startswith("application/json"):
            data = json.loads(data)
        return response.status, data
    finally:
        conn.close()


def wait_for(predicate, timeout=120, what="condition"):
    """Polls ``predicate`` until it returns a true value (no timing assertion: the timeout only stops a hang)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def copy_version(src, dst):
    """Puts a copy of version folder ``src`` at ``dst`` atomically (hidden temp name, then rename)."""
    tmp = os.path.join(os.path.dirname(dst), ".tmp-copy")
    shutil.copytree(src, tmp)
    os.rename(tmp, dst)


# ----------------------------------------------------------------------------- fakes for the in-process app


class GatedServable:
    """A fake model: ``run`` returns ``{"y": 2 * x}`` once ``gate`` is open (400 for a negative ``x``),
    counting the calls in progress (``running``) and the rows of each call (``rows``)."""

    style_names, signature_defs = [], {}

    def __init__(self, name="slow", version=1):
        from tfstyle.rest_json import InputSpec

        self.name, self.version = name, version
        self.inputs = {"serving_default": {"x": InputSpec("float32", [None])},
                       "stylize_bytes": {"image_bytes": InputSpec("string", [None])}}
        self.gate, self.lock = threading.Event(), threading.Lock()
        self.running, self.rows = 0, []

    def run(self, signature, arrays):
        from tfstyle.rest_json import RequestError

        with self.lock:
            self.running += 1
            self.rows.append(len(next(iter(arrays.values()))))
        try:
            self.gate.wait(60)
            if (arrays["x"] < 0).any():
                raise RequestError(400, "x: negative")
            return {"y": arrays["x"] * 2}
        finally:
            with self.lock:
                self.running -= 1


class OneModelRegistry:
    """The registry interface ``serve.create_app`` uses, serving one fake model."""

    def __init__(self, servable):
        self.servable = servable

    def get(self, name, version=None):
        from tfstyle.rest_json import RequestError

        if name != self.servable.name:
            raise RequestError(404, f"Servable not found for request: Latest({name})")
        return self.servable

    def is_loading(self, name, version=None):
        return False

    def served(self):
        return [self.servable]

    def status(self, name, version=None):
        return {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}}]}


@contextlib.contextmanager
def app_server(app):
    """Runs an ASGI app with uvicorn in a thread on a free loopback port; yields the port."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, what="in-process server")
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)


def metrics(port):
    """{(sample name, sorted label items): value} of ``GET /metrics``, parsed by prometheus-client."""
    from prometheus_client.parser import text_string_to_metric_families

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Content-Type").startswith("text/plain")
        text = response.read().decode()
    finally:
        conn.close()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def export_any_painting(out_dir):
    """The any-painting network's SavedModel (packaged decoders) as ``<out_dir>/any_painting/1``."""
    import tensorflow as tf

    from tfstyle import arbitrary, decoders

    module = arbitrary.AnyPaintingServingModule(decoders.build_encoder("auto"), decoders.load_decoders())
    path = os.path.join(out_dir, arbitrary.SERVING_NAME, "1")
    tf.saved_model.save(module, path, signatures=module.signatures())
    return path


def mosaic_and_blend_server(tmp_path_factory, *flags):
    """``running_server`` over a random-init "mosaic" export, the stand-in "blend"
    (``export_blend``) and the any-painting network: the page and clip tests' server."""
    base = str(tmp_path_factory.mktemp("saved_models"))
    export_transformer(base, "mosaic", seed=1)
    export_blend(base)
    export_any_painting(base)
    return running_server(base, str(tmp_path_factory.mktemp("logs") / "serve.log"), *flags)
