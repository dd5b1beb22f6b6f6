"""Ship a trained style with the package: ``tfstyle/pretrained/<style>.npz`` (float16) and its reference output.

    python tools/ship_style.py --run=RUN_DIR [--weights=CHECKPOINT] --summary="..."
    python tools/ship_style.py --run=MULTI_STYLE_RUN --row=candy --summary="..."

Reads the run's ``config.json`` (loss network, recipe, steps) into the card
that ``tfstyle styles`` prints, and writes ``tests/data/<style>_reference.npz``:
a small fixed input and the shipped network's uint8 output on it, which the
tests compare against so a change that alters the shipped styles' pictures fails.
A multi-style network ships whole (its reference output is an even blend of its
styles, the ``style_weights`` stored beside it), or one style at a time with
``--row``: that row as a single-style network (``multistyle.single_style``).
"""

import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tfstyle import models, multistyle, recipes  # noqa: E402
from tfstyle.images import list_images  # noqa: E402

REFERENCE_DIR = os.path.join(ROOT, "tests", "data")
# Loss terms beyond the recipe's (tfstyle.loss_terms) that a card names when the run used them.
EXTRA_TERMS = ("noise_stability_weight", "shift_stability_weight", "dark_mass_weight")


def reference_input():
    """A fixed 40x56 test card (gradients and edges): the same on every machine, no photo needed."""
    y, x = np.mgrid[0:40, 0:56].astype(np.float32)
    image = np.stack([x / 55 * 255, y / 39 * 255, ((x // 8 + y // 8) % 2) * 200 + 30], axis=-1)
    return np.clip(image, 0, 255).astype(np.uint8)


def short_path(path):
    """A start's path as a card names it: from ``tfstyle/`` on for a packaged network, else its last two parts."""
    parts = os.path.normpath(path).split(os.sep)
    return os.path.join(*parts[parts.index("tfstyle"):] if "tfstyle" in parts else parts[-2:])


def reference_path(style):
    return os.path.join(REFERENCE_DIR, f"{style}_reference.npz")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="the training run folder (with config.json)")
    p.add_argument("--weights", default="", help="weights to ship (default: the run's transformer.weights.h5)")
    p.add_argument("--summary", required=True, help="one line for `tfstyle styles`")
    p.add_argument("--step", type=int, default=0, help="the step of --weights (default: the run's final step)")
    p.add_argument("--row", default="", help="a multi-style run: ship this style row as a single-style network")
    p.add_argument("--style", default="", help="the name to ship it under (default: the run's folder name)")
    args = p.parse_args(argv)
    config = json.load(open(os.path.join(args.run, "config.json")))
    weights = args.weights or os.path.join(args.run, "transformer.weights.h5")
    run_name = os.path.basename(os.path.normpath(args.run))
    model = models.load_transformer(weights)
    style = args.style or args.row or run_name
    if args.row:
        model = multistyle.single_style(model, args.row)
    card = {
        "style": style,
        "summary": args.summary,
        "steps": args.step or config["final_step"],
        "loss_network": os.path.basename(config["vgg_weights"]),
        "loss": {k: config[k] for k in recipes.SETTINGS if k in config},
        "training": {**{k: config[k] for k in ("image_size", "batch_size", "lr", "lr_schedule", "steps")},
                     **{k: config[k] for k in EXTRA_TERMS if config.get(k)},
                     **({"init_from": short_path(config["init_from"])} if config.get("init_from") else {}),
                     "photos": f"{len(list_images(config['data_dir']))} photos of "
                               f"{os.path.join(*config['data_dir'].rstrip(os.sep).split(os.sep)[-2:])}"},
    }
    if args.row:
        card["trained_in"] = f"row '{args.row}' of the multi-style network {run_name}"
        card["loss"]["style_weight"] = models.trained_loss(weights, args.row)[0]["style_weight"]
    elif models.style_scales(config):  # each style's factor on style_weight
        card["style_scales"] = models.style_scales(config)
    if not card["steps"]:
        raise SystemExit("error: the run has not finished: pass --step (the step of --weights)")
    path = models.pretrained_path(style)
    models.save_pretrained(model, path, card)
    write_reference(style, model)


def write_reference(style, model=None):
    """Writes ``tests/data/<style>_reference.npz`` from the shipped weights; ``model`` (the weights
    before float16) only for the printed difference."""
    path = models.pretrained_path(style)
    shipped = models.load_transformer(path)
    model = model or shipped
    image = reference_input()
    inputs, extra = image[None].astype(np.float32), {}
    if getattr(shipped, "row_names", None):
        names = shipped.row_names
        weights = np.float32([[n != multistyle.PHOTO for n in names]]) / len(multistyle.style_names(names))
        inputs, extra = [inputs, weights], {"style_weights": weights}
    output = np.clip(np.round(shipped(inputs)[0].numpy()), 0, 255).astype(np.uint8)
    os.makedirs(REFERENCE_DIR, exist_ok=True)
    np.savez_compressed(reference_path(style), input=image, output=output, **extra)
    float32 = model(inputs)[0].numpy()
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB) and {reference_path(style)}; float16 vs float32 "
          f"weights: max output difference {np.abs(float32 - output).max():.2f} levels")


if __name__ == "__main__":
    main()
