"""One answer to what ``--style`` means, in every command (``models.find_network``, ``models.style_image``)."""

import json
import os

import keras
import pytest
from PIL import Image

from conftest import REPO, run_tfstyle
from tfstyle import models, styles
from tfstyle.transformer import build_transformer


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run 'udnie' trained on a painting outside the bundle, and a run stopped at a checkpoint."""
    base = tmp_path_factory.mktemp("resolver")
    keras.utils.set_random_seed(3)
    net = build_transformer(width=0.25, residual_blocks=1)
    painting = base / "udnie.jpg"
    os.link(os.path.join(styles.STYLES_DIR, "candy.jpg"), painting)
    (base / "runs" / "udnie").mkdir(parents=True)
    net.save_weights(str(base / "runs" / "udnie" / "transformer.weights.h5"))
    (base / "runs" / "udnie" / "config.json").write_text(json.dumps({"style": str(painting)}))
    (base / "runs" / "half" / "checkpoints").mkdir(parents=True)
    net.save_weights(str(base / "runs" / "half" / "checkpoints" / "transformer_step0000002.weights.h5"))
    return base


def test_the_same_network_and_painting_for_every_kind_of_name(runs):
    run_dir, saved = str(runs / "runs"), str(runs / "saved")
    assert models.find_network("udnie", run_dir, saved) == str(runs / "runs" / "udnie" / "transformer.weights.h5")
    assert models.style_image("udnie", run_dir) == str(runs / "udnie.jpg")
    assert models.find_network("mosaic", run_dir, saved) == models.pretrained_path("mosaic")
    assert "udnie" in models.trained_styles(run_dir, saved) and "mosaic" in models.trained_styles(run_dir, saved)


def test_a_painting_without_a_network_says_how_to_train_one(runs):
    with pytest.raises(models.ModelError) as e:
        models.find_network("starry_night", str(runs / "runs"), str(runs / "saved"), model_flag="--model")
    assert str(e.value) == ("no trained network for starry_night; train one with "
                            "`tfstyle train --style=starry_night --data_dir=PHOTOS`")


def test_a_stopped_run_names_the_commands_own_flag(runs):
    with pytest.raises(models.ModelError, match="pass --model=.*transformer_step0000002"):
        models.find_network("half", str(runs / "runs"), None, model_flag="--model")


def test_an_unknown_name_lists_trained_styles_and_paintings(runs):
    with pytest.raises(styles.UnknownStyleError) as e:
        models.find_network("nonexistent", str(runs / "runs"), str(runs / "saved"))
    message = str(e.value)
    assert message.startswith("unknown style 'nonexistent': trained styles here: ")
    trained, paintings = message.split("; paintings to train one on: ")
    assert "udnie" in trained.split(", ") and "mosaic" in trained.split(", ") and "starry_night" not in trained.split(", ")
    assert "starry_night" in paintings
    with pytest.raises(styles.UnknownStyleError) as e2:
        models.style_image("nonexistent", str(runs / "runs"), str(runs / "saved"))
    assert str(e2.value) == message


@pytest.mark.slow
@pytest.mark.parametrize("command", ["export", "evaluate"])
def test_commands_give_the_same_answer_for_a_painting_without_a_network(command, tmp_path):
    args = {"export": [f"--out={tmp_path}"], "evaluate": [f"--out={tmp_path}/e.md"]}[command]
    result = run_tfstyle(command, "--style=la_muse", f"--runs_dir={tmp_path}", *args, cwd=str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == ("error: no trained network for la_muse; train one with "
                                                      "`tfstyle train --style=la_muse --data_dir=PHOTOS`")


@pytest.mark.slow
def test_stylize_takes_a_painting_without_a_network_through_the_any_painting_network(tmp_path):
    result = run_tfstyle("stylize", "--style=la_muse", f"--runs_dir={tmp_path}", "--max_size=64",
                         os.path.join(REPO, "tfstyle", "samples", "kodim03.jpg"), str(tmp_path / "o.jpg"), cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no trained network for la_muse: using the any-painting network" in result.stderr
    assert "tfstyle train --style=la_muse --data_dir=PHOTOS" in result.stderr
    assert max(Image.open(tmp_path / "o.jpg").size) == 64
