"""``tfstyle serve`` against a live server: TF Serving's REST API, versions, limits, bad input.

The server runs in a subprocess on a free loopback port. Its models are
freshly initialized transformers (random weights) and a stand-in multi-style
model: these tests check the server's contract, not the quality of a style.
"""

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tensorflow as tf

from serve_support import (REPO, STYLE_NAMES, b64, copy_version, decode_png, encode, export_blend,
                           export_transformer, free_port, photo, request, running_server, wait_for)

pytestmark = pytest.mark.slow  # subprocesses, conversions or servers: the quick tier skips them

MAX_BODY_MB = 1
MAX_PIXELS = 1_000_000


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("saved_models"))
    export_transformer(out, "mosaic", seed=1)
    copy_version(os.path.join(out, "mosaic", "1"), os.path.join(out, "vtest", "1"))
    export_blend(out)
    return out


@pytest.fixture(scope="module")
def port(base, tmp_path_factory):
    log = str(tmp_path_factory.mktemp("logs") / "serve.log")
    with running_server(base, log, "--poll_seconds=0.3", f"--max_body_mb={MAX_BODY_MB}", "--body_timeout_seconds=2",
                        f"--max_pixels={MAX_PIXELS}", "--max_concurrent=2") as p:
        yield p


@pytest.fixture(scope="module")
def reference(base):
    """The SavedModel's signatures run in-process, to compare the server's answers with."""
    return tf.saved_model.load(os.path.join(base, "mosaic", "1")).signatures


def predict(port, body, model="mosaic", version=None):
    path = f"/v1/models/{model}" + (f"/versions/{version}" if version else "") + ":predict"
    return request(port, "POST", path, body, {"Content-Type": "application/json"})


def assert_alive(port):
    status, body = request(port, "GET", "/v1/models/mosaic")
    assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"


# ----------------------------------------------------------------------------- status and metadata


def test_model_status_is_tf_servings(port):
    expected = {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert request(port, "GET", "/v1/models/mosaic") == (200, expected)
    assert request(port, "GET", "/v1/models/mosaic/versions/1") == (200, expected)


def test_metadata_has_the_signature_defs(port):
    status, body = request(port, "GET", "/v1/models/mosaic/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "mosaic", "signature_name": "", "version": "1"}
    defs = body["metadata"]["signature_def"]["signature_def"]
    images = defs["serving_default"]["inputs"]["images"]
    assert images["dtype"] == "DT_UINT8"
    assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "-1", "-1", "3"]
    assert defs["serving_default"]["method_name"] == "tensorflow/serving/predict"
    assert defs["stylize_bytes"]["inputs"]["image_bytes"]["dtype"] == "DT_STRING"
    assert list(defs["stylize_bytes"]["outputs"]) == ["stylized_bytes"]
    assert request(port, "GET", "/v1/models/mosaic/versions/1/metadata")[1] == body


def test_page_and_model_list(port):
    status, page = request(port, "GET", "/")
    assert status == 200 and b"<script src=\"/app.js\">" in page
    assert request(port, "GET", "/app.js")[0] == 200
    status, body = request(port, "GET", "/tfstyle/models")
    models = {m["name"]: m for m in body["models"]}
    assert set(models) == {"blend", "mosaic", "vtest"}
    assert models["mosaic"] == {"name": "mosaic", "version": "1", "style_names": []}
    assert models["blend"]["style_names"] == STYLE_NAMES


# ----------------------------------------------------------------------------- predict


def test_predict_row_format_with_b64(port, reference):
    images = [photo(64, 48, seed=0), photo(40, 56, seed=1)]  # a batch of different sizes
    body = {"signature_name": "stylize_bytes", "instances": [b64(encode(im)) for im in images]}
    status, reply = predict(port, body)
    assert status == 200, reply
    assert len(reply["predictions"]) == 2
    for image, prediction in zip(images, reply["predictions"]):
        expected = reference["serving_default"](images=tf.constant(image[None]))["stylized"][0].numpy()
        np.testing.assert_array_equal(decode_png(prediction), expected)


def test_predict_row_format_with_named_inputs(port):
    body = {"signature_name": "stylize_bytes", "instances": [{"image_bytes": b64(encode(photo()))}]}
    status, reply = predict(port, body)
    assert status == 200 and decode_png(reply["predictions"][0]).shape == (48, 64, 3)


def test_predict_pixels_row_and_columnar(port, reference):
    image = photo(32, 24)
    expected = reference["serving_default"](images=tf.constant(image[None]))["stylized"].numpy()
    status, reply = predict(port, {"instances": image[None].tolist()})  # serving_default by default
    assert status == 200 and np.array_equal(reply["predictions"], expected)
    status, reply = predict(port, {"signature_name": "serving_default", "inputs": image[None].tolist()})
    assert status == 200 and np.array_equal(reply["outputs"], expected)
    status, reply = predict(port, {"inputs": {"images": image[None].tolist()}}, version=1)
    assert status == 200 and np.array_equal(reply["outputs"], expected)


def test_predict_columnar_with_extra_inputs(port):
    """The multi-style shape: a [batch] string input next to a [3] vector and a scalar."""
    image = photo(16, 16)
    body = {"signature_name": "stylize_bytes",
            "inputs": {"image_bytes": [b64(encode(image))], "style_weights": [1.0, 0.0, 0.0], "strength": 0.5}}
    status, reply = predict(port, body, model="blend")
    assert status == 200, reply
    np.testing.assert_array_equal(decode_png(reply["outputs"][0]), np.round(image * 0.5).astype(np.uint8))
    status, metadata = request(port, "GET", "/v1/models/blend/metadata")
    inputs = metadata["metadata"]["signature_def"]["signature_def"]["stylize_bytes"]["inputs"]
    assert inputs["style_weights"]["dtype"] == "DT_FLOAT" and inputs["strength"]["tensor_shape"]["dim"] == []


def test_rest_client_example_works_unchanged(port, tmp_path):
    src, out = tmp_path / "photo.jpg", tmp_path / "out.png"
    src.write_bytes(encode(photo(), "JPEG", quality=95))
    url = f"http://127.0.0.1:{port}/v1/models/mosaic:predict"
    run = subprocess.run([sys.executable, "examples/rest_client.py", str(src), str(out), f"--url={url}"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert decode_png(b64(out.read_bytes())).shape == (48, 64, 3)


def test_rest_client_without_server_says_one_line(tmp_path):
    src = tmp_path / "photo.png"
    src.write_bytes(encode(photo()))
    url = f"http://127.0.0.1:{free_port()}/v1/models/mosaic:predict"
    run = subprocess.run([sys.executable, "examples/rest_client.py", str(src), str(tmp_path / "o.png"), f"--url={url}"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [f"error: cannot reach {url} (connection refused); is the server running?"]


# ----------------------------------------------------------------------------- versions


def status_of(port, model):
    status, body = request(port, "GET", f"/v1/models/{model}")
    return {s["version"]: (s["state"], s["status"]["error_code"]) for s in body.get("model_version_status", [])}


def test_new_versions_are_picked_up_and_half_written_ones_ignored(port, base):
    model_dir = os.path.join(base, "vtest")
    # A hidden temporary folder as the exporter leaves while writing: complete, but never loaded.
    shutil.copytree(os.path.join(model_dir, "1"), os.path.join(model_dir, ".tmp-3-abcdef01"))
    path = export_transformer(base, "vtest", seed=2)  # version 2, exported while the server runs
    assert os.path.basename(path) == "2"
    wait_for(lambda: status_of(port, "vtest") == {"2": ("AVAILABLE", "OK"), "1": ("END", "OK")}, what="version 2")
    image = photo(24, 24)
    expected = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(image[None]))["stylized"]
    status, reply = predict(port, {"instances": image[None].tolist()}, model="vtest")
    assert status == 200 and np.array_equal(reply["predictions"], expected.numpy())
    assert predict(port, {"instances": image[None].tolist()}, model="vtest", version=2)[0] == 200
    status, reply = predict(port, {"instances": image[None].tolist()}, model="vtest", version=1)
    assert (status, reply) == (404, {"error": "Servable not found for request: Specific(vtest, 1)"})

    # A numeric folder that does not load: reported, version 2 keeps serving, the server keeps running.
    os.makedirs(os.path.join(model_dir, "4"))
    with open(os.path.join(model_dir, "4", "saved_model.pb"), "wb") as f:
        f.write(b"not a SavedModel")
    wait_for(lambda: status_of(port, "vtest").get("4") == ("END", "UNKNOWN"), what="version 4 failure")
    assert "3" not in status_of(port, "vtest")
    assert status_of(port, "vtest")["2"] == ("AVAILABLE", "OK")
    assert request(port, "GET", "/v1/models/vtest/metadata")[1]["model_spec"]["version"] == "2"
    _, body = request(port, "GET", "/v1/models/vtest/versions/4")
    assert "failed to load" in body["model_version_status"][0]["status"]["error_message"]

    # Rewritten (now complete), version 4 is retried and served.
    os.remove(os.path.join(model_dir, "4", "saved_model.pb"))
    os.rmdir(os.path.join(model_dir, "4"))
    copy_version(os.path.join(model_dir, "2"), os.path.join(model_dir, "4"))
    wait_for(lambda: status_of(port, "vtest").get("4") == ("AVAILABLE", "OK"), what="version 4 retried")
    assert_alive(port)


# ----------------------------------------------------------------------------- bad input


def png_header_claiming(width, height):
    """A PNG whose header claims ``width`` x ``height`` pixels; the data is one tiny zlib stream."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def bytes_request(data):
    return {"signature_name": "stylize_bytes", "instances": [b64(data)]}


PNG = encode(photo())
JPEG = encode(photo(), "JPEG", quality=90)
BAD_IMAGES = {
    "corrupt": (b"\x00garbage, not an image" * 10, "not a readable image"),
    "truncated_png": (PNG[: len(PNG) // 2], ""),
    "truncated_jpeg": (JPEG[: len(JPEG) // 2], ""),
    "zero_bytes": (b"", "empty (0 bytes)"),
    "bomb_100000x100000": (png_header_claiming(100_000, 100_000), "decompression bomb"),
    "over_max_pixels": (png_header_claiming(2000, 1000), f"exceeds --max_pixels={MAX_PIXELS}"),
    "tiff": (encode(photo(), "TIFF"), "TIFF image; the model decodes JPEG, PNG, GIF or BMP"),
    "one_pixel": (encode(photo(1, 1)), "image too small: 1x1, at least 5 px a side"),
    "two_by_two": (encode(photo(2, 2)), "image too small: 2x2, at least 5 px a side"),
    "four_wide": (encode(photo(4, 40)), "image too small: 4x40, at least 5 px a side"),
}


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_images_get_400_naming_the_problem(port, case):
    data, message = BAD_IMAGES[case]
    status, reply = predict(port, bytes_request(data))
    assert status == 400, reply
    assert set(reply) == {"error"} and message in reply["error"] and "Traceback" not in reply["error"]
    assert reply["error"].startswith("image_bytes")
    assert_alive(port)


IMAGE = photo(8, 8)[None].tolist()
BAD_REQUESTS = {
    "not_json": (b"{not json", "JSON Parse error"),
    "not_utf8": (b"\xff\xfe{}", "JSON Parse error"),
    "json_array": ([1, 2, 3], "expected an object"),
    "nested_too_deep": (b"[" * 100_000, "JSON Parse error"),
    "no_instances": ({"signature_name": "serving_default"}, "Missing 'inputs' or 'instances' key"),
    "both_formats": ({"instances": IMAGE, "inputs": IMAGE}, "Not both"),
    "empty_instances": ({"instances": []}, "non-empty list"),
    "unknown_signature": ({"signature_name": "nope", "instances": IMAGE}, 'signature name: "nope" not found'),
    "signature_not_string": ({"signature_name": 3, "instances": IMAGE}, "must be a string"),
    "bad_base64": ({"signature_name": "stylize_bytes", "instances": [{"b64": "@@not base64"}]}, "not valid base64"),
    "number_for_bytes": ({"signature_name": "stylize_bytes", "instances": [5]}, "expected a string"),
    "fractional_uint8": ({"instances": (np.array(IMAGE) + 0.5).tolist()}, "expected uint8 integers"),
    "out_of_range_uint8": ({"instances": (np.array(IMAGE) + 300).tolist()}, "[0, 255]"),
    "strings_for_uint8": ({"instances": [[[["a", "b", "c"]]]]}, "expected uint8 numbers"),
    "four_channels": ({"instances": np.zeros((1, 8, 8, 4), int).tolist()}, "shape [1, 8, 8, 4]"),
    "rank_3": ({"inputs": np.zeros((8, 8, 3), int).tolist()}, "shape [8, 8, 3]"),
    "ragged": ({"instances": [[[[1, 2, 3]], [[1, 2]]]]}, "ragged"),
    "unknown_input": ({"inputs": {"pixels": IMAGE, "images": IMAGE}}, "unknown input 'pixels'"),
    "missing_input": ({"instances": [{"pixels": IMAGE[0]}]}, "missing input 'images'"),
    "too_many_pixels": ({"inputs": np.zeros((1, 1001, 1000, 3), np.uint8).tolist()}, "exceed"),  # ~ 6 MB > 1 MB
    "too_small_pixels": ({"instances": photo(2, 2)[None].tolist()}, "image too small: 2x2, at least 5 px a side"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_get_400_naming_the_problem(port, case):
    body, message = BAD_REQUESTS[case]
    status, reply = predict(port, body)
    if case == "too_many_pixels":
        assert status == 413, reply  # the body limit comes first
    else:
        assert status == 400, reply
        assert set(reply) == {"error"} and message in reply["error"], reply
    assert_alive(port)


@pytest.mark.parametrize("path", [
    "/v1/models/..", "/v1/models/../versions/1", "/v1/models/..%2F..%2Fetc%2Fpasswd", "/v1/models/%2Fetc%2Fpasswd",
    "/v1/models//etc/passwd", "/v1/models/mosaic%2F..%2F..%2Fvtest", "/v1/models/%2e%2e/metadata",
    "/v1/models/..%5C..%5Cwindows", "/v1/models/.tmp-3-abcdef01", "/v1/models/nope", "/v1/models/mosaic/versions/7",
    "/v1/models/mosaic/versions/7/metadata", "/v1/models/mosaic/versions/abc", "/v1/models/MOSAIC",
])
def test_unknown_or_traversing_model_names_are_refused(port, path):
    status, reply = request(port, "GET", path)
    assert status in (400, 404) and set(reply) == {"error"}, (status, reply)
    status, reply = predict(port, bytes_request(PNG), model=path[len("/v1/models/"):])
    assert status in (400, 404) and set(reply) == {"error"}, (status, reply)
    assert_alive(port)


def test_unknown_model_and_version_are_404_worded_as_tf_serving(port):
    assert request(port, "GET", "/v1/models/nope") == (404, {"error": "Could not find any versions of model nope"})
    assert request(port, "GET", "/v1/models/mosaic/versions/7") == (
        404, {"error": "Could not find version 7 of model mosaic"})
    assert predict(port, bytes_request(PNG), model="nope") == (
        404, {"error": "Servable not found for request: Latest(nope)"})
    assert request(port, "GET", "/nope")[0] == 404


def read_reply(sock):
    """(status, JSON body) of one HTTP reply read from a raw socket (Content-Length framed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a reply: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = int(next(ln.split(":", 1)[1] for ln in lines if ln.lower().startswith("content-length:")))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-reply"
        body += chunk
    return int(lines[0].split()[1]), json.loads(body[:length])


def raw_exchange(port, head, parts=()):
    """Sends raw bytes (head, then each part) and returns the reply's status and JSON body."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(head)
        try:
            for part in parts:
                s.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the whole body is sent
        return read_reply(s)


def test_oversized_bodies_are_refused_with_413(port):
    big = MAX_BODY_MB * (1 << 20) + 1
    head = (f"POST /v1/models/mosaic:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {big}\r\nConnection: close\r\n\r\n").encode()
    status, reply = raw_exchange(port, head)  # refused from the header, before any body byte
    assert status == 413 and "max_body_mb" in reply["error"]
    chunked = (b"POST /v1/models/mosaic:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    piece = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    status, reply = raw_exchange(port, chunked, [piece] * (MAX_BODY_MB * 16 + 2) + [b"0\r\n\r\n"])
    assert status == 413 and "max_body_mb" in reply["error"]
    assert_alive(port)


def test_a_stalled_client_gets_408_and_does_not_block_others(port):
    head = (b"POST /v1/models/mosaic:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=60) as slow:
        slow.sendall(head + b'{"instances": [')  # ... and nothing more
        assert_alive(port)  # answered while the slow body is pending
        status, reply = read_reply(slow)
    assert status == 408 and "body_timeout_seconds" in reply["error"]
    assert_alive(port)


# ----------------------------------------------------------------------------- load script


def test_load_bench_quick():
    run = subprocess.run([sys.executable, "bench/serve_load.py", "--quick"], cwd=REPO, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert run.returncode == 0, run.stderr[-3000:]
    (line,) = [json.loads(text) for text in run.stdout.splitlines()]
    assert line["ok"] == 4 and line["errors"] == 0 and line["size"] == "64x43" and line["cpu"]
    assert line["p50_ms"] > 0 and line["p99_ms"] >= line["p50_ms"] and line["server_peak_rss_mb"] > 0
    assert line["inprocess_rps"] > 0 and line["shortfall_pct"] is not None
