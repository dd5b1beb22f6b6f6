"""Slim networks (``--width``, ``--residual_blocks``) and distillation from a teacher (``--teacher``)."""

import dataclasses
import os

import keras
import numpy as np
import pytest

from tfstyle import export, models, tflite, training
from tfstyle.transformer import architecture, architecture_of_kernels, build_transformer, kernel_shapes_of

TINY = training.TrainConfig(style="mosaic", init_from="", style_size=32, vgg_weights="random", batch_size=4, steps=10,
                            lr_schedule="constant", lr=2e-3)


def conv_filters(model):
    return {layer.name: layer.filters for layer in model.layers if layer.name.endswith("_conv")}


def test_width_scales_every_conv_but_the_output_and_keeps_height_and_width():
    full, slim = build_transformer(), build_transformer(width=0.5, residual_blocks=2)
    full_filters, slim_filters = conv_filters(full), conv_filters(slim)
    assert slim_filters["out_conv"] == full_filters["out_conv"] == 3
    for name, filters in slim_filters.items():
        if name != "out_conv":
            assert filters * 2 == full_filters[name], name
    assert "res3_a_conv" not in slim_filters and "res5_b_conv" in full_filters
    assert slim.count_params() < full.count_params() / 6
    image = np.random.default_rng(0).uniform(0, 255, (1, 37, 50, 3)).astype(np.float32)
    assert slim(image).shape == (1, 37, 50, 3)
    assert architecture(slim) == {"width": 0.5, "residual_blocks": 2}


@pytest.mark.parametrize("width,blocks", [(0.25, 0), (0.75, 3), (1.0, 5)])
def test_architecture_is_read_back_from_kernel_shapes(width, blocks):
    model = build_transformer(width=width, residual_blocks=blocks)
    kernels = [tuple(w.shape) for w in model.weights if len(w.shape) == 4]
    assert kernels == kernel_shapes_of(width, blocks)
    assert architecture_of_kernels(kernels) == {"width": width, "residual_blocks": blocks}


def test_kernel_shapes_of_no_transformer_are_refused():
    with pytest.raises(ValueError, match="not a transformer"):
        architecture_of_kernels([(3, 3, 3, 8)] * 4)
    shapes = kernel_shapes_of(0.5, 2)
    shapes[3] = (3, 3, 64, 32)
    with pytest.raises(ValueError, match="do not match"):
        architecture_of_kernels(shapes)


def test_slim_weights_load_from_h5_npz_and_savedmodel(tmp_path):
    keras.utils.set_random_seed(3)
    slim = build_transformer(width=0.25, residual_blocks=1)
    image = np.random.default_rng(1).uniform(0, 255, (1, 24, 28, 3)).astype(np.float32)
    expected = slim(image).numpy()
    slim.save_weights(str(tmp_path / "slim.weights.h5"))
    models.save_pretrained(slim, str(tmp_path / "slim.npz"), {"style": "slim"})
    saved = export.export_savedmodel(slim, str(tmp_path / "exports"), "slim")
    for loaded in (models.load_transformer(str(tmp_path / "slim.weights.h5")),
                   models.load_transformer(str(tmp_path / "slim.npz")),
                   models.weights_from_savedmodel(saved)):
        assert architecture(loaded) == {"width": 0.25, "residual_blocks": 1}
        np.testing.assert_allclose(loaded(image).numpy(), expected, atol=1.0)  # npz holds float16


@pytest.mark.slow
def test_width_half_exports_to_integer_only_int8():
    keras.utils.set_random_seed(2)
    net = build_transformer(width=0.5, residual_blocks=2)
    calibration = [np.random.default_rng(i).uniform(0, 255, (1, 48, 48, 3)).astype(np.float32) for i in range(4)]
    report = tflite.check_integer_only(tflite.convert(net, "int8", calibration))
    assert report["float_ops"] == [] and report["custom_ops"] == [] and report["io_types"] == ["uint8"]


def teacher_network():
    keras.utils.set_random_seed(5)
    teacher = build_transformer(width=0.5, residual_blocks=1)
    kernel, bias = teacher.get_layer("out_conv").get_weights()  # graded outputs, not a saturated tanh
    teacher.get_layer("out_conv").set_weights([kernel * 0.05, bias])
    return teacher


def test_distillation_loss_falls_on_a_tiny_run(photo_batch, tmp_path):
    teacher_path = str(tmp_path / "teacher.weights.h5")
    teacher_network().save_weights(teacher_path)
    config = dataclasses.replace(TINY, width=0.25, residual_blocks=1, teacher=teacher_path, distill_weight=1e3)
    model = training.build_model(config)
    assert architecture(model.transformer) == {"width": 0.25, "residual_blocks": 1}
    before = model.evaluate(photo_batch, batch_size=4, verbose=0, return_dict=True)
    teacher = next(term.teacher for term in model.terms if term.name == "distill")
    teacher_before = [w.copy() for w in teacher.get_weights()]
    for _ in range(10):
        model.train_on_batch(photo_batch)
    after = model.evaluate(photo_batch, batch_size=4, verbose=0, return_dict=True)
    assert set(after) == {"loss", "content", "style", "tv", "distill"}
    assert after["distill"] < 0.7 * before["distill"], (before, after)
    for a, b in zip(teacher_before, teacher.get_weights()):
        np.testing.assert_array_equal(a, b)  # the teacher is frozen


def test_pure_distillation_skips_the_loss_network(photo_batch, tmp_path):
    """Content and style weights 0: the VGG19 is never called (its cost is most of a step)."""
    teacher_path = str(tmp_path / "teacher.weights.h5")
    teacher_network().save_weights(teacher_path)
    config = dataclasses.replace(TINY, width=0.25, residual_blocks=1, teacher=teacher_path, distill_weight=1.0,
                                 content_weight=0.0, style_weight=0.0)
    model = training.build_model(config)

    def refuse(*args, **kwargs):
        raise AssertionError("the loss network ran")

    model.loss_network.call = refuse
    values = model.train_on_batch(photo_batch, return_dict=True)
    assert values["content"] == 0 and values["style"] == 0 and values["distill"] > 0


def test_run_name_marks_a_slim_network_so_it_never_overwrites_the_full_one():
    assert training.run_name(TINY) == "mosaic"
    assert training.run_name(dataclasses.replace(TINY, width=0.25, residual_blocks=3)) == "mosaic_w25_b3"
    assert training.run_name(dataclasses.replace(TINY, width=0.5)) == "mosaic_w50"
    assert training.run_name(dataclasses.replace(TINY, width=0.5, name="mosaic_slim")) == "mosaic_slim"


@pytest.mark.parametrize("overrides,message", [
    ({"name": "my/slim"}, "--name=my/slim"),
    ({"teacher": "mosaic", "style": "mosaic,candy"}, "single-style"),
])
def test_bad_slim_settings_are_one_line_errors(overrides, message):
    with pytest.raises(training.TrainingError, match=message):
        training.validate(dataclasses.replace(TINY, **overrides))


def test_load_network_finds_runs_exports_and_files(tmp_path):
    keras.utils.set_random_seed(4)
    net = build_transformer(width=0.25, residual_blocks=0)
    run = tmp_path / "runs" / "mine"
    os.makedirs(run)
    net.save_weights(str(run / "transformer.weights.h5"))
    saved = export.export_savedmodel(net, str(tmp_path / "exports"), "exported")
    found = {
        "run folder": models.load_network(str(run)),
        "style name": models.load_network("mine", runs_dir=str(tmp_path / "runs")),
        "export": models.load_network("exported", runs_dir=str(tmp_path / "runs"), saved_models=str(tmp_path / "exports")),
        "versions folder": models.load_network(os.path.dirname(saved)),
    }
    for label, (model, _) in found.items():
        assert architecture(model) == {"width": 0.25, "residual_blocks": 0}, label
    assert found["export"][1] == saved
    with pytest.raises(models.ModelError, match="no such file"):
        models.load_network(str(tmp_path / "missing.weights.h5"))


def test_init_from_starts_a_run_from_given_weights_and_refuses_another_architecture(tmp_path):
    keras.utils.set_random_seed(6)
    first = build_transformer(width=0.25, residual_blocks=1)
    path = str(tmp_path / "first.weights.h5")
    first.save_weights(path)
    model = training.build_model(dataclasses.replace(TINY, width=0.25, residual_blocks=1, init_from=path))
    for a, b in zip(first.get_weights(), model.transformer.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(training.TrainingError, match="--init_from"):
        training.build_model(dataclasses.replace(TINY, width=0.5, residual_blocks=1, init_from=path))


@pytest.mark.slow
def test_slim_distilled_run_from_the_command_line_then_stylize_by_its_name(tmp_path):
    import subprocess
    import sys

    from conftest import EVAL_DIR, REPO, TRAIN_DIR
    from tfstyle.images import list_images

    teacher = str(tmp_path / "teacher.weights.h5")
    teacher_network().save_weights(teacher)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    runs = str(tmp_path / "runs")
    train = subprocess.run(
        [sys.executable, "-m", "tfstyle", "train", "--style=mosaic", "--width=0.25", "--residual_blocks=1",
         f"--teacher={teacher}", f"--data_dir={TRAIN_DIR}", f"--runs_dir={runs}", "--vgg_weights=random",
         "--image_size=32", "--style_size=32", "--batch_size=2", "--steps=2", "--preview_every=0"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert train.returncode == 0, train.stderr[-3000:]
    assert "distilling from" in train.stderr and "distill" in open(os.path.join(runs, "mosaic_w25_b1", "config.json")).read()
    out = str(tmp_path / "out.png")
    stylize = subprocess.run(
        [sys.executable, "-m", "tfstyle", "stylize", "--style=mosaic_w25_b1", f"--runs_dir={runs}", "--max_size=64",
         list_images(EVAL_DIR)[0], out], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert stylize.returncode == 0, stylize.stderr[-3000:]
    assert os.path.getsize(out) > 0
