"""The training model: custom train_step, loss scaling, tf.distribute (random seeded VGG19)."""

import dataclasses
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfstyle import distribution, models, training

TINY = training.TrainConfig(style="mosaic", init_from="", style_size=32, vgg_weights="random", batch_size=4, steps=10)


def build(strategy=None, **overrides):
    return training.build_model(dataclasses.replace(TINY, **overrides), strategy)


def test_training_changes_only_transformer_weights(photo_batch):
    model = build()
    vgg_before = [w.copy() for w in model.loss_network.get_weights()]
    grams_before = [g.numpy().copy() for g in model.style_grams.values()]
    transformer_before = [w.copy() for w in model.transformer.get_weights()]
    model.train_on_batch(photo_batch)
    for a, b in zip(vgg_before, model.loss_network.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(grams_before, model.style_grams.values()):
        np.testing.assert_array_equal(a, b.numpy())
    changed = [not np.array_equal(a, b) for a, b in zip(transformer_before, model.transformer.get_weights())]
    assert all(changed)


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch(photo_batch):
    model = build(lr_schedule="constant", lr=2e-3)
    before = model.evaluate(photo_batch, batch_size=4, verbose=0, return_dict=True)
    for _ in range(8):
        model.train_on_batch(photo_batch)
    after = model.evaluate(photo_batch, batch_size=4, verbose=0, return_dict=True)
    assert set(before) == {"loss", "content", "style", "tv"}
    assert after["loss"] < 0.8 * before["loss"], (before, after)


def test_mixed_float16_step_is_finite_and_close_to_float32(photo_batch, float32_policy):
    distribution.set_precision("float32")
    reference = build().train_on_batch(photo_batch, return_dict=True)
    distribution.set_precision("mixed_float16")
    model = build()
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.transformer.get_layer("down2_conv").compute_dtype == "float16"
    mixed = model.train_on_batch(photo_batch, return_dict=True)
    assert np.isfinite(mixed["loss"])
    np.testing.assert_allclose(mixed["loss"], reference["loss"], rtol=0.05)


def test_mirrored_strategy_matches_default_strategy(photo_batch):
    """One SGD step (sensitive to how replica losses are scaled) over 2 logical CPUs vs 1 device."""
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 2, "conftest must configure two logical CPUs"
    results = []
    initial = None
    for strategy in (tf.distribute.get_strategy(), tf.distribute.MirroredStrategy(devices)):
        model = build(strategy)
        initial = initial or model.transformer.get_weights()
        with strategy.scope():
            model.compile(optimizer=keras.optimizers.SGD(1e-6))
        logs = model.fit(photo_batch, batch_size=4, epochs=1, shuffle=False, verbose=0).history
        results.append((model.transformer.get_weights(), logs["loss"][0]))
    (single, single_loss), (mirrored, mirrored_loss) = results
    assert mirrored_loss == pytest.approx(single_loss, rel=1e-5)
    update_single = np.concatenate([(a - w).ravel() for a, w in zip(single, initial)])
    update_mirrored = np.concatenate([(b - w).ravel() for b, w in zip(mirrored, initial)])
    assert np.linalg.norm(update_single) > 0
    relative = np.linalg.norm(update_single - update_mirrored) / np.linalg.norm(update_single)
    # The two runs add the same terms in another order (two half-batch gradients, then a
    # cross-replica sum; oneDNN also blocks a batch of 2 differently from one of 4). Rounding
    # noise of a float32 sum of n terms grows like sqrt(n) * eps; the longest sums here are
    # the weight gradients of the 9x9 convs, n = batch * H * W * 9 * 9 * 32 terms. Ten times
    # that (4e-3 at 32x32) leaves room for every CPU's summation order (1.6e-4 measured on
    # AMD Zen 3) and still fails a real divergence: a mis-scaled replica loss changes the
    # update by 0.5 or more.
    n = photo_batch.shape[0] * photo_batch.shape[1] * photo_batch.shape[2] * 9 * 9 * 32
    bound = 10 * np.sqrt(n) * np.finfo(np.float32).eps
    assert relative < bound, (relative, bound)


def test_gradient_accumulation_updates_every_accum_steps(photo_batch):
    model = build(accum_steps=2)
    start = [w.copy() for w in model.transformer.get_weights()]
    model.train_on_batch(photo_batch[:2])
    assert all(np.array_equal(a, b) for a, b in zip(start, model.transformer.get_weights()))
    model.train_on_batch(photo_batch[2:])
    assert not all(np.array_equal(a, b) for a, b in zip(start, model.transformer.get_weights()))
    assert int(model.optimizer.iterations) == 1  # the step counter train.py resumes from counts updates


def test_nan_loss_never_overwrites_the_last_good_backup(tmp_path, photo_batch):
    from tfstyle.callbacks import SafeBackupAndRestore

    model = build()
    backup = SafeBackupAndRestore(str(tmp_path), lambda m: 0)
    backup.set_model(model)
    backup.on_epoch_end(0, {"loss": 1.0})
    good = (tmp_path / "latest.weights.h5").read_bytes()
    backup.on_epoch_end(1, {"loss": float("nan")})
    assert model.stop_training
    assert (tmp_path / "latest.weights.h5").read_bytes() == good


def test_recipe_fills_only_unset_loss_settings(tmp_path):
    from tfstyle import recipes, vgg

    source = keras.applications.VGG19(include_top=False, weights=None)
    path = str(tmp_path / "blocks1to3.npz")
    np.savez(path, **{f"{n}/{k}": w for n in vgg.CONV_LAYERS[:8]
                      for k, w in zip(("kernel", "bias"), source.get_layer(n).get_weights())})
    config = training.with_recipe(training.TrainConfig(vgg_weights=path, tv_weight=1.0))
    assert config.style_layers == recipes.BLOCKS_1_TO_3.style_layers
    assert config.content_layer == recipes.BLOCKS_1_TO_3.content_layer
    assert config.content_weight == recipes.BLOCKS_1_TO_3.content_weight
    assert config.tv_weight == 1.0
    full = training.with_recipe(training.TrainConfig(vgg_weights="random"))
    assert full.style_layers == recipes.FULL_VGG19.style_layers and full.style_size == recipes.FULL_VGG19.style_size


def test_one_style_with_no_start_given_fine_tunes_the_packaged_network_on_the_quick_schedule():
    from tfstyle import config as settings

    quick = training.with_start(training.TrainConfig(style="painting.jpg", steps=7))
    assert quick.init_from == models.pretrained_path(settings.QUICK_START_BASE)
    assert os.path.isfile(quick.init_from)
    assert quick.steps == 7  # a setting given is kept
    assert {k: getattr(quick, k) for k in settings.SCHEDULE if k != "steps"} == {
        k: v for k, v in settings.QUICK_START.items() if k != "steps"}
    assert training.with_start(quick) == quick


@pytest.mark.parametrize("overrides", [
    {"init_from": ""},  # random weights, asked for
    {"style": "mosaic,candy"},  # a multi-style network
    {"width": 0.25},  # a slim network
    {"teacher": "mosaic"},  # distillation
    {"init_from": "some/run/transformer.weights.h5"},  # a given start keeps the long schedule
])
def test_other_runs_keep_their_start_and_the_from_scratch_schedule(overrides):
    from tfstyle import config as settings

    config = training.with_start(training.TrainConfig(**overrides))
    assert config.init_from == overrides.get("init_from", "")
    assert {k: getattr(config, k) for k in settings.SCHEDULE} == settings.FROM_SCRATCH
