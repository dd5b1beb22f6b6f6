"""The pyramid style loss, its normalisation, the recipe that picks it, and the stability terms."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tfstyle import loss_terms, losses, perceptual, recipes

LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1")


@pytest.fixture(scope="module")
def blocks_net():
    from tfstyle import vgg

    return vgg.build_loss_network("random", LAYERS, "block2_conv2")


def smooth_images(n, size, seed):
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (n, size // 8, size // 8, 3)).astype(np.float32)
    return tf.image.resize(coarse, (size, size), "bicubic").numpy().clip(0, 255) + rng.normal(0, 4, (n, size, size, 3))


def test_a_downsampled_term_equals_the_single_scale_term_on_a_pre_downsampled_image(blocks_net):
    style = smooth_images(1, 64, 0).astype(np.float32)
    image = smooth_images(2, 48, 1).astype(np.float32)
    pyramid_targets = perceptual.style_grams(blocks_net, style, (1, 2))
    pyramid = perceptual.style_features(blocks_net, tf.constant(image), (1, 2))
    small_targets = perceptual.style_grams(blocks_net, losses.downsample(style, 2))
    small = perceptual.style_features(blocks_net, losses.downsample(image, 2))
    for layer in LAYERS:
        key = perceptual.level_key(layer, 2)
        np.testing.assert_allclose(pyramid_targets[key].numpy(), small_targets[layer].numpy(), rtol=1e-5)
        np.testing.assert_allclose(losses.style_loss({key: pyramid[key]}, pyramid_targets).numpy(),
                                   losses.style_loss({layer: small[layer]}, small_targets).numpy(), rtol=1e-5)
    # Level 1 is the plain single-scale loss.
    single = perceptual.style_grams(blocks_net, style)
    assert set(single) == set(LAYERS)
    np.testing.assert_allclose(pyramid_targets["block3_conv1"].numpy(), single["block3_conv1"].numpy(), rtol=1e-6)


def test_downsample_averages_blocks():
    image = np.arange(2 * 4 * 6 * 1, dtype=np.float32).reshape(2, 4, 6, 1)
    small = losses.downsample(image, 2).numpy()
    assert small.shape == (2, 2, 3, 1)
    assert small[0, 0, 0, 0] == np.mean(image[0, :2, :2, 0])


def test_normalisation_makes_terms_of_any_magnitude_comparable():
    rng = np.random.default_rng(2)
    features = rng.uniform(0, 1, (1, 8, 8, 4)).astype(np.float32)
    target = losses.gram_matrix(rng.uniform(0, 1, (1, 8, 8, 4)).astype(np.float32))
    raw = [losses.style_loss({"x": features * k}, {"x": target * k * k}).numpy()[0] for k in (1.0, 100.0)]
    normalized = [losses.style_loss({"x": features * k}, {"x": target * k * k}, normalize=True).numpy()[0]
                  for k in (1.0, 100.0)]
    assert raw[1] / raw[0] == pytest.approx(1e8, rel=1e-3)  # unnormalised, a 100x larger layer swamps the rest
    assert normalized[1] == pytest.approx(normalized[0], rel=1e-4)  # normalised, both are the same relative error
    assert losses.style_loss({"x": features}, {"x": np.zeros_like(target)}, normalize=True).numpy()[0] == 0


def test_the_blocks_1_to_3_recipe_uses_the_pyramid_and_old_cards_keep_a_single_scale(tmp_path):
    assert recipes.BLOCKS_1_TO_3.style_levels[0] == 1 and len(recipes.BLOCKS_1_TO_3.style_levels) > 1
    assert recipes.BLOCKS_1_TO_3.style_normalize
    assert recipes.FULL_VGG19.style_levels == (1,) and not recipes.FULL_VGG19.style_normalize
    _, filled = recipes.complete("random", style_levels=["1", "2"], stroke_scale=2.0)
    assert filled["style_levels"] == (1, 2) and recipes.style_image_size(filled) == 2 * filled["style_size"]
    from tfstyle import models

    loss, _ = models.trained_loss(models.pretrained_path("mosaic"))
    if loss.get("style_levels") == (1,):  # a network trained before the pyramid: scored as it was trained
        assert loss["style_normalize"] is False


def test_the_style_term_scores_the_pyramid_the_perceptual_loss_does(blocks_net):
    style = smooth_images(1, 64, 3).astype(np.float32)
    photos = tf.constant(smooth_images(2, 32, 4), tf.float32)
    stylized = tf.constant(smooth_images(2, 32, 5), tf.float32)
    term = loss_terms.StyleTerm(10.0, blocks_net, style, levels=(1, 2), normalize=True)
    features = {"stylized": blocks_net(stylized), "photo": blocks_net(photos)}
    batch = loss_terms.Batch(photos, stylized, None, features)
    grams = perceptual.style_grams(blocks_net, style, (1, 2))
    expected = perceptual.weighted_losses(features["stylized"], stylized, features["photo"]["content"], grams,
                                          content_weight=0, style_weight=10.0, tv_weight=0, style_levels=(1, 2),
                                          style_normalize=True, loss_network=blocks_net)["style"]
    np.testing.assert_allclose(term.score(batch).numpy(), expected.numpy(), rtol=1e-5)


def shifted_batch(network, size=48, seed=6):
    photos = tf.constant(smooth_images(2, size, seed), tf.float32)
    return loss_terms.Batch(photos, tf.cast(network(photos), tf.float32), network)


@pytest.mark.parametrize("term", [loss_terms.NoiseStabilityTerm(1.0, sigma=4.0), loss_terms.ShiftStabilityTerm(1.0)])
def test_stability_terms_are_zero_for_a_network_that_commutes_and_positive_otherwise(term):
    tf.random.set_seed(0)
    if isinstance(term, loss_terms.NoiseStabilityTerm):
        steady = lambda x: tf.zeros_like(x) + 128.0  # noqa: E731  (ignores its input, so ignores the noise)
    else:
        steady = lambda x: 0.5 * x + 10.0  # noqa: E731  (pixel-wise, so it moves with the photo)
    ramp = tf.cast(tf.range(48), tf.float32)[None, :, None, None] * 3.0
    fixed_pattern = lambda x: 0.5 * x + ramp  # noqa: E731  (a pattern glued to the frame: moves neither way)
    assert float(tf.reduce_max(term.score(shifted_batch(steady)))) < 1e-6
    assert float(tf.reduce_min(term.score(shifted_batch(fixed_pattern)))) > 1.0


def test_the_training_config_adds_the_terms_it_names(blocks_net):
    from tfstyle import training
    from tfstyle.config import TrainConfig

    config = training.with_recipe(dataclasses.replace(TrainConfig(vgg_weights="random", style_size=64),
                                                      noise_stability_weight=5.0, shift_stability_weight=2.0,
                                                      dark_mass_weight=1.0))
    terms = training.loss_terms(config, blocks_net, smooth_images(1, 64, 7).astype(np.float32))
    assert [t.name for t in terms] == ["content", "style", "tv", "noise_stability", "shift_stability", "dark_mass"]


def test_dark_mass_costs_a_black_blob_over_a_bright_photo_not_thin_strokes_nor_a_dark_photo():
    term = loss_terms.DarkMassTerm(1.0, block=8)
    bright = np.full((1, 64, 64, 3), 200.0, np.float32)
    blob = bright.copy()
    blob[:, 16:40, 16:40] = 0.0  # a 24 px black mass
    strokes = bright.copy()
    strokes[:, :, ::8] = 0.0  # 1 px black lines every 8 px: as much black per block as a stroke pattern has
    strokes[:, ::8, :] = 0.0
    score = lambda photo, output: float(term.score(loss_terms.Batch(tf.constant(photo), tf.constant(output), None))[0])  # noqa: E731
    assert score(bright, bright) == 0.0
    assert score(bright, strokes) == 0.0
    assert score(bright, blob) > 1000.0
    assert score(np.zeros_like(bright), blob) == 0.0  # the photo is black there too: not a droplet


def test_a_crop_too_small_for_the_coarsest_level_is_a_one_line_error(tmp_path):
    from tfstyle import training
    from tfstyle.config import TrainConfig

    config = TrainConfig(vgg_weights="random", image_size=16, style_levels=(1, 2, 4, 8), runs_dir=str(tmp_path),
                         data_dir=str(tmp_path))
    with pytest.raises(training.TrainingError, match="--image_size: 16 px is too small for style level 8"):
        training.train(config)


def test_a_style_image_too_small_for_the_coarsest_level_is_a_one_line_error():
    from tfstyle import training
    from tfstyle.config import TrainConfig

    config = TrainConfig(vgg_weights="random", style_size=32, style_levels=(1, 2, 4, 8))
    with pytest.raises(training.TrainingError, match="--style_size: 2[0-9] px is too small for style level 8"):
        training.build_model(config)
