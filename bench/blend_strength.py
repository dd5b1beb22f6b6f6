"""Pictures of a multi-style network's dials: strength in norm space vs a pixel fade, and a blend of two styles.

``python bench/blend_strength.py --model=tfstyle/pretrained/mosaic-candy-starry_night-photo.npz --out=docs/blend_strength.png``

Three labelled rows on one photo, five columns each (0, 0.25, 0.5, 0.75, 1):

1. ``--style`` at each strength, towards the network's identity ``photo`` row in norm space
   (what ``tfstyle stylize --strength`` does with such a network);
2. the same strengths as a pixel fade, ``s * stylized + (1 - s) * photo`` (what a network without
   an identity row gets);
3. ``--style`` blended into ``--blend_with``: weights ``(1 - t, t)`` at full strength.

``--int8=FILE`` adds the third row again from the network's INT8 TFLite file (its ``style_weights`` input).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402,F401  (quiet TF, repo on sys.path)

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from tfstyle import litert, models, multistyle  # noqa: E402
from tfstyle.images import load_image, resize_longer_side  # noqa: E402
from tfstyle.stylize import KerasStylizer  # noqa: E402

EVAL_PHOTO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data",
                          "content", "eval", "kodim15.png")
STEPS = (0.0, 0.25, 0.5, 0.75, 1.0)
LABEL_HEIGHT = 16


def dial_rows(stylizer, photo, style, other, int8=None):
    """[(row label, [(column label, uint8 image)])] for the three rows (four with ``int8``)."""
    run = lambda: np.clip(np.round(stylizer(photo)), 0, 255).astype(np.uint8)  # noqa: E731
    norm_space = []
    for s in STEPS:
        stylizer.set_blend(style, strength=s)
        norm_space.append((f"strength {s:g}", run()))
    stylizer.set_blend(style)
    full = run().astype(np.float32)
    fade = [(f"strength {s:g}", np.round(s * full + (1 - s) * photo).astype(np.uint8)) for s in STEPS]
    names = stylizer.style_names
    blends, blends_int8 = [], []
    for t in STEPS:
        weights = [{style: 1 - t, other: t}.get(n, 0.0) for n in names]
        stylizer.set_blend(weights=weights)
        blends.append((f"{style} {1 - t:g} / {other} {t:g}", run()))
        if int8 is not None:
            blends_int8.append((f"INT8 {1 - t:g} / {t:g}", np.asarray(int8(photo, stylizer.row), np.uint8)))
    rows = [(f"{style}: strength in norm space (identity style)", norm_space),
            (f"{style}: strength as a pixel fade", fade),
            (f"blend {style} -> {other}", blends)]
    return rows + ([(f"blend {style} -> {other}, INT8 TFLite", blends_int8)] if blends_int8 else [])


def render(rows):
    """One labelled uint8 grid: a title line per row, a caption above each tile."""
    h, w = rows[0][1][0][1].shape[:2]
    columns = max(len(tiles) for _, tiles in rows)
    band = h + 2 * LABEL_HEIGHT
    sheet = Image.new("RGB", (columns * w, len(rows) * band), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (title, tiles) in enumerate(rows):
        y = r * band
        draw.text((4, y + 2), title, fill="black")
        for c, (caption, tile) in enumerate(tiles):
            draw.text((c * w + 4, y + LABEL_HEIGHT + 2), caption, fill="black")
            sheet.paste(Image.fromarray(tile), (c * w, y + 2 * LABEL_HEIGHT))
    return np.asarray(sheet)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a multi-style network's weights (.weights.h5 or shipped .npz)")
    p.add_argument("--photo", default=EVAL_PHOTO)
    p.add_argument("--size", type=int, default=256, help="longer side of the photo")
    p.add_argument("--style", default="", help="the style to dial (default: the first)")
    p.add_argument("--blend_with", default="", help="the style to blend into (default: the second)")
    p.add_argument("--int8", default="", help="the network's INT8 .tflite file: adds the blend row from it")
    p.add_argument("--out", default="blend_strength.png")
    args = p.parse_args(argv)
    network = models.load_transformer(args.model)
    names = multistyle.style_names(getattr(network, "row_names", None) or [])
    if len(names) < 2 or not multistyle.has_photo(network.row_names):
        raise SystemExit(f"error: {args.model}: needs a multi-style network with two styles and an identity row")
    style, other = args.style or names[0], args.blend_with or names[1]
    photo = resize_longer_side(load_image(args.photo), args.size, upscale=True)
    int8 = litert.TFLiteStylizer(model_path=args.int8) if args.int8 else None
    Image.fromarray(render(dial_rows(KerasStylizer(network), photo, style, other, int8))).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
