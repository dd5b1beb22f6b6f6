"""``model.tflite`` in a SavedModel version: what ``--prefer_tflite_model`` serves (TF Serving's flag, and ours)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from serve_support import b64, decode_png, encode, photo, request, running_server
from tfstyle import export, litert
from tfstyle.transformer import build_transformer

pytestmark = pytest.mark.slow  # subprocesses, conversions or servers: the quick tier skips them


def graded_network(width=0.25, blocks=1):
    keras.utils.set_random_seed(11)
    net = build_transformer(width=width, residual_blocks=blocks)
    kernel, bias = net.get_layer("out_conv").get_weights()  # graded outputs, not a saturated tanh
    net.get_layer("out_conv").set_weights([kernel * 0.05, bias])
    return net


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("saved_models"))
    export.export_savedmodel(graded_network(), out, "mosaic", with_tflite=True)
    return out


def test_model_tflite_has_the_savedmodels_serving_default(base):
    version = os.path.join(base, "mosaic", "1")
    interpreter = litert.interpreter(model_path=os.path.join(version, export.SERVING_TFLITE))
    assert interpreter.get_signature_list() == {"serving_default": {"inputs": ["images"], "outputs": ["stylized"]}}
    runner = interpreter.get_signature_runner("serving_default")
    reference = tf.saved_model.load(version).signatures["serving_default"]
    for h, w in ((48, 64), (37, 29)):  # any size, as the SavedModel
        images = np.stack([photo(w, h, seed=1), photo(w, h, seed=2)])
        ours = runner(images=images)["stylized"]
        theirs = reference(images=tf.constant(images))["stylized"].numpy()
        assert ours.dtype == np.uint8 and ours.shape == images.shape
        assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 2  # float16 weights


def test_a_multi_style_export_has_no_model_tflite(tmp_path):
    path = export.export_savedmodel(build_transformer(width=0.25, residual_blocks=0, num_styles=2), str(tmp_path),
                                    "pair", with_tflite=True)
    assert os.path.isdir(path) and not os.path.exists(os.path.join(path, export.SERVING_TFLITE))


@pytest.fixture(scope="module")
def port(base, tmp_path_factory):
    log = str(tmp_path_factory.mktemp("logs") / "serve.log")
    with running_server(base, log, "--prefer_tflite_model") as p:
        yield p


def test_prefer_tflite_model_serves_both_signatures_from_model_tflite(port, base):
    image = photo(40, 32, seed=3)
    status, pixels = request(port, "POST", "/v1/models/mosaic:predict", {"instances": [image.tolist()]})
    assert status == 200, pixels
    runner = litert.interpreter(model_path=os.path.join(base, "mosaic", "1", export.SERVING_TFLITE)) \
        .get_signature_runner("serving_default")
    expected = runner(images=image[None])["stylized"][0]
    np.testing.assert_array_equal(np.array(pixels["predictions"][0], np.uint8), expected)
    status, encoded = request(port, "POST", "/v1/models/mosaic:predict",
                              {"signature_name": "stylize_bytes", "instances": [b64(encode(image))]})
    assert status == 200, encoded
    np.testing.assert_array_equal(decode_png(encoded["predictions"][0]), expected)


def test_prefer_tflite_model_metadata_and_bad_bytes(port):
    status, metadata = request(port, "GET", "/v1/models/mosaic/metadata")
    assert status == 200
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert signatures["serving_default"]["inputs"]["images"]["dtype"] == "DT_UINT8"
    assert signatures["stylize_bytes"]["outputs"]["stylized_bytes"]["dtype"] == "DT_STRING"
    status, body = request(port, "POST", "/v1/models/mosaic:predict",
                           {"signature_name": "stylize_bytes", "instances": [b64(b"not an image")]})
    assert status == 400 and "image_bytes[0]" in body["error"]
    assert request(port, "GET", "/v1/models/mosaic")[0] == 200  # the server lives
