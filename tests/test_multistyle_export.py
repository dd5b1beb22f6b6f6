"""Multi-style networks at inference: stylize blends and strength, SavedModel and TFLite exports, CLI errors.

The network is freshly initialized with distinct style rows (not trained styles): these
tests check blending, signatures and errors, not artistic quality.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import REPO, TRAIN_DIR
from tfstyle import export, litert, models, multistyle, servables, stylize, tflite
from tfstyle.callbacks import save_weights_atomically
from tfstyle.images import list_images, load_image
from tfstyle.transformer import ConditionalInstanceNormalization, build_transformer

ROWS = ("mosaic", "candy", "photo")


def make_net(rows, seed=5):
    keras.utils.set_random_seed(seed)
    net = build_transformer(num_styles=len(rows))
    net.row_names = tuple(rows)
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if isinstance(layer, ConditionalInstanceNormalization):
            layer.scale.assign(rng.uniform(0.5, 1.5, layer.scale.shape).astype(np.float32))
            layer.offset.assign(rng.normal(0, 0.3, layer.offset.shape).astype(np.float32))
    kernel, bias = net.get_layer("out_conv").get_weights()
    net.get_layer("out_conv").set_weights([kernel * 0.05, bias])  # graded outputs, not a saturated tanh
    return net


@pytest.fixture(scope="module")
def net():
    return make_net(ROWS)


@pytest.fixture(scope="module")
def weights(net, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("runs") / "mosaic-candy-photo" / "transformer.weights.h5")
    save_weights_atomically(net, path)
    return path


@pytest.fixture(scope="module")
def saved(net, tmp_path_factory):
    return export.export_savedmodel(net, str(tmp_path_factory.mktemp("sm")), "mosaic-candy-photo")


def photo(size=40, index=0):
    return load_image(list_images(TRAIN_DIR)[index])[60 : 60 + size, 80 : 80 + size]


def keras_out(net, image, row):
    return net([image[None].astype(np.float32), np.float32([row])]).numpy()[0]


def test_savedmodel_takes_style_weights_and_strength_and_names_its_styles(net, saved):
    loaded = tf.saved_model.load(saved)
    assert servables.read_style_names(loaded) == ["mosaic", "candy"]
    for name in ("serving_default", "stylize_bytes"):
        inputs = loaded.signatures[name].structured_input_signature[1]
        assert inputs["style_weights"].shape.as_list() == [None] and inputs["strength"].shape.rank == 0
    image = photo()
    serve = loaded.signatures["serving_default"]
    out = serve(images=tf.constant(image[None]), style_weights=tf.constant([3.0, 1.0]), strength=tf.constant(0.5))
    # Weights normalized, strength towards the identity row in norm space, plus half the identity row's error.
    expected = keras_out(net, image, [0.375, 0.125, 0.5]) + 0.5 * (image - keras_out(net, image, [0, 0, 1]))
    assert np.abs(out["stylized"].numpy()[0].astype(np.float32) - np.clip(expected, 0, 255)).max() <= 1
    at_zero = serve(images=tf.constant(image[None]), style_weights=tf.constant([3.0, 1.0]), strength=tf.constant(0.0))
    np.testing.assert_array_equal(at_zero["stylized"].numpy()[0], image)  # strength 0: the photo itself
    png = loaded.signatures["stylize_bytes"](image_bytes=tf.constant([tf.io.encode_png(image).numpy()]),
                                             style_weights=tf.constant([0.0, 1.0]), strength=tf.constant(1.0))
    decoded = tf.io.decode_png(png["stylized_bytes"][0]).numpy().astype(np.float32)
    assert np.abs(decoded - keras_out(net, image, [0, 1, 0])).max() <= 1
    rebuilt = models.weights_from_savedmodel(saved)
    assert rebuilt.row_names == ROWS
    np.testing.assert_allclose(keras_out(rebuilt, image, [0, 1, 0]), keras_out(net, image, [0, 1, 0]), atol=1e-3)


@pytest.mark.parametrize("weights,strength,message", [
    ([1.0], 1.0, "style_weights: expected 2 values, one per style (mosaic, candy)"),
    ([-1.0, 2.0], 1.0, "style_weights: negative weight"),
    ([0.0, 0.0], 1.0, "style_weights: all weights are zero"),
    ([float("nan"), 1.0], 1.0, "style_weights: NaN or infinite weight"),
    ([1.0, 0.0], 1.5, "strength: must be between 0"),
])
def test_savedmodel_rejects_bad_style_weights_inside_the_graph(saved, weights, strength, message):
    loaded = tf.saved_model.load(saved)
    image = photo(16)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        loaded.signatures["serving_default"](images=tf.constant(image[None]), style_weights=tf.constant(weights),
                                             strength=tf.constant(strength))
    with pytest.raises(tf.errors.InvalidArgumentError, match=message.split(":")[0]):
        loaded.signatures["stylize_bytes"](image_bytes=tf.constant([tf.io.encode_png(image).numpy()]),
                                           style_weights=tf.constant(weights), strength=tf.constant(strength))


def test_single_style_network_exports_as_before(tmp_path):
    keras.utils.set_random_seed(0)
    path = export.export_savedmodel(build_transformer(), str(tmp_path), "mosaic")
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures["serving_default"].structured_input_signature[1]) == {"images"}
    assert set(loaded.signatures["stylize_bytes"].structured_input_signature[1]) == {"image_bytes"}
    assert servables.read_style_names(loaded) == []


def test_strength_without_an_identity_style_is_a_pixel_fade(tmp_path):
    net = make_net(("mosaic", "candy"))
    image = photo()
    stylizer = stylize.KerasStylizer(net)
    stylizer.set_blend("candy", strength=0.25)
    out = stylize.stylize_image(stylizer, image, tile_size=0).astype(np.float32)
    expected = 0.25 * keras_out(net, image, [0, 1]) + 0.75 * image
    assert np.abs(out - expected).max() <= 1
    stylizer.set_blend("candy", strength=0.0)
    assert np.abs(stylize.stylize_image(stylizer, image, tile_size=0).astype(np.int16) - image).max() <= 1
    loaded = tf.saved_model.load(export.export_savedmodel(net, str(tmp_path), "two"))
    served = loaded.signatures["serving_default"](images=tf.constant(image[None]), style_weights=tf.constant([0., 1.]),
                                                  strength=tf.constant(0.25))["stylized"].numpy()[0]
    assert np.abs(served.astype(np.float32) - expected).max() <= 1


def test_stylize_blends_in_norm_space_tiles_and_draws_a_contact_sheet(net, weights, tmp_path):
    image = photo(96)
    stylizer = stylize.KerasStylizer(net)
    stylizer.set_blend("mosaic:0.7,candy:0.3", strength=0.8)
    np.testing.assert_allclose(stylizer.row, [0.56, 0.24, 0.2], atol=1e-6)
    whole = stylize.stylize_image(stylizer, image, tile_size=0).astype(np.float32)
    expected = keras_out(net, image, [0.56, 0.24, 0.2]) + 0.2 * (image - keras_out(net, image, [0, 0, 1]))
    assert np.abs(whole - np.clip(expected, 0, 255)).max() <= 1
    tiled = stylize.stylize_image(stylizer, image, tile_size=64, tile_overlap=32, stats_size=96).astype(np.float32)
    assert np.abs(tiled - whole).mean() < 1.0  # tiles use the whole photo's statistics, with this blend

    src = tmp_path / "photo.png"
    Image.fromarray(photo(48)).save(src)
    assert stylize.run([str(src), str(tmp_path / "sheet.png")], model=weights, sheet=True) == 0
    assert Image.open(tmp_path / "sheet.png").size == (3 * 48, 48 + 18)  # photo, mosaic, candy + labels
    assert stylize.run([str(src), str(tmp_path / "out.png")], style="candy:1,mosaic:1",
                       runs_dir=os.path.dirname(os.path.dirname(weights)), strength=0.5) == 0


def test_tflite_int8_takes_style_weights_and_stays_integer_only(net):
    crops = tflite.representative_crops(TRAIN_DIR, num_crops=8, crop_size=48)
    content = multistyle.add_tflite_row_names(tflite.convert(net, "int8", crops), net.row_names)
    report = tflite.check_integer_only(content)
    assert "FULLY_CONNECTED" in report["ops"]  # the style row mixing the norm tables, in int8
    assert multistyle.read_tflite_row_names(content) == list(ROWS)
    runner = litert.TFLiteStylizer(content)
    assert runner.style_input is not None and runner.style_input["dtype"] == np.uint8
    image = photo(48)
    rows = ([1, 0, 0], [0, 1, 0], [0.5, 0.5, 0])
    outs = [runner(image, row).ravel() for row in rows]
    refs = [keras_out(net, image, row).ravel() for row in rows]
    corr = np.array([[np.corrcoef(out, ref)[0, 1] for ref in refs] for out in outs])
    # A random net quantizes poorly (about 0.75 measured; garbage gives about 0), but each
    # style's INT8 output follows its own float output more than another style's.
    assert np.all(np.diag(corr) > 0.5), corr
    assert corr[0, 0] > corr[0, 1] and corr[1, 1] > corr[1, 0], corr
    fp32 = litert.TFLiteStylizer(tflite.convert(net, "float32"))
    assert np.abs(fp32(image, [0.2, 0.3, 0.5]) - keras_out(net, image, [0.2, 0.3, 0.5])).max() < 0.5


def test_cli_bad_style_weights_are_one_line_errors(weights, tmp_path):
    src = tmp_path / "photo.png"
    Image.fromarray(photo(32)).save(src)
    cases = {
        "--style=mosaic:-1": "error: style weight of 'mosaic' is -1: weights must be >= 0",
        "--style=scream": "error: unknown style 'scream': this network holds mosaic, candy",
        "--style=mosaic:0,candy:0": "error: all style weights are zero",
        "--style=mosaic:nan": "error: style weight of 'mosaic' is nan: weights must be finite numbers",
        "--style_weights=1,0,0": "error: 3 style weight(s) for 2 style(s) (mosaic, candy)",
        "--strength=2": "error: strength 2: must be between 0 (the photo) and 1 (the full style)",
    }
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO}
    running = {flag: subprocess.Popen([sys.executable, "-m", "tfstyle", "stylize", f"--model={weights}", flag, str(src),
                                       str(tmp_path / "out.png")], cwd=REPO, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for flag in cases}
    for flag, process in running.items():
        _, err = process.communicate(timeout=300)
        lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("I0000", "W0000", "WARNING"))]
        # Numbers wrong in themselves are usage errors, found before TensorFlow loads (exit 2); the rest
        # need the network (exit 1).
        before_tensorflow = flag in ("--style=mosaic:-1", "--style=mosaic:nan", "--strength=2")
        assert process.returncode == (2 if before_tensorflow else 1), (flag, err)
        assert len(lines) == 1 and lines[0].startswith(cases[flag]), (flag, err)
    assert not (tmp_path / "out.png").exists()


def test_tfstyle_serve_sees_the_style_inputs_and_names(saved):
    servable = servables.Servable("mosaic-candy-photo", 1, saved)
    assert servable.style_names == ["mosaic", "candy"]
    inputs = servable.inputs["stylize_bytes"]
    assert inputs["style_weights"].shape == (None,) and inputs["strength"].shape == ()
    png = tf.io.encode_png(photo(16)).numpy()
    out = servable.run("stylize_bytes", {"image_bytes": np.array([png], object),
                                         "style_weights": np.float32([0.5, 0.5]), "strength": np.float32(1.0)})
    assert out["stylized_bytes"].shape == (1,)
    with pytest.raises(tf.errors.InvalidArgumentError, match="style_weights: negative weight"):  # HTTP 400
        servable.run("stylize_bytes", {"image_bytes": np.array([png], object),
                                       "style_weights": np.float32([-1.0, 2.0]), "strength": np.float32(1.0)})


def test_stylize_strength_zero_is_the_photo_and_approaches_it_continuously(net):
    from tfstyle import stylize

    stylizer = stylize.KerasStylizer(net)
    image = photo(48)
    stylizer.set_blend("candy", 0.0)
    np.testing.assert_array_equal(stylize.stylize_image(stylizer, image), image)
    stylizer.set_blend("candy", 1.0)
    full = stylize.stylize_image(stylizer, image).astype(np.float32)
    assert np.abs(full - np.clip(np.round(keras_out(net, image, [0, 1, 0])), 0, 255)).max() <= 1
    stylizer.set_blend("candy", 0.02)
    near = stylize.stylize_image(stylizer, image).astype(np.float32)
    far = np.abs(full - image).mean()
    assert np.abs(near - image).mean() < 0.1 * far  # no jump at 0: 2 % of the way is close to the photo
    tiled = stylize.stylize_image(stylizer, photo(96), tile_size=64, tile_overlap=32)  # tiles take the correction too
    assert np.abs(tiled.astype(np.float32) - photo(96)).mean() < 0.1 * far
