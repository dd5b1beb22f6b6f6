"""Multi-style networks: conditional instance norm, training, adding a style (tiny images, random VGG19)."""

import dataclasses
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfstyle import models, multistyle, training
from tfstyle.callbacks import save_weights_atomically
from tfstyle.transformer import ConditionalInstanceNormalization, InstanceNormalization, build_transformer

TINY = training.TrainConfig(style="mosaic,candy", style_size=32, vgg_weights="random", batch_size=4, steps=10)


def images(n=2, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype(np.float32)


def randomize_rows(model, seed=0):
    """Distinct scale / offset rows per style (a fresh net has all rows equal)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, ConditionalInstanceNormalization):
            layer.scale.assign(rng.uniform(0.5, 1.5, layer.scale.shape).astype(np.float32))
            layer.offset.assign(rng.normal(0, 0.3, layer.offset.shape).astype(np.float32))


def test_conditional_norm_with_one_style_selected_is_the_plain_instance_norm():
    x = np.random.default_rng(1).normal(3.0, 2.0, size=(2, 5, 6, 4)).astype(np.float32)
    conditional = ConditionalInstanceNormalization(3)
    conditional.build([x.shape, (2, 3)])
    conditional.scale.assign(np.random.default_rng(2).uniform(0.5, 2, (3, 4)).astype(np.float32))
    conditional.offset.assign(np.random.default_rng(3).normal(0, 1, (3, 4)).astype(np.float32))
    plain = InstanceNormalization()
    plain.build(x.shape)
    for style in range(3):
        plain.scale.assign(conditional.scale[style])
        plain.offset.assign(conditional.offset[style])
        one_hot = tf.one_hot([style, style], 3)
        np.testing.assert_array_equal(conditional([x, one_hot]).numpy(), plain(x).numpy())


def test_one_hot_network_equals_the_single_style_network_and_a_blend_mixes_in_norm_space():
    keras.utils.set_random_seed(0)
    multi = build_transformer(num_styles=2)
    randomize_rows(multi)
    x = images()
    outputs = {}
    for name, w in {"a": [1.0, 0.0], "b": [0.0, 1.0], "mix": [0.5, 0.5]}.items():
        outputs[name] = multi([x, np.tile(np.float32(w), (len(x), 1))]).numpy()
        np.testing.assert_allclose(outputs[name], multistyle.single_style(multi, w)(x).numpy(), atol=1e-3)
    pixel_mix = 0.5 * outputs["a"] + 0.5 * outputs["b"]
    assert np.abs(outputs["mix"] - pixel_mix).mean() > 1.0  # norm-space blending is not a pixel fade
    multi.row_names = ("a", "b")
    np.testing.assert_array_equal(multistyle.single_style(multi, "b")(x).numpy(),
                                  multistyle.single_style(multi, [0.0, 1.0])(x).numpy())
    with pytest.raises(multistyle.StyleWeightsError, match="unknown style 'c'"):
        multistyle.single_style(multi, "c")


def test_blend_specs_and_bad_weights():
    names = ["mosaic", "candy", "starry_night"]
    assert multistyle.parse_blend("mosaic:0.7,candy:0.3", names) == pytest.approx([0.7, 0.3, 0.0])
    assert multistyle.parse_blend("candy", names) == [0.0, 1.0, 0.0]
    assert multistyle.parse_blend("mosaic:2,candy:2", names) == [0.5, 0.5, 0.0]
    for spec, words in [("mosaic:-1", ">= 0"), ("scream", "unknown style 'scream'"), ("mosaic:0", "all style weights"),
                        ("mosaic:nan", "finite"), ("mosaic:x", "not a number"), ("mosaic,mosaic", "twice")]:
        with pytest.raises(multistyle.StyleWeightsError, match=words):
            multistyle.parse_blend(spec, names)
    with pytest.raises(multistyle.StyleWeightsError, match="2 style weight.*3 style"):
        multistyle.check_weights([1, 0], names)
    # Strength: towards the identity row when there is one, else a pixel fade.
    assert multistyle.row_weights([1.0, 0.0], 0.25, ["a", "b", "photo"]) == ([0.25, 0.0, 0.75], 1.0)
    assert multistyle.row_weights([1.0, 0.0], 0.25, ["a", "b"]) == ([1.0, 0.0], 0.25)
    with pytest.raises(multistyle.StyleWeightsError, match="strength"):
        multistyle.row_weights([1.0, 0.0], 1.5, ["a", "b"])


def test_style_ids_go_round_robin_over_the_examples():
    ds = tf.data.Dataset.from_tensors(tf.zeros((4, 2, 2, 3))).repeat(3)
    ids = [b[1].numpy().tolist() for b in training.with_style_ids(ds, [0, 1, 2], 4)]
    assert ids == [[0, 1, 2, 0], [1, 2, 0, 1], [2, 0, 1, 2]]


def test_multi_style_training_logs_a_loss_per_style(photo_batch):
    model = training.build_model(dataclasses.replace(TINY, identity_style=True))
    assert model.transformer.row_names == ("mosaic", "candy", "photo")
    logs = model.train_on_batch(photo_batch, np.array([0, 1, 2, 0]), return_dict=True)
    assert {"style_mosaic", "style_candy", "style_photo", "loss"} <= set(logs)
    assert all(np.isfinite(v) for v in logs.values())
    # The identity row has no style loss: its images are scored on content and TV only.
    per_image, _ = model.per_image_losses(photo_batch, style_ids=tf.constant([2, 2, 2, 2]))
    assert np.all(per_image["style"].numpy() == 0)


def test_style_scales_weigh_each_styles_gram_loss(tmp_path, photo_batch):
    plain = training.build_model(TINY)
    scaled = training.build_model(dataclasses.replace(TINY, style_scales=(1.0, 3.0)))
    scaled.transformer.set_weights(plain.transformer.get_weights())
    ids = tf.constant([0, 1, 0, 1])
    a, _ = plain.per_image_losses(photo_batch, style_ids=ids)
    b, _ = scaled.per_image_losses(photo_batch, style_ids=ids)
    np.testing.assert_allclose(b["style"].numpy(), a["style"].numpy() * [1, 3, 1, 3], rtol=1e-5)
    np.testing.assert_allclose(b["content"].numpy(), a["content"].numpy(), rtol=1e-5)
    for bad, message in (((1.0,), "one factor per --style value"), ((1.0, 0.0), "must be positive"),
                         ((1.0, float("nan")), "must be positive")):
        with pytest.raises(training.TrainingError, match=message):
            training.validate(dataclasses.replace(TINY, style_scales=bad))
    with pytest.raises(training.TrainingError, match="one style takes --style_weight"):
        training.validate(dataclasses.replace(TINY, style="mosaic", style_scales=(2.0,)))
    # The scales reach what evaluation and the shipped card read: each row's own style weight.
    models.save_pretrained(plain.transformer, str(tmp_path / "m.npz"),
                           {"loss": {"style_weight": 10.0}, "style_scales": {"candy": 3.0}})
    assert models.trained_loss(str(tmp_path / "m.npz"), "candy")[0]["style_weight"] == 30.0
    assert models.trained_loss(str(tmp_path / "m.npz"), "mosaic")[0]["style_weight"] == 10.0


def test_multi_style_step_under_mirrored_strategy(photo_batch):
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 2, "conftest must configure two logical CPUs"
    # Reduction through one device: collective all-reduce keys of an earlier MirroredStrategy in the same
    # process (test_model.py) would clash with this network's other variable sizes.
    strategy = tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
    model = training.build_model(TINY, strategy)
    before = [w.copy() for w in model.transformer.get_weights()]
    ds = training.with_style_ids(tf.data.Dataset.from_tensors(photo_batch).repeat(), [0, 1], 4)
    history = model.fit(ds, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False).history
    assert {"style_mosaic", "style_candy"} <= set(history)
    assert np.isfinite(history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.transformer.get_weights()))


def test_weights_files_carry_the_row_names_and_single_style_files_load_as_before(tmp_path):
    keras.utils.set_random_seed(0)
    multi = build_transformer(num_styles=3)
    multi.row_names = ("mosaic", "candy", "photo")
    randomize_rows(multi)
    save_weights_atomically(multi, str(tmp_path / "multi.weights.h5"))
    loaded = models.load_transformer(str(tmp_path / "multi.weights.h5"))
    assert loaded.row_names == ("mosaic", "candy", "photo")
    w = np.tile(np.float32([0.2, 0.3, 0.5]), (2, 1))
    np.testing.assert_array_equal(loaded([images(), w]).numpy(), multi([images(), w]).numpy())
    models.save_pretrained(multi, str(tmp_path / "multi.npz"), {"steps": 1})
    assert models.load_transformer(str(tmp_path / "multi.npz")).row_names == ("mosaic", "candy", "photo")

    single = build_transformer()
    single.save_weights(str(tmp_path / "single.weights.h5"))  # as every earlier run wrote them
    again = models.load_transformer(str(tmp_path / "single.weights.h5"))
    assert len(again.inputs) == 1 and not hasattr(again, "row_names")
    np.testing.assert_array_equal(again(images()).numpy(), single(images()).numpy())


def test_adding_a_style_leaves_the_other_styles_bit_identical(tmp_path, photo_batch):
    keras.utils.set_random_seed(0)
    base = build_transformer(num_styles=3)
    base.row_names = ("mosaic", "candy", "photo")
    randomize_rows(base)
    path = str(tmp_path / "base.weights.h5")
    save_weights_atomically(base, path)

    config = dataclasses.replace(TINY, style="starry_night", add_to=path, lr=1e-2, lr_schedule="constant")
    model = training.build_model(config)
    net = model.transformer
    assert net.row_names == ("mosaic", "candy", "starry_night", "photo")
    assert model.train_rows == [2]
    assert {v.path.split("/")[-1] for v in net.trainable_variables} == {"scale", "offset"}
    x = images(1, 48)

    def out(net, weights):
        return net([x, np.float32([weights])]).numpy()

    before = {k: out(net, w) for k, w in {"mosaic": [1, 0, 0, 0], "candy": [0, 1, 0, 0], "photo": [0, 0, 0, 1],
                                          "new": [0, 0, 1, 0]}.items()}
    np.testing.assert_array_equal(before["mosaic"], out(base, [1, 0, 0]))
    convs = [w.numpy().copy() for w in net.non_trainable_weights]
    for _ in range(2):
        model.train_on_batch(photo_batch)
    for name, weights in {"mosaic": [1, 0, 0, 0], "candy": [0, 1, 0, 0], "photo": [0, 0, 0, 1]}.items():
        np.testing.assert_array_equal(out(net, weights), before[name])
    assert not np.array_equal(out(net, [0, 0, 1, 0]), before["new"])
    for a, b in zip(convs, net.non_trainable_weights):
        np.testing.assert_array_equal(a, b.numpy())


def test_init_from_a_single_style_network_starts_every_row_from_it_and_trains_the_convs(tmp_path):
    keras.utils.set_random_seed(0)
    single = build_transformer()
    for layer in single.layers:
        if isinstance(layer, InstanceNormalization):
            layer.offset.assign(np.random.default_rng(0).normal(0, 0.3, layer.offset.shape).astype(np.float32))
    path = str(tmp_path / "mosaic.weights.h5")
    single.save_weights(path)
    model = training.build_model(dataclasses.replace(TINY, identity_style=True, init_from=path))
    net = model.transformer
    assert net.row_names == ("mosaic", "candy", "photo") and model.train_rows == [0, 1, 2]
    x = images(1, 40)
    for row in range(3):  # every row starts as the single-style network
        np.testing.assert_allclose(net([x, np.eye(3, dtype=np.float32)[row:row + 1]]).numpy(), single(x).numpy(),
                                   atol=1e-3)
    assert len(net.trainable_variables) == len(single.trainable_variables)  # the convs learn too
    save_weights_atomically(net, str(tmp_path / "multi.weights.h5"))
    with pytest.raises(training.TrainingError, match="a multi-style network"):
        training.build_model(dataclasses.replace(TINY, style="mosaic", init_from=str(tmp_path / "multi.weights.h5")))


def test_multi_style_under_mixed_precision_and_gradient_accumulation(photo_batch, float32_policy):
    from tfstyle import distribution

    model = training.build_model(dataclasses.replace(TINY, accum_steps=2))
    start = [w.copy() for w in model.transformer.get_weights()]
    model.train_on_batch(photo_batch[:2], np.array([0, 1]))
    assert all(np.array_equal(a, b) for a, b in zip(start, model.transformer.get_weights()))
    model.train_on_batch(photo_batch[2:], np.array([1, 0]))
    assert int(model.optimizer.iterations) == 1
    distribution.set_precision("mixed_float16")
    mixed = training.build_model(TINY)
    assert isinstance(mixed.optimizer, keras.optimizers.LossScaleOptimizer)
    logs = mixed.train_on_batch(photo_batch, np.array([0, 1, 0, 1]), return_dict=True)
    assert np.isfinite(logs["loss"]) and np.isfinite(logs["style_candy"])


def test_train_then_add_a_style_end_to_end(tmp_path):
    import json
    import shutil

    from conftest import TRAIN_DIR
    from tfstyle.images import list_images

    photos = tmp_path / "photos"
    photos.mkdir()
    for path in list_images(TRAIN_DIR)[:3]:
        shutil.copy(path, photos)
    config = dataclasses.replace(TINY, data_dir=str(photos), runs_dir=str(tmp_path / "runs"), image_size=32,
                                 batch_size=3, steps=1, identity_style=True, preview_every=1, log_every=1)
    final = training.train(config)
    assert final == str(tmp_path / "runs" / "mosaic-candy-photo" / "transformer.weights.h5")
    assert json.load(open(tmp_path / "runs" / "mosaic-candy-photo" / "config.json"))["style_names"] == ["mosaic", "candy"]
    added = training.train(dataclasses.replace(config, style="starry_night", identity_style=False,
                                               add_to=os.path.dirname(final)))
    net = models.load_transformer(added)
    assert net.row_names == ("mosaic", "candy", "starry_night", "photo")
    before = models.load_transformer(final)
    x = images(1, 40)
    for old, new in (([1, 0, 0], [1, 0, 0, 0]), ([0, 1, 0], [0, 1, 0, 0]), ([0, 0, 1], [0, 0, 0, 1])):
        np.testing.assert_array_equal(net([x, np.float32([new])]).numpy(), before([x, np.float32([old])]).numpy())


def test_blend_strength_pictures_dial_strength_in_norm_space_and_as_a_pixel_fade():
    import sys

    from conftest import REPO

    sys.path.insert(0, os.path.join(REPO, "bench"))
    import blend_strength

    from tfstyle.stylize import KerasStylizer

    keras.utils.set_random_seed(0)
    net = build_transformer(num_styles=3)
    net.row_names = ("mosaic", "candy", "photo")
    randomize_rows(net)
    photo = images(1, 24)[0].round().astype(np.uint8)
    rows = blend_strength.dial_rows(KerasStylizer(net), photo, "mosaic", "candy")
    assert [len(tiles) for _, tiles in rows] == [5, 5, 5]
    (_, norm_space), (_, fade), (_, blend) = rows
    np.testing.assert_array_equal(fade[0][1], photo)  # a fade at 0 is the photo itself
    np.testing.assert_array_equal(norm_space[-1][1], fade[-1][1])  # at 1 both are the full style
    np.testing.assert_array_equal(blend[0][1], fade[-1][1])
    assert np.abs(norm_space[2][1].astype(int) - fade[2][1]).mean() > 1  # half-way: not a pixel fade
    sheet = blend_strength.render(rows)
    assert sheet.shape == (3 * (24 + 2 * blend_strength.LABEL_HEIGHT), 5 * 24, 3)


def test_a_blend_without_model_finds_a_run_then_a_shipped_multi_style_network(tmp_path, monkeypatch):
    from tfstyle import stylize

    keras.utils.set_random_seed(0)
    net = build_transformer(num_styles=3)
    net.row_names = ("mosaic", "candy", "photo")
    shipped = tmp_path / "pretrained"
    models.save_pretrained(net, str(shipped / "mosaic-candy-photo.npz"), {"steps": 1})
    monkeypatch.setattr(models, "PRETRAINED_DIR", str(shipped))
    runs = tmp_path / "runs"
    assert stylize.find_multi_style_network("mosaic:0.7,candy:0.3", str(runs)) == str(shipped / "mosaic-candy-photo.npz")
    save_weights_atomically(net, str(runs / "mine" / "transformer.weights.h5"))
    assert stylize.find_multi_style_network("candy,mosaic", str(runs)) == str(runs / "mine" / "transformer.weights.h5")
    assert stylize.find_multi_style_network("mosaic,starry_night", str(runs)) is None
    with pytest.raises(stylize.StylizeError, match="nor shipped network"):
        stylize.load_stylizer("mosaic,starry_night", runs_dir=str(runs))
