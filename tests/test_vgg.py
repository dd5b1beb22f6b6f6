import os

import keras
import numpy as np
import pytest

from tfstyle import vgg

GENUINE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "shared", "weights", vgg.WEIGHTS_FILE)


def test_truncated_after_deepest_layer_and_frozen(random_loss_network):
    names = [l.name for l in random_loss_network.layers]
    assert names[-1] == "block5_conv1"
    assert "block5_conv2" not in names
    assert random_loss_network.trainable_weights == []
    out = random_loss_network(np.zeros((1, 32, 32, 3), np.float32))
    assert set(out["style"]) == set(vgg.DEFAULT_STYLE_LAYERS)
    assert out["content"].shape == (1, 4, 4, 512)


def test_custom_layers_truncate_earlier():
    net = vgg.build_loss_network("random", style_layers=["block1_conv2", "block2_conv2"], content_layer="block2_conv2")
    assert [l.name for l in net.layers][-1] == "block2_conv2"


def test_unknown_layer_is_a_clear_error():
    with pytest.raises(vgg.LossNetworkError, match="block9_conv1"):
        vgg.build_loss_network("random", style_layers=["block9_conv1"])


def test_random_weights_are_seeded(random_loss_network):
    again = vgg.build_loss_network("random", seed=0)
    other = vgg.build_loss_network("random", seed=1)
    x = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32)
    a, b, c = (n(x)["content"].numpy() for n in (random_loss_network, again, other))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_weights_from_an_h5_path_load_through_keras(tmp_path, random_loss_network):
    """A test-made .h5 file goes through the same loading code as the ImageNet file."""
    source = keras.applications.VGG19(include_top=False, weights=None)
    path = str(tmp_path / "vgg19_notop.weights.h5")
    source.save_weights(path)
    net = vgg.build_loss_network(path)
    kernel = net.get_layer("block3_conv1").get_weights()[0]
    np.testing.assert_array_equal(kernel, source.get_layer("block3_conv1").get_weights()[0])


def test_missing_imagenet_weights_say_where_the_file_goes(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv(vgg.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(vgg, "WEIGHTS_URL", "http://127.0.0.1:9/" + vgg.WEIGHTS_FILE)  # refused at once, offline or not
    with pytest.raises(vgg.WeightsError) as e:
        vgg.resolve_imagenet_weights()
    message = str(e.value)
    assert "\n" not in message
    assert os.path.join(str(tmp_path), "models", vgg.WEIGHTS_FILE) in message
    assert "--vgg_weights" in message


def test_corrupt_weights_file_fails_md5(tmp_path, monkeypatch):
    bad = tmp_path / vgg.WEIGHTS_FILE
    bad.write_bytes(b"not weights")
    monkeypatch.setenv(vgg.WEIGHTS_ENV, str(bad))
    with pytest.raises(vgg.WeightsError, match="md5"):
        vgg.resolve_imagenet_weights()


@pytest.mark.skipif(not os.path.exists(GENUINE), reason="genuine ImageNet VGG19 weights are not on this machine")
def test_genuine_weights_match_reference_fragment(monkeypatch):
    monkeypatch.setenv(vgg.WEIGHTS_ENV, GENUINE)
    net = vgg.build_loss_network("imagenet", style_layers=["block1_conv1"], content_layer="block1_conv1")
    assert net is not None
    frag = np.load(os.path.join(os.path.dirname(GENUINE), "vgg19_block5_conv4_reference_fragment.npz"))
    full = keras.applications.VGG19(include_top=False, weights=GENUINE)
    kernel, bias = full.get_layer("block5_conv4").get_weights()
    assert np.array_equal(bias, frag["block5_conv4_bias"])
    assert np.array_equal(kernel.reshape(-1)[2258368:], frag["block5_conv4_kernel_flat_tail"])
