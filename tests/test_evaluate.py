"""tfstyle.evaluate on two tiny photos with a random-init transformer and the random seeded VGG19.

Random weights everywhere: this checks the table, not the quality of any style.
"""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from conftest import run_tfstyle
from tfstyle import evaluate, recipes, styles
from tfstyle.transformer import build_transformer


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    photos = tmp / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name, shape in (("a.png", (40, 48, 3)), ("b.jpg", (36, 30, 3))):
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(photos / name)
    keras.utils.set_random_seed(0)
    weights = str(tmp / "t.weights.h5")
    build_transformer().save_weights(weights)
    return tmp, photos, weights


def test_evaluate_function_rows_and_equivalence(setup, random_loss_network):
    tmp, photos, weights = setup
    from tfstyle.images import list_images, load_image

    net = build_transformer()
    net.load_weights(weights)
    pics = [(os.path.basename(p), load_image(p)) for p in list_images(str(photos))]
    rows, summary = evaluate.evaluate(net, random_loss_network, styles.load_style_image("mosaic", 64), pics,
                                      recipes.FULL_VGG19.loss_weights, sizes=(32,), gatys_iterations=(2, 4), record_every=1, log=lambda m: None)
    assert [(r["method"], r["iterations"]) for r in rows] == [("photo", 0), ("tfstyle", None), ("gatys", 2), ("gatys", 4)]
    by = {(r["method"], r["iterations"]): r for r in rows}
    for r in rows:
        assert r["images"] == 2 and set(evaluate.COLUMNS) <= set(r)
        assert r["total"] == pytest.approx(r["content"] + r["style"] + r["tv"], rel=1e-5)
    assert by[("photo", 0)]["content"] == pytest.approx(0.0, abs=1e-3)
    assert by[("gatys", 4)]["total"] <= by[("gatys", 2)]["total"] < by[("photo", 0)]["total"]
    assert summary[32]["images"] == 2 and len(summary[32]["per_image"]) == 2


def test_cli_prints_and_saves_table(setup):
    tmp, photos, weights = setup
    out = tmp / "result.md"
    r = run_tfstyle("evaluate", "--style=mosaic", f"--weights={weights}", f"--images={photos}", "--sizes=32,40",
                    "--gatys_iterations=1,2", "--gatys_sizes=32", "--vgg_weights=random", "--style_size=64",
                    f"--out={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    header = "| " + " | ".join(evaluate.COLUMNS) + " |"
    assert header in r.stdout and header in out.read_text()
    saved = json.loads((tmp / "result.json").read_text())
    methods = [(row["method"], row["size"], row["iterations"]) for row in saved["rows"]]
    assert methods == [("photo", 32, 0), ("tfstyle", 32, None), ("gatys", 32, 1), ("gatys", 32, 2),
                       ("photo", 40, 0), ("tfstyle", 40, None)]
    assert saved["photos"] == ["a.png", "b.jpg"] and saved["vgg_weights"] == "random"


@pytest.mark.slow
def test_cli_measures_flicker(setup):
    tmp, photos, weights = setup
    out = tmp / "flicker.md"
    r = run_tfstyle("evaluate", "--style=mosaic", f"--weights={weights}", f"--images={photos}", "--sizes=32",
                    "--nogatys", "--vgg_weights=random", "--style_size=64", "--flicker_frames=2", f"--out={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    saved = json.loads((tmp / "flicker.json").read_text())
    assert [row["motion"] for row in saved["flicker"]] == ["pan", "zoom", "rotate", "jitter", "all"]
    assert all(row["clips"] == 2 and row["ratio"] > 0 for row in saved["flicker"][:4])
    assert "| pan | 2 |" in out.read_text()


@pytest.mark.parametrize("args, message", [
    (["--weights=/nonexistent.h5"], "/nonexistent.h5: no such weights file"),
    (["--images=/nonexistent_dir"], "no such directory"),
    (["--sizes=abc"], "comma-separated list of integers"),
])
def test_cli_errors_are_one_line(setup, args, message):
    tmp, photos, weights = setup
    base = [f"--weights={weights}", f"--images={photos}", "--vgg_weights=random"]
    r = run_tfstyle("evaluate", *base, *args)
    assert r.returncode in (1, 2) and "Traceback" not in r.stderr  # 2: usage errors
    assert message in r.stderr.strip().splitlines()[-1]


def test_cli_scores_a_multi_style_row_at_its_own_style_weight(setup):
    """A multi-style run's --style row is scored alone, with style_weight times its --style_scales factor."""
    tmp, photos, _ = setup
    run = tmp / "runs" / "mosaic-candy"
    run.mkdir(parents=True)
    keras.utils.set_random_seed(0)
    net = build_transformer(num_styles=2)
    net.row_names = ("mosaic", "candy")
    from tfstyle.callbacks import save_weights_atomically

    save_weights_atomically(net, str(run / "transformer.weights.h5"))
    (run / "config.json").write_text(json.dumps({"style": "mosaic,candy", "style_scales": [1.0, 4.0],
                                                 "vgg_weights": "random", "style_weight": 50.0}))
    base = ["evaluate", f"--weights={run / 'transformer.weights.h5'}", f"--images={photos}", "--sizes=32",
            "--nogatys", "--vgg_weights=random", "--style_size=64"]
    out = tmp / "candy.md"
    r = run_tfstyle(*base, "--style=candy", f"--out={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((tmp / "candy.json").read_text())["loss"]["style_weight"] == 200.0
    r = run_tfstyle(*base, "--style=starry_night", f"--out={tmp / 'x.md'}")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == "error: unknown style 'starry_night': this network holds mosaic, candy"
