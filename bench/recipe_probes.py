"""Probe pictures that chose the loss: the optimization method (Gatys, L-BFGS from the photo) under loss variants.

``python bench/recipe_probes.py --styles=candy,mosaic --photo=../shared/data/content/eval/kodim05.png \
    --vgg_weights=../shared/weights/vgg19_imagenet_block1_to_block3.npz --out=docs/recipes/pyramid_probes.jpg``

Each column is one loss: ``NAME=style_weight:levels[:normalize][:style_size]``, e.g.
``pyramid=4e6:1,2,4:norm:512``; a row per style, the painting and the photo first. Gatys
optimizes the pixels against that loss alone, so the column shows what the loss asks a
network for. A JSON line per tile (the loss variant, the seconds) goes to stdout.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402  (quiet TF, repo on sys.path)

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from tfstyle import gatys, recipes, styles, vgg  # noqa: E402
from tfstyle.images import load_image, resize_longer_side  # noqa: E402

DEFAULT_VARIANTS = ("single=100:1:raw:512", "pyr1e6=1e6:1,2,4:norm:512", "pyr4e6=4e6:1,2,4:norm:512",
                    "pyr8_2e6=2e6:1,2,4,8:norm:512")


def parse_variant(text):
    """``NAME=style_weight:levels[:norm|raw][:style_size]`` -> (name, settings for the blocks 1-3 recipe)."""
    name, _, spec = text.partition("=")
    parts = spec.split(":")
    settings = {"style_weight": float(parts[0]), "style_levels": tuple(int(x) for x in parts[1].split(",")),
                "style_normalize": len(parts) < 3 or parts[2] != "raw",
                "style_size": int(parts[3]) if len(parts) > 3 else 512}
    return name, settings


def label(tile, text):
    canvas = Image.new("RGB", (tile.shape[1], tile.shape[0] + 16), "white")
    canvas.paste(Image.fromarray(tile), (0, 16))
    ImageDraw.Draw(canvas).text((3, 2), text, fill="black")
    return np.asarray(canvas)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", default="candy,mosaic")
    parser.add_argument("--photo", required=True)
    parser.add_argument("--vgg_weights", required=True)
    parser.add_argument("--size", type=int, default=256, help="longer side of the photo")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--variants", default=";".join(DEFAULT_VARIANTS),
                        help="';'-separated NAME=style_weight:levels[:norm|raw][:style_size]")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    base = recipes.BLOCKS_1_TO_3
    net = vgg.build_loss_network(args.vgg_weights, base.style_layers, base.content_layer)
    photo = resize_longer_side(load_image(args.photo), args.size, upscale=True).astype(np.float32)
    variants = [parse_variant(v) for v in args.variants.split(";")]
    rows = []
    for style in args.styles.split(","):
        painting = resize_longer_side(load_image(styles.resolve_style(style)), args.size, upscale=True)
        pad = np.full(photo.shape, 255, np.uint8)
        pad[: painting.shape[0], : painting.shape[1]] = painting[: photo.shape[0], : photo.shape[1]]
        row = [label(pad, style), label(photo.astype(np.uint8), "photo")]
        for name, settings in variants:
            weights = {"content_weight": base.content_weight, "tv_weight": base.tv_weight,
                       **{k: v for k, v in settings.items() if k != "style_size"}}
            start = time.perf_counter()
            image, history = gatys.stylize(photo, styles.load_style_image(style, settings["style_size"]), net, weights,
                                           iterations=args.iterations, record_every=0)
            seconds = time.perf_counter() - start
            common.emit({"bench": "recipe_probe", "style": style, "variant": name, **settings,
                         "iterations": args.iterations, "size": args.size, "final": history[-1], "seconds": round(seconds, 1)})
            row.append(label(np.clip(image, 0, 255).round().astype(np.uint8), name))
            # Written after every tile: a long probe can be looked at while it runs.
            width = (2 + len(variants)) * row[0].shape[1]
            partial = np.concatenate(row, axis=1)
            partial = np.pad(partial, [(0, 0), (0, width - partial.shape[1]), (0, 0)], constant_values=255)
            Image.fromarray(np.concatenate(rows + [partial], axis=0)).save(args.out, quality=90)
        rows.append(np.concatenate(row, axis=1))


if __name__ == "__main__":
    main()
