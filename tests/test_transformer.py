import numpy as np
import pytest

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
