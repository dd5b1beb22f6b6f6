"""A picture grid for docs/RESULTS.md: content | Gatys (L-BFGS) | tfstyle, one row per photo.

``python bench/picture_grid.py --weights=runs/mosaic/transformer.weights.h5 --vgg_weights=random --out=docs/results_grid.png``
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402,F401  (quiet TF, repo on sys.path)

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from tfstyle import gatys, styles, vgg  # noqa: E402
from tfstyle.images import list_images, load_image, resize_longer_side  # noqa: E402
from tfstyle.transformer import build_transformer  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--style", default="mosaic")
    p.add_argument("--weights", required=True)
    p.add_argument("--images", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..",
                                                    "shared", "data", "content", "eval"))
    p.add_argument("--count", type=int, default=2, help="photos (rows)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--vgg_weights", default="imagenet")
    p.add_argument("--out", default="docs/results_grid.png")
    p.add_argument("--quick", action="store_true", help="1 photo, 32 px, 2 iterations: for tests")
    args = p.parse_args()
    if args.quick:
        args.count, args.size, args.iterations = 1, 32, 2
    net = build_transformer()
    net.load_weights(args.weights)
    loss_network = vgg.build_loss_network(args.vgg_weights)
    style = styles.load_style_image(args.style, 512 if not args.quick else 64)
    rows = []
    for path in list_images(args.images)[: args.count]:
        photo = resize_longer_side(load_image(path), args.size, upscale=True).astype(np.float32)
        fast = np.clip(net(photo[None], training=False).numpy()[0], 0, 255)
        slow, _ = gatys.stylize(photo, style, loss_network, iterations=args.iterations, record_every=0)
        rows.append(np.concatenate([photo, slow, fast], axis=1))
    grid = Image.fromarray(np.round(np.concatenate(rows, axis=0)).astype(np.uint8))
    label = Image.new("RGB", (grid.width, 16), "white")
    draw = ImageDraw.Draw(label)
    w = grid.width // 3
    for i, text in enumerate(["content", f"Gatys L-BFGS x{args.iterations}", "tfstyle (one pass)"]):
        draw.text((i * w + 4, 2), text, fill="black")
    out = Image.new("RGB", (grid.width, grid.height + 16), "white")
    out.paste(label, (0, 0))
    out.paste(grid, (0, 16))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    out.save(args.out, optimize=True)
    common.emit({"bench": "picture_grid", "out": args.out, "bytes": os.path.getsize(args.out), "rows": len(rows),
                 "size": args.size, "iterations": args.iterations, "vgg_weights": args.vgg_weights})


if __name__ == "__main__":
    main()
