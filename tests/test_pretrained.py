"""The trained styles shipped in tfstyle/pretrained/: they load, reproduce their stored outputs, and export."""

import os

import numpy as np
import pytest

from conftest import run_tfstyle
from tfstyle import models

SHIPPED = models.pretrained_styles()
REFERENCES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def test_shipped_styles_have_cards_and_references():
    for style in SHIPPED:
        card = models.pretrained_card(models.pretrained_path(style))
        assert card["style"] == style and card["steps"] > 0 and card["summary"]
        assert card["loss_network"] != "random"  # shipped styles come from a genuine loss network
        assert os.path.getsize(models.pretrained_path(style)) <= 4_000_000
        assert os.path.isfile(os.path.join(REFERENCES, f"{style}_reference.npz"))


@pytest.mark.parametrize("style", SHIPPED)
def test_shipped_style_reproduces_its_reference_output(style):
    reference = np.load(os.path.join(REFERENCES, f"{style}_reference.npz"))
    model = models.load_transformer(models.pretrained_path(style))
    inputs = reference["input"][None].astype(np.float32)
    if "style_weights" in reference:  # a multi-style network: an even blend of its styles
        inputs = [inputs, reference["style_weights"]]
    out = np.clip(np.round(model(inputs)[0].numpy()), 0, 255)
    diff = np.abs(out - reference["output"].astype(np.float32))
    # Float32 sums round differently on other CPUs: a level here and there, never a different picture.
    assert diff.max() <= 3 and diff.mean() < 0.1, (diff.max(), diff.mean())


def test_float16_storage_round_trips_the_weights(tmp_path):
    from tfstyle.transformer import build_transformer

    model = build_transformer()
    path = str(tmp_path / "s.npz")
    models.save_pretrained(model, path, {"style": "s", "summary": "test", "steps": 1})
    loaded = models.load_transformer(path)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)  # float16: 11 significant bits
    assert models.pretrained_card(path)["summary"] == "test"


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED, reason="no trained style ships yet")
def test_stylize_and_export_work_right_after_install_with_no_training(tmp_path):
    from PIL import Image

    style = SHIPPED[0]
    photo = tmp_path / "photo.png"
    Image.fromarray(np.load(os.path.join(REFERENCES, f"{style}_reference.npz"))["input"]).save(photo)
    empty = tmp_path / "no_runs"
    result = run_tfstyle("stylize", f"--style={style}", f"--runs_dir={empty}", f"--saved_models={empty}", str(photo),
                         str(tmp_path / "out.jpg"), cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(tmp_path / "out.jpg").size == (56, 40)
    result = run_tfstyle("export", f"--style={style}", f"--runs_dir={empty}", f"--out={tmp_path / 'exports'}",
                         "--tflite=", cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert models.is_savedmodel_dir(str(tmp_path / "exports" / style / "1"))
    assert f"wrote SavedModel  {tmp_path / 'exports' / style / '1'}" in result.stdout
    assert all(line.startswith("wrote ") for line in result.stdout.splitlines())  # no converter chatter
    assert "Saved artifact" not in result.stderr and "signature_serialization" not in result.stderr
