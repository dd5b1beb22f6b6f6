"""The optimization method (Gatys et al.) on tiny images with the random seeded VGG19.

Random VGG weights: these tests check the optimizer, not artistic quality.
"""

import json

import numpy as np
import pytest

from conftest import run_tfstyle
from tfstyle import gatys, perceptual, recipes, styles

WEIGHTS = recipes.FULL_VGG19.loss_weights


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(0)
    content = rng.uniform(0, 255, (32, 32, 3)).astype(np.float32)
    style = styles.load_style_image("mosaic", 64)
    return content, style


def test_lbfgs_decreases_loss_monotonically(tiny, random_loss_network):
    content, style = tiny
    image, history = gatys.stylize(content, style, random_loss_network, WEIGHTS, iterations=6, record_every=1)
    totals = [h["total"] for h in history]
    assert [h["iteration"] for h in history] == list(range(7))
    assert all(b <= a * (1 + 1e-6) for a, b in zip(totals, totals[1:])), totals
    assert totals[-1] < 0.9 * totals[0]
    assert history[0]["content"] == pytest.approx(0.0, abs=1e-3)  # starts at the content photo
    assert image.shape == content.shape and image.min() >= 0 and image.max() <= 255


def test_history_matches_loss_module(tiny, random_loss_network):
    """The recorded losses are those of tfstyle.perceptual on the returned image."""
    content, style = tiny
    net = random_loss_network
    image, history = gatys.stylize(content, style, net, WEIGHTS, iterations=3, record_every=0)
    grams = perceptual.style_grams(net, style)
    targets = perceptual.content_features(net, content[None])
    values = perceptual.perceptual_losses(net, image[None], targets, grams, **WEIGHTS)
    assert history[-1]["iteration"] == 3
    for key in perceptual.LOSS_KEYS:
        assert float(values[key][0]) == pytest.approx(history[-1][key], rel=1e-3, abs=1e-2)


def test_adam_reduces_loss(tiny, random_loss_network):
    content, style = tiny
    _, history = gatys.stylize(content, style, random_loss_network, WEIGHTS, iterations=5, optimizer="adam",
                               lr=5.0, record_every=5)
    assert history[-1]["iteration"] == 5
    assert history[-1]["total"] < history[0]["total"]


def test_bad_settings_raise(tiny, random_loss_network):
    content, style = tiny
    with pytest.raises(gatys.GatysError, match="optimizer"):
        gatys.stylize(content, style, random_loss_network, WEIGHTS, iterations=1, optimizer="sgd")
    with pytest.raises(gatys.GatysError, match="iterations"):
        gatys.stylize(content, style, random_loss_network, WEIGHTS, iterations=0)


def _run(*args):
    return run_tfstyle("gatys", *args)


def test_cli_writes_image_and_history(tmp_path):
    from PIL import Image

    content = tmp_path / "c.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(content)
    out = tmp_path / "out.png"
    r = _run("--style=mosaic", str(content), str(out), "--iterations=3", "--vgg_weights=random",
             "--log_every=1", "--style_size=64", "--noprogress")
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size == (48, 40)
    history = json.loads((tmp_path / "out.losses.json").read_text())["history"]
    assert [h["iteration"] for h in history] == [0, 1, 2, 3]


@pytest.mark.parametrize("args, message", [
    (["--style=nope", "IN", "OUT"], "unknown style 'nope'"),
    (["MISSING", "OUT", "--vgg_weights=random"], "no such file"),
    (["BAD", "OUT", "--vgg_weights=random"], "not a readable image"),
])
def test_cli_bad_input_one_line_error(tmp_path, args, message):
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.png")
    (tmp_path / "bad.jpg").write_text("not an image")
    paths = {"IN": str(tmp_path / "in.png"), "OUT": str(tmp_path / "o.png"), "MISSING": str(tmp_path / "missing.jpg"),
             "BAD": str(tmp_path / "bad.jpg")}
    r = _run(*[paths.get(a, a) for a in args])
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: ") and message in r.stderr
