"""Quantization-aware fine-tuning: the simulated INT8 network, the way back to the original form, the command."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import TRAIN_DIR, run_tfstyle
from tfstyle import litert, models, qat, tflite

pytestmark = pytest.mark.slow  # conversions and subprocesses


@pytest.fixture(scope="module")
def network():
    """The shipped slim mosaic network: trained (a random one quantizes like noise) and small."""
    return models.load_transformer(models.pretrained_path("mosaic_slim"))


@pytest.fixture(scope="module")
def crops():
    return tflite.representative_crops(TRAIN_DIR, num_crops=8, crop_size=64)


@pytest.fixture(scope="module")
def friendly(network, crops):
    return tflite.quantization_friendly(network, crops)


@pytest.fixture(scope="module")
def photo():
    return tflite.representative_crops(TRAIN_DIR, num_crops=1, crop_size=96, seed=7)[0]


def test_unfold_returns_the_original_function(network, friendly, photo):
    unfolded = qat.unfold(friendly, network)
    assert [w.shape for w in unfolded.weights] == [w.shape for w in network.weights]
    np.testing.assert_allclose(unfolded(photo).numpy(), network(photo).numpy(), atol=0.05)  # pixel levels


def test_unfold_keeps_a_changed_weight(network, crops, photo):
    """A change made in the INT8 form reaches the original form: the same function, other weights."""
    changed = tflite.quantization_friendly(network, crops)
    conv = changed.get_layer("res1_a_conv")
    kernel, bias = conv.get_weights()
    noise = np.random.default_rng(0).normal(0.0, 0.5 * kernel.std(), kernel.shape)  # no norm cancels this
    conv.set_weights([kernel + noise.astype(np.float32), bias])
    unfolded = qat.unfold(changed, network)
    np.testing.assert_allclose(unfolded(photo).numpy(), changed(photo).numpy(), atol=0.6)  # the tanh clip
    assert np.abs(unfolded(photo).numpy() - network(photo).numpy()).max() > 1.0


def test_simulated_int8_rounds_every_quantized_tensor_as_much_as_the_int8_file(network, friendly, crops, photo):
    simulated = qat.simulated_int8(friendly, crops, range_quantile=0.75)
    quants = qat.fake_quants(simulated)
    norms = sum(isinstance(layer, tflite._FoldedInstanceNormalization) for layer in friendly.layers)  # noqa: SLF001
    assert len(quants) > 2 * norms and all(q.low <= 0.0 <= q.high and q.high > q.low for q in quants)
    out = simulated(photo).numpy()
    np.testing.assert_array_equal(out, np.round(out))  # the uint8 output's grid
    content = tflite.convert(network, "int8", crops, range_quantile=0.75)
    int8 = litert.TFLiteStylizer(model_content=content)(photo[0].astype(np.uint8)).astype(np.float32)
    reference = network(photo).numpy()[0]
    # The simulated rounding costs about what the real INT8 file's does (its noise is not the file's own).
    simulated_error, file_error = np.mean((out[0] - reference) ** 2), np.mean((int8 - reference) ** 2)
    assert file_error / 3 < simulated_error < 3 * file_error


def test_fine_tuning_lowers_the_simulated_int8_error(network, crops):
    batch = tf.constant(np.concatenate(tflite.representative_crops(TRAIN_DIR, num_crops=4, crop_size=64, seed=3)))
    friendly = tflite.quantization_friendly(network, crops)
    teacher = keras.models.clone_model(network)
    teacher.set_weights(network.get_weights())
    distiller = qat.QuantizationAwareDistiller(friendly, qat.simulated_int8(friendly, crops), teacher)
    distiller.compile(optimizer=keras.optimizers.Adam(5e-5))  # 1e-4 first jumps to 4x the starting error
    history = distiller.fit(tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=1, epochs=60, verbose=0)
    int8 = history.history["int8"]
    assert int8[-1] < 0.9 * int8[0]  # 7.87 -> about 5 on a Zen 4
    assert history.history["float"][-1] < int8[0]  # the float output stays near the original


def run_command(*args):
    return run_tfstyle("qat", *args, timeout=600)


def test_command_writes_float16_weights_with_the_fine_tuning_card(tmp_path):
    out = tmp_path / "mosaic_slim_qat.npz"
    result = run_command("--style=mosaic_slim", f"--data_dir={TRAIN_DIR}", "--steps=3", "--image_size=32",
                         "--batch_size=2", "--calibration_crops=4", "--calibration_size=32", f"--out={out}")
    assert result.returncode == 0, result.stderr[-2000:]
    card = models.pretrained_card(str(out))
    assert card["quantization_aware"][-1]["steps"] == 3 and card["style"] == "mosaic_slim"
    tuned = models.load_transformer(str(out))
    assert [w.shape for w in tuned.weights] == [w.shape for w in models.load_transformer(
        models.pretrained_path("mosaic_slim")).weights]


def test_a_second_round_is_listed_and_the_summary_gives_the_total():
    first = qat.card_after_round({"style": "candy", "summary": "candy, trained 800 steps"}, {"steps": 500})
    assert first["summary"].endswith("then 500 steps of quantization-aware fine-tuning for its INT8 file (tfstyle qat)")
    second = qat.card_after_round(first, {"steps": 300})
    assert second["quantization_aware"] == [{"steps": 500}, {"steps": 300}]
    assert second["summary"] == ("candy, trained 800 steps; then 800 steps of quantization-aware fine-tuning for its "
                                 "INT8 file (tfstyle qat, 2 rounds)")
    # A card written with a single round as a bare dict counts as that round.
    assert qat.card_after_round({"quantization_aware": {"steps": 500}}, {"steps": 1})["quantization_aware"] == [
        {"steps": 500}, {"steps": 1}]


@pytest.mark.parametrize("flag, message", [("--out=x.weights.h5", "written as .npz"),
                                           ("--data_dir=/nonexistent", "no such directory")])
def test_command_refuses_bad_flags_in_one_line(flag, message):
    result = run_command("--style=mosaic_slim", flag)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error:") and message in result.stderr


def test_command_on_a_folder_without_a_usable_photo_is_one_line(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    result = run_command("--style=mosaic_slim", f"--data_dir={tmp_path}", "--steps=1", f"--out={tmp_path / 'x.npz'}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error:")
