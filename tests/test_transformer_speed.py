"""The speed-minded transformer layers compute the same function as the textbook ops.

ReflectionPadding2D (slices + concats instead of MIRROR_PAD) and
InstanceNormalization (SUB/MUL form instead of tf.nn.moments' SQUARED_DIFFERENCE)
were rewritten for TFLite/XNNPACK speed; saved weights must still load and give
the same outputs, the INT8 model must stay integer-only and dynamic in H x W.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from tfstyle import litert
from tfstyle import transformer as T
from tfstyle.testing.textbook import reference_conv, reference_norm, reference_pad


@pytest.mark.parametrize("padding", [0, 1, 4])
@pytest.mark.parametrize("shape", [(1, 9, 7, 3), (2, 13, 30, 5)])
def test_reflection_padding_equals_tf_pad_reflect(padding, shape):
    x = tf.constant(np.random.default_rng(0).normal(size=shape).astype(np.float32))
    layer = T.ReflectionPadding2D(padding)
    np.testing.assert_array_equal(layer(x).numpy(), reference_pad(layer, x).numpy())


def test_reflection_padding_has_dynamic_shape_in_a_graph():
    layer = T.ReflectionPadding2D(4)
    fn = tf.function(layer, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    for shape in [(1, 10, 12, 3), (1, 33, 17, 3)]:
        x = tf.constant(np.random.default_rng(1).normal(size=shape).astype(np.float32))
        np.testing.assert_array_equal(fn(x).numpy(), reference_pad(layer, x).numpy())


def test_instance_norm_equals_moments_formula():
    layer = T.InstanceNormalization()
    layer.build((None, None, None, 6))
    rng = np.random.default_rng(2)
    layer.scale.assign(rng.normal(size=6).astype(np.float32))
    layer.offset.assign(rng.normal(size=6).astype(np.float32))
    # Large per-channel means relative to the spread, as conv outputs have.
    x = tf.constant((rng.normal(size=(2, 17, 11, 6)) * 3 + rng.normal(0, 40, size=6)).astype(np.float32))
    np.testing.assert_allclose(layer(x).numpy(), reference_norm(layer, x).numpy(), rtol=1e-4, atol=1e-4)
    # The gradients agree too (training uses them).
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        a = tf.reduce_sum(tf.sin(layer(x)))
        b = tf.reduce_sum(tf.sin(reference_norm(layer, x)))
    for ga, gb in zip(tape.gradient(a, [x, layer.scale, layer.offset]), tape.gradient(b, [x, layer.scale, layer.offset])):
        np.testing.assert_allclose(ga.numpy(), gb.numpy(), rtol=1e-3, atol=1e-3)


def test_whole_net_matches_reference_layers_with_the_same_weights(tmp_path, monkeypatch):
    keras.utils.set_random_seed(3)
    fast = T.build_transformer()
    # Non-trivial norm parameters, so the test is not blind to scale/offset.
    rng = np.random.default_rng(3)
    for layer in fast.layers:
        if isinstance(layer, T.InstanceNormalization):
            layer.scale.assign(rng.uniform(0.5, 1.5, layer.scale.shape).astype(np.float32))
            layer.offset.assign(rng.normal(0, 0.2, layer.offset.shape).astype(np.float32))
    path = str(tmp_path / "t.weights.h5")
    fast.save_weights(path)
    x = np.random.default_rng(4).uniform(0, 255, (1, 45, 37, 3)).astype(np.float32)
    y_fast = fast(x).numpy()

    monkeypatch.setattr(T.ReflectionPadding2D, "call", reference_pad)
    monkeypatch.setattr(T.InstanceNormalization, "call", reference_norm)
    monkeypatch.setattr(T.Conv2D, "call", reference_conv)
    reference = T.build_transformer()
    reference.load_weights(path)  # same weight layout
    y_ref = reference(x).numpy()
    assert y_fast.shape == (1, 45, 37, 3)
    np.testing.assert_allclose(y_fast, y_ref, atol=0.05)  # 0..255 pixels


def test_tflite_graphs_have_no_slow_ops_and_stay_dynamic():
    from tfstyle import tflite

    keras.utils.set_random_seed(5)
    model = T.build_transformer()
    calibration = [np.random.default_rng(i).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32) for i in range(2)]
    int8 = tflite.convert(model, "int8", calibration)
    report = tflite.check_integer_only(int8)  # raises when any float op is left
    float32 = tflite.convert(model, "float32")
    for content in (int8, float32):
        ops = [op["op_name"] for op in litert.interpreter(model_content=content)._get_ops_details()]  # noqa: SLF001
        assert "SQUARED_DIFFERENCE" not in ops
        assert "MIRROR_PAD" not in ops  # TFLite's kernel runs outside XNNPACK, on one thread

        assert "RESIZE_NEAREST_NEIGHBOR" not in ops and "DEPTH_TO_SPACE" in ops
    assert "CONV_2D" in report["ops"]
    stylizer = litert.TFLiteStylizer(model_content=float32, num_threads=1)
    for h, w in [(32, 40), (27, 21)]:
        image = np.random.default_rng(h).integers(0, 255, (h, w, 3), dtype=np.uint8)
        out = stylizer(image)
        assert out.shape == (h, w, 3)
        np.testing.assert_allclose(out, model(image[None].astype(np.float32)).numpy()[0], atol=0.05)


def assert_conv_matches_textbook_ops(layer, shape, seed):
    """``layer`` (a ``T.Conv2D`` with a random bias) gives the values and gradients of ``reference_conv``."""
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.normal(size=shape).astype(np.float32))
    layer.build(x.shape)
    layer.bias.assign(rng.normal(size=layer.filters).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = layer(x)
        reference = reference_conv(layer, x)
        weights = tf.constant(rng.normal(size=y.shape).astype(np.float32))
        a, b = tf.reduce_sum(y * weights), tf.reduce_sum(reference * weights)
    assert y.shape == reference.shape
    np.testing.assert_allclose(y.numpy(), reference.numpy(), rtol=1e-5, atol=1e-5)
    for ga, gb in zip(tape.gradient(a, [x, layer.kernel, layer.bias]), tape.gradient(b, [x, layer.kernel, layer.bias])):
        assert isinstance(ga, tf.Tensor)  # dense, as optimizers expect for a conv kernel
        np.testing.assert_allclose(ga.numpy(), gb.numpy(), rtol=1e-4, atol=1e-4)
    return y


@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (1, 1, 4, 2), (1, 6, 6, 8)])
def test_upsample_conv_equals_resize_pad_conv(shape):
    y = assert_conv_matches_textbook_ops(T.Conv2D(4, 3, upsample=2), shape, seed=6)
    assert y.shape == (shape[0], 2 * shape[1], 2 * shape[2], 4)


def test_upsample_conv_in_float16():
    layer = T.Conv2D(4, 3, upsample=2, dtype="mixed_float16")
    x = tf.constant(np.random.default_rng(9).normal(size=(1, 5, 6, 3)), dtype="float16")
    y = layer(x)
    assert y.dtype == tf.float16
    np.testing.assert_allclose(y.numpy(), reference_conv(layer, tf.cast(x, tf.float32)).numpy(), atol=0.02)


def textbook_conv(x, filters, kernel, stride, name, norm=True, relu=True):
    """Reflection pad -> Keras' own Conv2D -> instance norm -> ReLU: the layers of early checkpoints."""
    x = T.ReflectionPadding2D(kernel // 2, name=f"{name}_pad")(x)
    x = layers.Conv2D(filters, kernel, strides=stride, padding="valid", name=f"{name}_conv")(x)
    if norm:
        x = T.InstanceNormalization(name=f"{name}_norm")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def test_checkpoints_of_the_textbook_graph_load(tmp_path):
    """Weights saved by the graph tfstyle had before (Keras convs, resize + pad + conv) load into the current one."""
    keras.utils.set_random_seed(10)
    image = keras.Input(shape=(None, None, 3))
    x = T.PadToMultiple(4)(layers.Rescaling(1.0 / 255.0)(image))
    for i, (filters, kernel, stride) in enumerate(T.DOWNSAMPLE, start=1):
        x = textbook_conv(x, filters, kernel, stride, f"down{i}")
    for i in range(1, T.NUM_RESIDUAL_BLOCKS + 1):
        y = textbook_conv(x, 128, 3, 1, f"res{i}_a")
        x = layers.Add()([x, textbook_conv(y, 128, 3, 1, f"res{i}_b", relu=False)])
    for i, (filters, kernel) in enumerate(T.UPSAMPLE, start=1):
        x = layers.Lambda(lambda t: tf.image.resize(t, tf.shape(t)[1:3] * 2, method="nearest"))(x)
        x = textbook_conv(x, filters, kernel, 1, f"up{i}")
    x = textbook_conv(x, 3, 9, 1, "out", norm=False, relu=False)
    x = layers.Rescaling(127.5, offset=127.5)(layers.Activation("tanh")(x))
    textbook = keras.Model(image, T.CropLike()([x, image]))
    for layer in textbook.layers:
        if isinstance(layer, layers.Conv2D):  # non-zero biases, so a misplaced bias shows
            layer.bias.assign(np.random.default_rng(len(layer.name)).normal(0, 0.1, layer.bias.shape))
    path = str(tmp_path / "textbook.weights.h5")
    textbook.save_weights(path)
    current = T.build_transformer()
    current.load_weights(path)
    image = np.random.default_rng(11).uniform(0, 255, (1, 30, 26, 3)).astype(np.float32)
    expected = textbook(image).numpy()
    assert expected.std() > 1.0
    np.testing.assert_allclose(current(image).numpy(), expected, atol=0.01)


def test_upsample_conv_gradient_compiles_with_xla():
    layer = T.Conv2D(2, 3, upsample=2)
    layer.build((1, 4, 6, 2))

    @tf.function(jit_compile=True)
    def grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(tf.square(layer(x)))
        return tape.gradient(y, x)

    x = tf.constant(np.random.default_rng(7).normal(size=(1, 4, 6, 2)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(tf.square(reference_conv(layer, x)))
    np.testing.assert_allclose(grad(x).numpy(), tape.gradient(y, x).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape,kernel,filters", [((2, 12, 10, 3), 9, 5), ((1, 10, 14, 6), 9, 3), ((1, 6, 4, 2), 3, 4),
                                                   ((1, 8, 10, 3), (5, 3), 2)])
def test_space_to_depth_conv_equals_plain_conv(shape, kernel, filters):
    y = assert_conv_matches_textbook_ops(T.Conv2D(filters, kernel, space_to_depth=2), shape, seed=12)
    k_h, k_w = (kernel, kernel) if isinstance(kernel, int) else kernel
    assert y.shape == (shape[0], shape[1] - k_h + 1, shape[2] - k_w + 1, filters)


def test_space_to_depth_conv_in_float16_and_under_xla():
    layer = T.Conv2D(3, 9, space_to_depth=2, dtype="mixed_float16")
    x = tf.constant(np.random.default_rng(15).normal(size=(1, 12, 10, 4)), dtype="float16")
    y = layer(x)
    assert y.dtype == tf.float16
    reference = tf.nn.conv2d(tf.cast(x, tf.float32), layer.kernel, 1, "VALID") + layer.bias
    np.testing.assert_allclose(y.numpy(), reference.numpy(), atol=0.02)

    @tf.function(jit_compile=True)
    def grad(x):
        with tf.GradientTape() as tape:
            y = tf.reduce_sum(tf.square(tf.cast(layer(x), tf.float32)))
        return tape.gradient(y, layer.kernel)

    assert grad(x).shape == (9, 9, 4, 3)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=4), dict(kernel_size=3, strides=2), dict(kernel_size=3, upsample=2),
                                    dict(kernel_size=3, padding="same"), dict(kernel_size=3, dilation_rate=2)])
def test_space_to_depth_conv_rejects_what_it_cannot_compute(kwargs):
    with pytest.raises(ValueError, match="space_to_depth=2 needs"):
        T.Conv2D(4, space_to_depth=2, **kwargs)
