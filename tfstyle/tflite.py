"""TFLite conversion for phones: full-integer INT8 (and optional float16), plus checks.

The INT8 model takes and returns uint8 pixels and contains only integer builtin
ops (``TFLITE_BUILTINS_INT8``), so it runs on integer-only accelerators and NNAPI.
Activation ranges come from a representative dataset of crops of real photos
(``calibrated_ranges``: a quantile over the crops of each crop's own range, not the
extremes of all of them); the input size stays dynamic (``interpreter.resize_tensor_input`` works).
Use the quantization parameters of the input and output tensors to map between
pixels and the uint8 values (``litert.TFLiteStylizer`` does).

A multi-style network converts with a second input, ``style_weights`` [1, rows] (uint8
in the INT8 file, scale about 1/255 over 0..1); its conditional norms stay integer ops
(the style row mixes the scale and offset tables with a FULLY_CONNECTED). Calibration
pairs each crop with a style row: each style in turn, and blends towards other rows.
"""

import contextlib
import io
import os
import uuid
import warnings

import keras
import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image

from tfstyle import litert
from tfstyle.images import ImageError, list_images, load_image
from tfstyle.transformer import (Conv2D, ConditionalInstanceNormalization, InstanceNormalization,
                                 ReflectionPadding2D, moments, style_count, tflite_forms)

# Tensor types an "integer only" model may contain: quantized activations, int32 biases and shapes.
INTEGER_TYPES = (np.uint8, np.int8, np.int16, np.int32, np.int64, np.bool_)


class ConversionError(RuntimeError):
    """Conversion failed, or the converted model breaks the integer-only contract."""


def representative_crops(image_dir, num_crops=100, crop_size=256, seed=0):
    """``num_crops`` random crops of photos below ``image_dir`` as float32 [1, S, S, 3] 0..255.

    Photos are used round-robin (at least ``num_crops`` distinct ones when the
    folder has that many); smaller photos are scaled up to fit a crop.
    """
    paths = list_images(image_dir)
    if not paths:
        raise ConversionError(f"{image_dir}: no images for the representative dataset")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(paths))
    crops, i = [], 0
    while len(crops) < num_crops:
        if i >= 10 * max(num_crops, len(paths)):
            raise ConversionError(f"{image_dir}: too few readable images for {num_crops} crops")
        path = paths[order[i % len(paths)]]
        i += 1
        try:
            array = load_image(path)
        except ImageError:
            continue
        h, w = array.shape[:2]
        if min(h, w) < crop_size:
            scale = crop_size / min(h, w)
            size = (max(crop_size, round(w * scale)), max(crop_size, round(h * scale)))
            array = np.asarray(Image.fromarray(array).resize(size, Image.BICUBIC))
            h, w = array.shape[:2]
        y = rng.integers(0, h - crop_size + 1)
        x = rng.integers(0, w - crop_size + 1)
        crops.append(array[y : y + crop_size, x : x + crop_size].astype(np.float32)[None])
    return crops


class _FoldedInstanceNormalization(keras.layers.Layer):
    """``transformer.InstanceNormalization`` (or its conditional form, then called on
    ``[x, style_weights]``) with a per-channel epsilon (see ``quantization_friendly``)."""

    def __init__(self, source, epsilon):
        super().__init__(name=f"{source.name}_folded")
        self.source = source
        self.epsilon = self.add_weight(name="epsilon", shape=(len(epsilon),), trainable=False,
                                       initializer=keras.initializers.Constant(np.asarray(epsilon, np.float32)))

    def call(self, inputs):
        product, offset = self.terms(inputs)
        return product + offset

    def terms(self, inputs):
        """The norm's output as ``x * a`` (full size) and ``b`` (per image and channel), its sum.

        x * a + b rather than (x - mean) * a + offset: one int8 requantization fewer on the
        full-size path (+0.5 dB INT8 vs float).
        """
        if isinstance(inputs, (list, tuple)):
            x, (scale, offset) = inputs[0], self.source.mixed(inputs[1])
        else:
            x, scale, offset = inputs, self.source.scale, self.source.offset
        mean, _, variance = moments(x)
        a = tf.math.rsqrt(variance + self.epsilon) * scale
        return x * a, offset - mean * a

    def compute_output_shape(self, input_shape):
        return input_shape[0] if isinstance(input_shape, list) else input_shape


def calibration_inputs(model, crops, seed=0):
    """The representative dataset for ``model``: the crops, each paired with a style row if it is multi-style.

    Crop i gets style row i mod rows (every row is calibrated), every third one blended
    half-way towards another row, so blends and strengths below 1 fall inside the ranges.
    """
    rows = style_count(model)
    if rows is None:
        return [[c] for c in crops]
    rng = np.random.default_rng(seed)
    pairs = []
    for i, crop in enumerate(crops):
        row = np.zeros((1, rows), np.float32)
        row[0, i % rows] = 1.0
        if i % 3 == 2 and rows > 1:
            row = 0.5 * row
            row[0, (i % rows + 1 + rng.integers(rows - 1)) % rows] += 0.5
        pairs.append([crop, row])
    return pairs


# The output conv's pre-tanh values reach +-20 on bright or dark areas; quantized over that
# range one int8 step is ~0.16, i.e. up to 20 pixel levels where tanh is steep. Clipped to
# +-3.2 first (tanh(3.2) is within half a pixel level of 1), a step is ~2 pixel levels.
TANH_INPUT_LIMIT = 3.2


def _clip_to_unit(x):
    return tf.clip_by_value(x, -1.0, 1.0)


def _clip_output_conv(conv, limit=TANH_INPUT_LIMIT):
    """Makes the output conv return clip(x / limit, -1, 1): kernel and bias divided by ``limit``,
    the clip as its activation, which TFLite fuses into the CONV_2D (RELU_N1_TO_1) ahead of
    its ``depth_to_space``."""
    conv.kernel.assign(conv.kernel.numpy() / limit)
    conv.bias.assign(conv.bias.numpy() / limit)
    conv.activation = _clip_to_unit


class _ScaledTanh(keras.layers.Layer):
    """tanh(limit * x): with ``_clip_output_conv``, the net's tanh of the clipped pre-activation."""

    def __init__(self, limit=TANH_INPUT_LIMIT, **kwargs):
        super().__init__(**kwargs)
        self.limit = limit

    def call(self, x):
        return tf.tanh(self.limit * x)


class _HighResolutionUpsampleConv(keras.layers.Layer):
    """``transformer.Conv2D(upsample=2)`` as the textbook upsample, reflection pad, 3x3 conv: for INT8 files.

    The four 2x2 phase kernels of the low-resolution form hold 16 taps per Cin x Cout
    where the 3x3 kernel holds 9: 74 KB more int8 weights, for no INT8 speed gain
    (0.79 vs 0.77 s at 1024x1024, 2 threads). The file stays under 1.9 MB this way.
    """

    def __init__(self, source):
        super().__init__(name=f"{source.name}_high_resolution")
        self.source = source
        self.pad = ReflectionPadding2D(1)

    def call(self, x):
        x = self.pad(tf.nn.depth_to_space(tf.concat([x] * 4, axis=-1), 2))  # nearest x2
        return tf.nn.conv2d(x, self.source.kernel, 1, "VALID") + self.source.bias


def quantization_friendly(model, calibration):
    """A copy of the transformer, with its own weights, that computes the same float function but quantizes well.

    Activations in a full-integer model get one int8 scale per tensor, set by the
    calibration range. Two rewrites make those ranges tight:

    * every conv that feeds an instance norm gets its output channels scaled to unit
      spread and centred (kernel * s, bias := (bias - mean) * s, with the mean and
      spread of each channel over the ``calibration`` images), and the norm's
      epsilon is scaled by s**2: instance norm cancels a per-channel factor and a
      per-channel offset, so the float function is unchanged, but the conv output
      and the norm's squared deviations no longer mix channels of very different
      ranges in one int8 scale (small channels would square to 0 and saturate RSQRT);
    * the output tanh gets a clipped input (``_clip_output_conv``, ``_ScaledTanh``);
    * the upsampling convs take their textbook form (``_HighResolutionUpsampleConv``).

    The INT8 vs float PSNR these rewrites give is in docs/SERVING.md.
    """
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    norms = [layer for layer in copy.layers if isinstance(layer, (InstanceNormalization, ConditionalInstanceNormalization))]
    conditional = style_count(model) is not None
    convs = [(norm.input[0] if conditional else norm.input)._keras_history.operation for norm in norms]  # noqa: SLF001
    capture = keras.Model(copy.input, [conv.output for conv in convs])
    means, variances = [[] for _ in convs], [[] for _ in convs]
    for inputs in calibration_inputs(model, calibration):
        for k, f in enumerate(capture(inputs if conditional else inputs[0], training=False)):
            means[k].append(tf.reduce_mean(f, axis=[0, 1, 2]).numpy())
            variances[k].append(tf.math.reduce_variance(f, axis=[0, 1, 2]).numpy())
    folded = {}
    for norm, conv, mean, variance in zip(norms, convs, means, variances):
        scale = 1.0 / np.sqrt(np.mean(variance, axis=0) + norm.epsilon)
        conv.kernel.assign(conv.kernel.numpy() * scale)  # output channels are the last axis
        conv.bias.assign((conv.bias.numpy() - np.mean(mean, axis=0)) * scale)
        folded[norm.name] = _FoldedInstanceNormalization(norm, norm.epsilon * np.square(scale))
    _clip_output_conv(copy.get_layer("out_conv"))

    def swap(layer):
        if layer.name in folded:
            return folded[layer.name]
        if isinstance(layer, Conv2D) and layer.upsample == 2:
            return _HighResolutionUpsampleConv(layer)
        if layer.name == "out_tanh":
            return _ScaledTanh(name="out_tanh_scaled")
        return layer

    return keras.models.clone_model(copy, clone_function=swap)


# The activation range each int8 tensor gets: this quantile, over the calibration crops, of each crop's
# own minimum and maximum (1.0: the extremes over all crops, what TFLite's calibrator records). With
# 100 crops the extremes are set by the one or two most unusual crops, and every other photo then gets
# coarser steps: on 16 held-out training photos (BSDS, 481x321) the shipped mosaic's INT8 output
# reached 33.1 dB mean / 32.1 dB worst against float with 0.9, 32.6 / 30.5 with 0.95, 31.9 / 29.9
# with 0.98 and 29.2 / 26.9 with the extremes (docs/RESULTS.md). With STATISTICS_MARGIN, narrower
# ranges gain more: on 16 training photos outside the calibration crops, 0.75 gave mosaic
# 34.6 / 33.1 dB (0.9: 33.2 / 31.4) and rain_princess 30.1 / 27.2 dB (0.9: 29.2 / 26.0).
RANGE_QUANTILE = 0.75

# The per-image statistics' margin (``calibrated_ranges``): on those photos 0.25 kept the mean and
# lifted the evaluation set's worst photo from 27.5 to 30.6 dB for mosaic (1.0: 29.8 dB).
STATISTICS_MARGIN = 0.25


def convert(model, mode="int8", calibration=None, range_quantile=None, statistics_margin=STATISTICS_MARGIN):
    """Converts a transformer to TFLite flatbuffer bytes.

    ``mode``: ``"int8"`` (full integer, uint8 I/O; needs ``calibration``, a list
    of float32 [1, H, W, 3] 0..255 arrays) or ``"fp16"`` (float16 weights,
    float32 I/O in 0..255). ``"float32"`` gives an unquantized reference.
    ``range_quantile``, ``statistics_margin``: see ``calibrated_ranges`` (int8 only;
    ``range_quantile=None``: ``RANGE_QUANTILE``; a list: a list of models, one per quantile).
    """
    if mode not in ("int8", "fp16", "float32"):
        raise ConversionError(f"unknown TFLite mode '{mode}': use int8, fp16 or float32")
    with tflite_forms():  # the converter traces the model: with the ops LiteRT runs fast
        return _convert_model(model, mode, calibration, range_quantile, statistics_margin)


def _convert_model(model, mode, calibration, range_quantile, statistics_margin):
    if mode == "int8" and calibration:
        model = quantization_friendly(model, calibration)
    # from_keras_model freezes the weights into constants; the SavedModel and
    # concrete-function routes keep READ_VARIABLE ops that the calibrator cannot run.
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if calibration and style_count(model) is not None:
        # The converted model's inputs come in its own order: feed them by signature name.
        names = [t.name.split(":")[0] for t in model.inputs]
        calibration = [dict(zip(names, inputs)) for inputs in calibration_inputs(model, calibration)]
    else:
        calibration = calibration and calibration_inputs(model, calibration)
    return run_converter(converter, mode, calibration, RANGE_QUANTILE if range_quantile is None else range_quantile,
                         statistics_margin)


@contextlib.contextmanager
def quiet_tensorflow():
    """Holds back TensorFlow's INFO lines while it saves or converts a model.

    TensorFlow logs each saved signature, shard and fingerprint through absl at
    INFO, the level tfstyle's own progress lines use; inside this block only
    warnings and errors get through.
    """
    verbosity = logging.get_verbosity()
    logging.set_verbosity(logging.WARNING)
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)


# Inputs the converter's own calibrator runs: it only has to mark every tensor that gets a range, since
# ``calibrated_ranges`` replaces each recorded range with its own, read from one pass over all inputs.
CONVERTER_CALIBRATION_INPUTS = 2


def calibrate_only(converter, calibration):
    """Sets ``converter`` up for the first INT8 step: its ``convert()`` then returns the float model
    with each tensor's calibrated range (uint8 I/O, integer-only ops once quantized). It sees only the
    first ``CONVERTER_CALIBRATION_INPUTS`` inputs: ``calibrated_ranges`` sets every range afterwards."""
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    calibration = list(calibration)[:CONVERTER_CALIBRATION_INPUTS]
    converter.representative_dataset = lambda: iter(calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    converter._experimental_calibrate_only = True  # noqa: SLF001  (the converter's own two-step path)


def run_converter(converter, mode, calibration=None, range_quantile=RANGE_QUANTILE, statistics_margin=STATISTICS_MARGIN):
    """Sets ``converter`` up for ``mode`` (int8, fp16 or float32) and converts, quietly.

    ``calibration``: the representative dataset, a list of input lists (or of {name: input} dicts).
    INT8 runs in two steps, as the converter does inside: calibration (a float model that records
    each tensor's range), then quantization of that model, with the ranges of ``calibrated_ranges``
    (``range_quantile`` a list: a list of models, one per quantile).
    """
    if mode == "int8":
        if not calibration:
            raise ConversionError("int8 conversion needs a representative dataset")
        calibrate_only(converter, calibration)
    elif mode == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    try:
        # Keras' export prints each artifact's signature on stdout, and the converter warns that uint8
        # inputs have no statistics (they need none: scale 1, zero point 0); neither is for users.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), quiet_tensorflow():
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            content = converter.convert()
            if mode != "int8":
                return content
            from tensorflow.lite.python.convert import mlir_quantize

            ranged = calibrated_ranges(content, calibration, range_quantile, statistics_margin)
            quantize = lambda c: mlir_quantize(c, input_data_type=tf.uint8, output_data_type=tf.uint8)  # noqa: E731
            return [quantize(c) for c in ranged] if isinstance(ranged, list) else quantize(ranged)
    except Exception as e:  # the converter raises ConverterError and friends
        raise ConversionError(f"{mode} conversion failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e


def calibrated_ranges(calibrated, calibration, quantile=RANGE_QUANTILE, statistics_margin=STATISTICS_MARGIN):
    """``calibrated`` (a float TFLite model with the ranges the calibrator recorded) with every
    recorded activation range replaced by the ``quantile`` over ``calibration`` of each input's own
    range: per tensor, the (1 - quantile) quantile of the inputs' minima and the ``quantile`` quantile
    of their maxima. ``calibration`` as for ``run_converter``; inputs are fed by signature name.
    ``quantile`` a list: one model per quantile, from one pass over ``calibration``.

    ``statistics_margin`` (None: no special case, as for every other tensor): per-image statistics, the tensors of spatial size
    1x1 (an instance norm's channel means, variances and factors) and the 2-D ones (a multi-style
    network's blended norm scales and offsets, [B, C]; not the model's own inputs, whose uint8 step
    stays that of their quantile range), get instead the extremes over all inputs,
    widened by this fraction of their width on each side. They hold a few numbers per image, so a
    wide step costs little, but clipping one shifts or scales a whole channel: on kodim02 (a
    saturated red door, the worst photo of rain_princess) the first norm's channel means lie outside
    the calibration crops', and a quantile over crops of several styles clips the largest style's
    scales (docs/RESULTS.md).
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(calibrated))
    tensors = model.subgraphs[0].tensors
    recorded = [i for i, t in enumerate(tensors)
                if t.quantization is not None and t.quantization.min is not None and len(t.quantization.min) == 1]
    with warnings.catch_warnings():  # LiteRT warns that keeping every tensor is for debugging: it is what is wanted
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
        interp = litert.interpreter(model_content=calibrated, experimental_preserve_all_tensors=True)
    runner = interp.get_signature_runner()
    names = list(runner.get_input_details())
    lows, highs, statistics = {i: [] for i in recorded}, {i: [] for i in recorded}, set()
    model_inputs = set(model.subgraphs[0].inputs)  # a style-weights input is 2-D too, but keeps its quantile range
    for inputs in calibration:
        runner(**(inputs if isinstance(inputs, dict) else dict(zip(names, inputs))))
        for i in recorded:
            value = interp.get_tensor(i)
            lows[i].append(float(value.min()))
            highs[i].append(float(value.max()))
            if i not in model_inputs and (value.ndim == 2 or (value.ndim == 4 and value.shape[1] == value.shape[2] == 1)):
                statistics.add(i)

    def with_quantile(q):
        for i in recorded:
            low, high = np.quantile(lows[i], 1.0 - q), np.quantile(highs[i], q)
            if statistics_margin is not None and i in statistics:
                low, high = min(lows[i]), max(highs[i])
                margin = statistics_margin * (high - low)
                low, high = (low - margin if low < 0 else max(0.0, low - margin)), high + margin
            tensors[i].quantization.min = np.float32([low])
            tensors[i].quantization.max = np.float32([high])
        return bytes(flatbuffer_utils.convert_object_to_bytearray(model))

    if isinstance(quantile, (list, tuple)):
        return [with_quantile(q) for q in quantile]
    return with_quantile(quantile)


def held_out_photos(image_dir, num_crops, count=32, seed=0):
    """Up to ``count`` (path, uint8 image) of ``image_dir`` that ``representative_crops(image_dir,
    num_crops, seed=seed)`` takes no crop from (it crops the first ``num_crops`` readable photos of
    the same order): photos to choose conversion settings on without fitting them to the
    calibration crops. Empty when the folder has no photos to spare."""
    paths = list_images(image_dir)
    cropped, held_out = 0, []
    for index in np.random.default_rng(seed).permutation(len(paths)):
        if len(held_out) == count:
            break
        try:
            image = load_image(paths[index])
        except ImageError:
            continue
        if cropped < num_crops:
            cropped += 1
        else:
            held_out.append((paths[index], image))
    return held_out


def write_atomic(path, data):
    """Writes bytes to ``path`` via a temporary file and a rename (no half-written files)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def op_report(model_content):
    """Ops and tensor types of a TFLite model: {"ops": sorted op names, "float_ops": [...], "custom_ops": [...]}.

    An op is a float op when any of its input or output tensors is floating point.
    """
    interp = litert.interpreter(model_content=model_content)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    ops, float_ops, custom = set(), set(), set()
    for op in interp._get_ops_details():  # noqa: SLF001  (the only op listing the Python API has)
        name = op["op_name"]
        ops.add(name)
        if name.startswith("Flex") or name == "CUSTOM" or not name.isupper():
            custom.add(name)
        indices = [i for i in list(op["inputs"]) + list(op["outputs"]) if i >= 0]
        if any(not np.issubdtype(tensors[i]["dtype"], np.integer) and tensors[i]["dtype"] != np.bool_ for i in indices):
            float_ops.add(name)
    details = interp.get_input_details() + interp.get_output_details()
    return {
        "ops": sorted(ops),
        "float_ops": sorted(float_ops),
        "custom_ops": sorted(custom),
        "io_types": sorted({np.dtype(d["dtype"]).name for d in details}),
    }


def check_integer_only(model_content):
    """Raises ``ConversionError`` unless the model has uint8 I/O and only integer builtin ops."""
    report = op_report(model_content)
    problems = []
    if report["io_types"] != ["uint8"]:
        problems.append(f"input/output types {report['io_types']}, expected uint8")
    if report["float_ops"]:
        problems.append(f"float ops {report['float_ops']}")
    if report["custom_ops"]:
        problems.append(f"non-builtin ops {report['custom_ops']}")
    if problems:
        raise ConversionError("INT8 model is not integer-only: " + "; ".join(problems))
    return report
