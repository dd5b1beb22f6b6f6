import hashlib
import os

import keras
import numpy as np
import pytest

from tfstyle import recipes, vgg

GENUINE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "shared", "weights", vgg.WEIGHTS_FILE)


def test_truncated_after_deepest_layer_and_frozen(random_loss_network):
    names = [l.name for l in random_loss_network.layers]
    assert names[-1] == "block5_conv1"
    assert "block5_conv2" not in names
    assert random_loss_network.trainable_weights == []
    out = random_loss_network(np.zeros((1, 32, 32, 3), np.float32))
    assert set(out["style"]) == set(recipes.FULL_VGG19.style_layers)
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
    assert [l.name for l in net.layers][-1] == "block1_conv1"
    frag = np.load(os.path.join(os.path.dirname(GENUINE), "vgg19_block5_conv4_reference_fragment.npz"))
    full = keras.applications.VGG19(include_top=False, weights=GENUINE)
    kernel, bias = full.get_layer("block5_conv4").get_weights()
    assert np.array_equal(bias, frag["block5_conv4_bias"])
    assert np.array_equal(kernel.reshape(-1)[2258368:], frag["block5_conv4_kernel_flat_tail"])


SHARED_WEIGHTS = os.path.join(os.path.dirname(GENUINE), "vgg19_imagenet_block1_to_block3.npz")


def _prefix_npz(tmp_path, last_layer):
    """A test-made partial weights file: VGG19's conv layers up to ``last_layer``, random values."""
    source = keras.applications.VGG19(include_top=False, weights=None)
    arrays = {}
    for name in vgg.CONV_LAYERS[: vgg.CONV_LAYERS.index(last_layer) + 1]:
        kernel, bias = source.get_layer(name).get_weights()
        arrays[f"{name}/kernel"], arrays[f"{name}/bias"] = kernel, bias + 0.5
    path = str(tmp_path / "prefix.npz")
    np.savez(path, **arrays)
    return path, arrays


def test_partial_npz_builds_up_to_its_deepest_layer(tmp_path):
    path, arrays = _prefix_npz(tmp_path, "block2_conv2")
    assert vgg.covered_layers(path) == ("block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2")
    net = vgg.build_loss_network(path, style_layers=["block1_conv1", "block2_conv1"], content_layer="block2_conv2")
    assert [l.name for l in net.layers][-1] == "block2_conv2"
    kernel, bias = net.get_layer("block2_conv1").get_weights()
    np.testing.assert_array_equal(kernel, arrays["block2_conv1/kernel"])
    np.testing.assert_array_equal(bias, arrays["block2_conv1/bias"])


def test_layer_beyond_the_partial_file_is_a_one_line_error_naming_what_it_has(tmp_path):
    path, _ = _prefix_npz(tmp_path, "block2_conv2")
    with pytest.raises(vgg.LossNetworkError) as e:
        vgg.build_loss_network(path, style_layers=["block1_conv1", "block3_conv1"], content_layer="block2_conv2")
    message = str(e.value)
    assert "\n" not in message
    assert "block3_conv1" in message and "up to block2_conv2" in message
    assert "block1_conv1, block1_conv2, block2_conv1, block2_conv2" in message


def test_partial_legacy_h5_loads_its_prefix(tmp_path):
    """Keras' legacy .h5 layout (keras.applications' files) with only block 1 in it."""
    import h5py

    source = keras.applications.VGG19(include_top=False, weights=None)
    path = str(tmp_path / "block1.h5")
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"block1_conv1", b"block1_conv2"]
        for name in ("block1_conv1", "block1_conv2"):
            kernel, bias = source.get_layer(name).get_weights()
            group = f.create_group(name)
            group.attrs["weight_names"] = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
            group[f"{name}/kernel:0"] = kernel
            group[f"{name}/bias:0"] = bias + 1.0
    net = vgg.build_loss_network(path, style_layers=["block1_conv1"], content_layer="block1_conv2")
    np.testing.assert_array_equal(net.get_layer("block1_conv2").get_weights()[1],
                                  source.get_layer("block1_conv2").get_weights()[1] + 1.0)


@pytest.mark.parametrize("content", [b"", b"not an archive", None])
def test_unreadable_or_empty_weights_file_is_a_one_line_error(tmp_path, content):
    path = tmp_path / "weights.npz"
    if content is None:
        np.savez(str(path), other=np.zeros(3))
    else:
        path.write_bytes(content)
    with pytest.raises(vgg.WeightsError) as e:
        vgg.build_loss_network(str(path), style_layers=["block1_conv1"], content_layer="block1_conv1")
    assert str(path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.skipif(not os.path.exists(SHARED_WEIGHTS), reason="../shared/weights is not beside the repo")
def test_shared_block1_to_block3_weights_load_and_pick_their_recipe():
    assert vgg.covered_layers(SHARED_WEIGHTS)[-1] == "block3_conv4"
    assert recipes.for_weights(SHARED_WEIGHTS) is recipes.BLOCKS_1_TO_3
    recipe = recipes.BLOCKS_1_TO_3
    net = vgg.build_loss_network(SHARED_WEIGHTS, recipe.style_layers, recipe.content_layer)
    with np.load(SHARED_WEIGHTS) as arrays:
        np.testing.assert_array_equal(net.get_layer("block3_conv1").get_weights()[0], arrays["block3_conv1/kernel"])
    with pytest.raises(vgg.LossNetworkError, match="block4_conv2"):
        vgg.build_loss_network(SHARED_WEIGHTS)  # the full recipe's layers


def test_recipe_follows_the_layers_the_weights_cover(tmp_path):
    assert recipes.for_weights("random") is recipes.FULL_VGG19
    assert recipes.for_layers(vgg.CONV_LAYERS[:8]) is recipes.BLOCKS_1_TO_3


def test_packaged_blocks_1_to_3_are_the_default_when_the_full_file_is_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv(vgg.WEIGHTS_ENV, raising=False)
    assert vgg.resolve_weights("auto") == vgg.PACKAGED_BLOCKS_1_TO_3
    assert recipes.for_weights("auto") is recipes.BLOCKS_1_TO_3
    cached = tmp_path / "full.h5"
    cached.write_bytes(b"not the file")
    monkeypatch.setenv(vgg.WEIGHTS_ENV, str(cached))
    with pytest.raises(vgg.WeightsError, match="md5"):  # a cached full file is used, so it is checked
        vgg.resolve_weights("auto")


def test_a_missing_weights_file_is_an_error_before_any_recipe():
    with pytest.raises(vgg.WeightsError, match="nowhere.npz: no such VGG19 weights file"):
        recipes.complete("nowhere.npz")


PACKAGED_SHA256 = "e51cd42ed0d73b2dbbc60667176fd387a8bec1efa766681eff129d51e0b5f33b"


def test_packaged_blocks_1_to_3_load_as_float32():
    recipe = recipes.BLOCKS_1_TO_3
    net = vgg.build_loss_network(vgg.PACKAGED_BLOCKS_1_TO_3, recipe.style_layers, recipe.content_layer)
    kernel = net.get_layer("block1_conv1").get_weights()[0]
    assert kernel.dtype == np.float32 and kernel.shape == (3, 3, 3, 64)
    with open(vgg.PACKAGED_BLOCKS_1_TO_3, "rb") as f:  # the file tfstyle/weights/README.md describes
        assert hashlib.sha256(f.read()).hexdigest() == PACKAGED_SHA256


@pytest.mark.skipif(not os.path.exists(SHARED_WEIGHTS), reason="../shared/weights is not beside the repo")
def test_packaged_blocks_1_to_3_equal_the_shared_file_rounded_to_float16():
    with np.load(SHARED_WEIGHTS) as shared, np.load(vgg.PACKAGED_BLOCKS_1_TO_3) as packaged:
        assert sorted(shared.files) == sorted(packaged.files)
        for key in shared.files:
            np.testing.assert_array_equal(packaged[key], shared[key].astype(np.float16), err_msg=key)
