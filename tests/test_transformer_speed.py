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

from tfstyle import transformer as T


def reference_pad(layer, x):
    p = layer.padding
    return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")


def reference_norm(layer, x):
    x32 = tf.cast(x, tf.float32)
    mean, variance = tf.nn.moments(x32, axes=[1, 2], keepdims=True)
    y = (x32 - mean) * tf.math.rsqrt(variance + layer.epsilon)
    y = y * tf.cast(layer.scale, tf.float32) + tf.cast(layer.offset, tf.float32)
    return tf.cast(y, layer.compute_dtype)


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
        ops = [op["op_name"] for op in tf.lite.Interpreter(model_content=content)._get_ops_details()]  # noqa: SLF001
        assert "SQUARED_DIFFERENCE" not in ops
        # Only PadToMultiple's pad of the 3-channel input (by 0..3 rows) is left as MIRROR_PAD.
        assert ops.count("MIRROR_PAD") <= 1, ops
        assert "RESIZE_NEAREST_NEIGHBOR" not in ops and "DEPTH_TO_SPACE" in ops
    assert "CONV_2D" in report["ops"]
    stylizer = tflite.TFLiteStylizer(model_content=float32, num_threads=1)
    for h, w in [(32, 40), (27, 21)]:
        image = np.random.default_rng(h).integers(0, 255, (h, w, 3), dtype=np.uint8)
        out = stylizer(image)
        assert out.shape == (h, w, 3)
        np.testing.assert_allclose(out, model(image[None].astype(np.float32)).numpy()[0], atol=0.05)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_nearest_upsampling_equals_resize_nearest(dtype):
    x = tf.constant(np.random.default_rng(6).normal(size=(2, 5, 7, 3)), dtype=dtype)
    y = T.NearestUpsampling2D(2, dtype=dtype)(x)
    reference = tf.image.resize(x, [10, 14], method="nearest")
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(y.numpy(), tf.cast(reference, dtype).numpy())


def test_upsampling_gradient_compiles_with_xla():
    layer = T.NearestUpsampling2D(2)

    @tf.function(jit_compile=True)
    def grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(tf.square(layer(x)))
        return tape.gradient(y, x)

    x = tf.constant(np.random.default_rng(7).normal(size=(1, 4, 6, 2)).astype(np.float32))
    np.testing.assert_allclose(grad(x).numpy(), 8.0 * x.numpy(), rtol=1e-5)  # 4 copies of 2x
