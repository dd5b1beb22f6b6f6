import keras
import numpy as np
import pytest

from tfstyle import transformer as T
from tfstyle import vgg
from tfstyle.transformer import InstanceNormalization, build_transformer


@pytest.fixture(scope="module")
def transformer():
    return build_transformer()


@pytest.mark.parametrize("height,width", [(32, 32), (33, 47), (57, 41)])
def test_output_keeps_any_input_size_and_pixel_range(transformer, height, width):
    x = np.random.default_rng(0).uniform(0, 255, size=(2, height, width, 3)).astype(np.float32)
    y = transformer(x).numpy()
    assert y.shape == x.shape
    assert y.min() >= 0.0 and y.max() <= 255.0


def test_architecture_is_johnson_et_al(transformer):
    convs = [l for l in transformer.layers if l.__class__.__name__ == "Conv2D"]
    assert [c.filters for c in convs[:3]] == [32, 64, 128]
    assert [c.kernel_size for c in (convs[0], convs[-1])] == [(9, 9), (9, 9)]
    assert len([l for l in transformer.layers if l.name.endswith("_add")]) == 5
    assert not any("Transpose" in l.__class__.__name__ for l in transformer.layers)
    assert 1.6e6 < transformer.count_params() < 1.8e6


def test_instance_norm_matches_numpy():
    x = np.random.default_rng(1).normal(3.0, 2.0, size=(2, 5, 6, 4)).astype(np.float32)
    layer = InstanceNormalization(epsilon=1e-5)
    layer.build(x.shape)
    layer.scale.assign(np.array([1.0, 2.0, 0.5, 1.0], np.float32))
    layer.offset.assign(np.array([0.0, 1.0, -1.0, 0.0], np.float32))
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-5) * layer.scale.numpy() + layer.offset.numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("make", [
    lambda: T.ReflectionPadding2D(2),
    lambda: T.InstanceNormalization(epsilon=1e-3),
    lambda: T.Conv2D(8, 3, strides=2),
    lambda: T.Conv2D(8, 3, upsample=2),
    lambda: T.Conv2D(8, 9, space_to_depth=2),
    lambda: T.PadToMultiple(4),
    lambda: vgg.VGGPreprocess(),
], ids=["pad", "norm", "conv", "upsample_conv", "space_to_depth_conv", "pad_to_multiple", "vgg_preprocess"])
def test_registered_layers_round_trip_through_their_config(make):
    layer = make()
    x = np.random.default_rng(0).uniform(0, 255, (1, 12, 16, 3)).astype(np.float32)
    y = layer(x)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(again) is type(layer) and again.get_config() == layer.get_config()
    again(x)  # build
    again.set_weights(layer.get_weights())
    np.testing.assert_allclose(again(x), y, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("h, w", [(5, 8), (6, 7), (7, 10), (8, 9), (13, 12)])
def test_pad_to_multiple_tflite_form_equals_reflect_pad(h, w):
    """Both forms reflect-pad bottom and right by 0..3 to a multiple of 4, at every residue."""
    import tensorflow as tf

    layer = T.PadToMultiple(4)
    x = np.random.default_rng(h * w).uniform(0, 1, (2, h, w, 3)).astype(np.float32)
    fn = tf.function(layer, input_signature=[tf.TensorSpec([None, None, None, 3])])  # traced with dynamic H, W
    with T.tflite_forms():
        lite = fn.get_concrete_function()  # traced with the LiteRT form
    assert not [op for op in lite.graph.get_operations() if op.type == "MirrorPad"]
    expected = np.pad(x, [(0, 0), (0, -h % 4), (0, -w % 4), (0, 0)], mode="reflect")
    np.testing.assert_array_equal(lite(tf.constant(x)).numpy(), expected)
    np.testing.assert_array_equal(layer(x).numpy(), expected)


def test_crop_like_round_trips_through_its_config():
    layer = T.CropLike()
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    x, reference = np.ones((1, 12, 16, 3), np.float32), np.ones((1, 9, 10, 3), np.float32)
    assert again([x, reference]).shape == (1, 9, 10, 3)


def test_whole_transformer_round_trips_through_keras_format(tmp_path):
    model = T.build_transformer()
    path = str(tmp_path / "transformer.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(1).uniform(0, 255, (1, 20, 28, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-3)


def test_smallest_accepted_side_is_min_side(transformer):
    out = transformer(np.zeros((1, T.MIN_SIDE, T.MIN_SIDE + 2, 3), np.float32))
    assert out.shape == (1, T.MIN_SIDE, T.MIN_SIDE + 2, 3)


def test_tflite_forms_compute_the_same_function_with_other_ops():
    """The TensorFlow-runtime forms (MirrorPad, SquaredDifference, BiasAdd) and the LiteRT forms of the layers."""
    import tensorflow as tf

    keras.utils.set_random_seed(7)
    net = build_transformer(num_styles=2)
    kernel, bias = net.get_layer("out_conv").get_weights()  # graded outputs, not a saturated tanh
    net.get_layer("out_conv").set_weights([kernel * 0.05, bias])
    x = np.random.default_rng(3).uniform(0, 255, (2, 45, 38, 3)).astype(np.float32)
    rows = np.array([[1, 0], [0.3, 0.7]], np.float32)

    def traced():
        fn = tf.function(lambda a, b: net([a, b]))
        return fn.get_concrete_function(tf.TensorSpec([None, None, None, 3]), tf.TensorSpec([None, 2]))

    runtime = traced()
    with T.tflite_forms():
        lite = traced()
    count = lambda f, kind: sum(op.type == kind for op in f.graph.get_operations())  # noqa: E731
    assert count(runtime, "MirrorPad") == 15 and count(lite, "MirrorPad") == 0  # PadToMultiple's and 14 conv pads
    assert count(runtime, "SquaredDifference") == 15 and count(lite, "SquaredDifference") == 0  # the 15 norms
    np.testing.assert_allclose(runtime(x, rows).numpy(), lite(x, rows).numpy(), atol=0.01)
