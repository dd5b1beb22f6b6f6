"""INT8 / fp16 TFLite conversion: integer-only contract, dynamic size, calibration data.

A freshly initialized transformer saturates its tanh output (nearly binary
pixels); the fixture scales the last conv down so outputs are graded. Even so a
random net quantizes poorly (its features are noise-like), so the accuracy check
here only asserts that the INT8 output follows the float one (correlation);
INT8 vs float PSNR on a trained net is measured by ``export.py`` (docs/SERVING.md).
"""

import keras
import tensorflow as tf
import numpy as np
import pytest
from PIL import Image

from conftest import EVAL_DIR, TRAIN_DIR
from tfstyle import litert, tflite
from tfstyle.images import list_images, load_image
from tfstyle.transformer import build_transformer

pytestmark = pytest.mark.slow  # subprocesses, conversions or servers: the quick tier skips them


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(2)
    net = build_transformer()
    kernel, bias = net.get_layer("out_conv").get_weights()
    net.get_layer("out_conv").set_weights([kernel * 0.05, bias])
    return net


@pytest.fixture(scope="module")
def calibration():
    return tflite.representative_crops(TRAIN_DIR, num_crops=100, crop_size=64)


@pytest.fixture(scope="module")
def int8_model(model, calibration):
    return tflite.convert(model, "int8", calibration)


def photo(h, w, index=0):
    return load_image(list_images(EVAL_DIR)[index])[100 : 100 + h, 200 : 200 + w]


def test_representative_dataset_is_100_crops_of_different_photos(calibration):
    assert len(calibration) == 100
    assert all(c.shape == (1, 64, 64, 3) and c.dtype == np.float32 for c in calibration)
    assert all(0 <= c.min() and c.max() <= 255 for c in calibration)
    assert len({c.tobytes() for c in calibration}) == 100
    assert np.mean([c.std() for c in calibration]) > 10  # real photo content, not blank


def test_int8_model_has_uint8_io_and_only_integer_builtin_ops(int8_model):
    report = tflite.check_integer_only(int8_model)
    assert report["io_types"] == ["uint8"]
    assert report["float_ops"] == [] and report["custom_ops"] == []
    assert "CONV_2D" in report["ops"] and "MEAN" in report["ops"]  # instance norm stayed inside, quantized
    assert not any(op in report["ops"] for op in ("DEQUANTIZE",))
    assert len(int8_model) < 1.9e6


@pytest.mark.parametrize("size", [(48, 64), (37, 53)])
def test_int8_model_runs_at_different_sizes_close_to_float(model, int8_model, size):
    runner = litert.TFLiteStylizer(int8_model)
    image = photo(*size)
    out = runner(image)
    assert out.shape == image.shape
    assert tuple(runner.interp.get_input_details()[0]["shape"]) == (1, *size, 3)
    reference = model(image[None].astype(np.float32))[0].numpy()
    # Measured about 0.55-0.6 for this random net; garbage or a wrong quantization scale gives about 0.
    assert np.corrcoef(out.ravel(), reference.ravel())[0, 1] > 0.4


def test_same_interpreter_switches_between_sizes(int8_model):
    runner = litert.TFLiteStylizer(int8_model)
    a = runner(photo(40, 56))
    runner(photo(64, 32))
    np.testing.assert_array_equal(runner(photo(40, 56)), a)


def test_fp16_model_is_close_to_float_and_is_not_integer_only(model):
    fp16 = tflite.convert(model, "fp16")
    image = photo(40, 48, index=1)
    out = litert.TFLiteStylizer(fp16)(image)
    reference = model(image[None].astype(np.float32))[0].numpy()
    assert np.abs(out - reference).max() < 2.0
    with pytest.raises(tflite.ConversionError, match="float ops"):
        tflite.check_integer_only(fp16)


def test_int8_conversion_without_calibration_data_is_refused(model):
    with pytest.raises(tflite.ConversionError, match="representative dataset"):
        tflite.convert(model, "int8", calibration=[])


def test_representative_crops_from_an_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(tflite.ConversionError, match="no images"):
        tflite.representative_crops(str(tmp_path))


def test_quantization_friendly_copy_computes_the_same_function(model, calibration):
    """The INT8-friendly rewrite (channels folded into the convs, clipped tanh) changes no float output."""
    image = photo(40, 56)[None].astype(np.float32)
    expected = model(image).numpy()
    friendly = tflite.quantization_friendly(model, calibration[:4])
    np.testing.assert_allclose(friendly(image).numpy(), expected, atol=0.05)
    assert sum("folded" in layer.name for layer in friendly.layers) == 15
    assert friendly.get_layer("out_tanh_scaled")
    assert friendly.get_layer("out_conv").activation is tflite._clip_to_unit  # noqa: SLF001
    np.testing.assert_array_equal(model(image).numpy(), expected)  # the source model is left alone


def test_clipped_tanh_stays_within_half_a_pixel_level():
    x = tf.constant(np.linspace(-30, 30, 10001, dtype=np.float32))
    clipped = tflite._ScaledTanh()(tflite._clip_to_unit(x / tflite.TANH_INPUT_LIMIT)).numpy()  # noqa: SLF001
    assert np.abs(127.5 * (clipped - np.tanh(x.numpy()))).max() <= 0.5
    assert np.abs(clipped).max() < 1.0  # the clip is real: the flat tails are cut


def calibrate_only(net, inputs):
    """The converter's first INT8 step: a float model with the ranges its calibrator recorded on ``inputs``."""
    converter = tf.lite.TFLiteConverter.from_keras_model(net)
    tflite.calibrate_only(converter, inputs)
    return converter.convert()


def recorded_ranges(content):
    """{tensor name: (shape signature, min, max)} of the ranges recorded in a calibrated model."""
    from tensorflow.lite.tools import flatbuffer_utils

    tensors = flatbuffer_utils.read_model_from_bytearray(bytearray(content)).subgraphs[0].tensors
    return {t.name.decode(): (tuple(t.shapeSignature), float(t.quantization.min[0]), float(t.quantization.max[0]))
            for t in tensors if t.quantization is not None and t.quantization.min is not None}


def test_calibrated_ranges_take_a_quantile_of_each_inputs_own_range():
    class Scale(keras.layers.Layer):
        def call(self, x):
            return x * 2.0 + 1.0

    inp = keras.Input((None, None, 1))
    net = keras.Model(inp, Scale()(inp))
    inputs = [[np.full((1, 4, 4, 1), v, np.float32)] for v in range(1, 11)]
    inputs[3] = [np.full((1, 4, 4, 1), 100.0, np.float32)]  # one outlier
    calibrated = calibrate_only(net, inputs)

    def recorded(content):
        return {name: [low, high] for name, (_, low, high) in recorded_ranges(content).items()}

    before = recorded(calibrated)
    extremes = recorded(tflite.calibrated_ranges(calibrated, inputs, quantile=1.0, statistics_margin=None))
    robust = recorded(tflite.calibrated_ranges(calibrated, inputs, quantile=0.5, statistics_margin=None))
    # The converter's calibrator sees only the first inputs; every tensor it marked gets its range from all of them.
    assert extremes.keys() == before.keys()
    output = [name for name, (lo, hi) in extremes.items() if hi > 150]  # quantile 1: the outlier's 200 / 201
    assert output
    for name in output:  # the median input's range (x * 2: 13, x * 2 + 1: 14): the outlier no longer widens it
        expected = {200.0: 13.0, 201.0: 14.0}[extremes[name][1]]
        assert robust[name] == pytest.approx([expected, expected])


def test_statistics_margin_widens_the_ranges_of_per_image_statistics_only():
    class CentreAndScale(keras.layers.Layer):  # an instance norm's shape: a [1, 1, 1, C] mean, a full-size output
        def call(self, x):
            return (x - tf.reduce_mean(x, axis=[1, 2], keepdims=True)) * 3.0

    inp = keras.Input((None, None, 1))
    net = keras.Model(inp, CentreAndScale()(inp))
    rng = np.random.default_rng(0)
    inputs = [[(rng.normal(size=(1, 4, 4, 1)) + v).astype(np.float32)] for v in range(1, 11)]
    calibrated = calibrate_only(net, inputs)

    robust = recorded_ranges(tflite.calibrated_ranges(calibrated, inputs, quantile=0.5, statistics_margin=None))
    margin = recorded_ranges(tflite.calibrated_ranges(calibrated, inputs, quantile=0.5, statistics_margin=0.25))
    means = [x.mean() for [x] in inputs]
    [mean] = [name for name, (shape, _, _) in robust.items() if shape[1:3] == (1, 1)]
    width = max(means) - min(means)
    # the extremes, widened by a quarter of their width (the means are all positive: not below 0)
    expected = (max(0.0, min(means) - 0.25 * width), max(means) + 0.25 * width)
    assert margin[mean][1:] == pytest.approx(expected, rel=1e-5)
    assert min(means) - 0.25 * width < 0
    assert robust[mean][2] < max(means)  # the median input's mean: the others are clipped
    for name in robust:  # every full-size tensor keeps its quantile range
        if name != mean:
            assert margin[name] == robust[name]


def test_statistics_margin_also_covers_a_style_table_blend():
    """A multi-style network's blended norm scale, [B, C] out of a FULLY_CONNECTED on the style
    weights, holds a few numbers per image like an instance norm's statistics: clipping it to a
    quantile over inputs of several styles would rescale whole channels of some style."""
    image, weights = keras.Input((None, None, 2), name="a_image"), keras.Input((3,), name="b_style_weights")
    table = keras.layers.Dense(2, use_bias=False, name="table")
    scale = keras.layers.Reshape((1, 1, 2))(table(weights))
    net = keras.Model([image, weights], keras.layers.Multiply()([image, scale]))
    table.set_weights([np.float32([[1.0, 2.0], [4.0, 8.0], [16.0, 32.0]])])
    rng = np.random.default_rng(0)
    rows = np.eye(3, dtype=np.float32)
    inputs = [[rng.normal(size=(1, 4, 4, 2)).astype(np.float32), rows[[i % 3]]] for i in range(9)]
    calibrated = calibrate_only(net, inputs)

    margin = recorded_ranges(tflite.calibrated_ranges(calibrated, inputs, quantile=0.5))
    [blend] = [name for name, (shape, _, _) in margin.items() if len(shape) == 2 and "table" in name]
    # every style's scale (up to 32, style 3's) within the range, widened by a quarter of it
    assert margin[blend][1:] == pytest.approx((0.0, 32.0 + 0.25 * 31.0), rel=1e-5)
    robust = recorded_ranges(tflite.calibrated_ranges(calibrated, inputs, quantile=0.5, statistics_margin=None))
    assert robust[blend][2] < 32.0  # the median input's: the largest style's scales clipped
    style_weights = [name for name in margin if "style_weights" in name]
    assert style_weights and all(margin[name] == robust[name] for name in style_weights)  # an input: its quantile range


def test_held_out_photos_are_the_ones_representative_crops_leaves_out(tmp_path):
    for i in range(7):  # each photo one flat grey level, so a crop tells which photo it came from
        Image.fromarray(np.full((40, 40, 3), 30 * i, np.uint8)).save(tmp_path / f"g{i}.png")
    crops = tflite.representative_crops(str(tmp_path), num_crops=4, crop_size=32)
    cropped = {int(c[0, 0, 0, 0]) // 30 for c in crops}
    held_out = tflite.held_out_photos(str(tmp_path), num_crops=4)
    levels = {int(image[0, 0, 0]) // 30 for _, image in held_out}
    assert len(cropped) == 4 and len(held_out) == 3 and not cropped & levels
    assert len(tflite.held_out_photos(str(tmp_path), num_crops=4, count=2)) == 2
    assert tflite.held_out_photos(str(tmp_path), num_crops=7) == []
    (tmp_path / "g9.png").write_bytes(b"not a png")  # an unreadable photo is neither cropped nor held out
    crops = tflite.representative_crops(str(tmp_path), num_crops=4, crop_size=32)
    cropped = {int(c[0, 0, 0, 0]) // 30 for c in crops}
    levels = {int(image[0, 0, 0]) // 30 for _, image in tflite.held_out_photos(str(tmp_path), num_crops=4)}
    assert len(cropped) == 4 and len(levels) == 3 and not cropped & levels
