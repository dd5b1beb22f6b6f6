"""How close is the fast network to the optimization method? Same photos, same loss network.

``python -m tfstyle.evaluate --style=mosaic [--weights=PATH] [--images=DIR]``

For every photo (resized so its longer side is each of ``--sizes``) this
scores, with the training loss (``tfstyle.perceptual``: content, Gram style
and TV terms, training weights):

* ``photo``: the unmodified photo (where Gatys starts),
* ``tfstyle``: the trained transformer's output,
* ``gatys@N``: the optimization method (L-BFGS from the photo) after N iterations,

and prints and saves a table of the means over photos, plus, per size, the
number of L-BFGS iterations after which Gatys' loss falls below the
network's (the "equivalent iterations" of Johnson et al., Fig. 5).
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfstyle import gatys, perceptual, styles, vgg  # noqa: E402
from tfstyle import images as image_io  # noqa: E402

DEFAULT_IMAGES = os.path.join("..", "shared", "data", "content", "eval")
COLUMNS = ("method", "size", "iterations", "images", "content", "style", "tv", "total", "seconds_per_image")


class EvaluationError(ValueError):
    """Missing weights, no photos, bad settings."""


def _int_list(text, name):
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise EvaluationError(f"--{name} must be a comma-separated list of integers, got '{text}'") from None
    if any(v < 1 for v in values):
        raise EvaluationError(f"--{name} values must be positive, got '{text}'")
    return values


def equivalent_iterations(history, target):
    """First recorded iteration at which the Gatys loss is <= ``target`` (None if never)."""
    for h in history:
        if h["total"] <= target:
            return h["iteration"]
    return None


def evaluate(transformer, loss_network, style_image, photos, sizes=(256, 512), gatys_iterations=(50, 100, 300),
             gatys_sizes=None, weights=None, record_every=5, progress=False, log=print):
    """Returns ``(rows, summary)``: table rows (dicts keyed by ``COLUMNS``) and per-size equivalences.

    ``photos``: list of (name, uint8 [H, W, 3]). ``weights``: loss weights (training defaults).
    """
    weights = weights or {"content_weight": 7.5, "style_weight": 100.0, "tv_weight": 200.0}
    gatys_sizes = sizes if gatys_sizes is None else gatys_sizes
    grams = perceptual.style_grams(loss_network, style_image)
    score = tf.function(lambda images, targets: perceptual.perceptual_losses(loss_network, images, targets, grams, **weights))
    net = tf.function(lambda images: transformer(images, training=False))
    rows, summary = [], {}
    max_iterations = max(gatys_iterations) if gatys_iterations else 0
    for size in sizes:
        per_method = {}
        equivalences = []

        def add(method, values, seconds):
            per_method.setdefault(method, []).append((values, seconds))

        for name, photo in photos:
            image = gatys.resize_longer_side(photo, size).astype(np.float32)[None]
            targets = perceptual.content_features(loss_network, image)
            values = {k: float(v[0]) for k, v in score(tf.constant(image), targets).items()}
            add("photo", values, 0.0)
            start = time.perf_counter()
            stylized = tf.clip_by_value(net(tf.constant(image)), 0.0, 255.0)
            seconds = time.perf_counter() - start
            net_values = {k: float(v[0]) for k, v in score(stylized, targets).items()}
            add("tfstyle", net_values, seconds)
            log(f"{size}px {name}: tfstyle total {net_values['total']:.6g} (photo {values['total']:.6g})")
            if size in gatys_sizes and max_iterations:
                start = time.perf_counter()
                _, history = gatys.stylize(image[0], style_image, loss_network, iterations=max_iterations,
                                           record_every=record_every, record_at=gatys_iterations, progress=progress,
                                           **weights)
                seconds = time.perf_counter() - start
                for n in gatys_iterations:
                    # The last record at or before n (L-BFGS may stop early on a tiny image).
                    h = [h for h in history if h["iteration"] <= n][-1]
                    add(f"gatys@{n}", {k: h[k] for k in perceptual.LOSS_KEYS}, h["seconds"] if h["iteration"] else 0.0)
                equivalences.append(equivalent_iterations(history, net_values["total"]))
                log(f"{size}px {name}: gatys@{max_iterations} total {history[-1]['total']:.6g} ({seconds:.1f} s); "
                    f"below tfstyle after {equivalences[-1]} iterations")
        for method, entries in per_method.items():
            iterations = int(method.split("@")[1]) if "@" in method else (0 if method == "photo" else None)
            row = {"method": method.split("@")[0], "size": size, "iterations": iterations, "images": len(entries)}
            for key in perceptual.LOSS_KEYS:
                row[key] = statistics.fmean(v[key] for v, _ in entries)
            row["seconds_per_image"] = statistics.fmean(s for _, s in entries)
            rows.append(row)
        if equivalences:
            reached = [e for e in equivalences if e is not None]
            summary[size] = {
                "images": len(equivalences),
                "gatys_below_tfstyle_after_median": statistics.median(reached) if len(reached) == len(equivalences) else None,
                "per_image": equivalences,
                "max_iterations": max_iterations,
            }
    return rows, summary


def format_table(rows):
    """A Markdown table of the rows."""
    def cell(key, value):
        if value is None:
            return "-"
        if key in ("content", "style", "tv", "total"):
            return f"{value:.5g}"
        if key == "seconds_per_image":
            return f"{value:.2f}"
        return str(value)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(k, r[k]) for k in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def format_summary(summary):
    lines = []
    for size, s in summary.items():
        n = s["gatys_below_tfstyle_after_median"]
        if n is None:
            lines.append(f"- {size} px: Gatys (L-BFGS) did not get below tfstyle's loss on every photo within "
                         f"{s['max_iterations']} iterations (per photo: {s['per_image']}).")
        else:
            lines.append(f"- {size} px: tfstyle's loss equals that of about {n} L-BFGS iterations "
                         f"(median over {s['images']} photos; per photo: {s['per_image']}).")
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m tfstyle.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--style", default="mosaic", help="bundled style name or path to a style image")
    p.add_argument("--weights", default="", help="transformer .weights.h5 (default: RUNS_DIR/<style>/transformer.weights.h5)")
    p.add_argument("--runs_dir", default="runs")
    p.add_argument("--images", default=DEFAULT_IMAGES, help="folder of photos")
    p.add_argument("--max_images", type=int, default=0, help="use only the first N photos (0: all)")
    p.add_argument("--sizes", default="256,512", help="longer side of the photos, comma list")
    p.add_argument("--gatys_iterations", default="50,100,300", help="L-BFGS iterations to report, comma list")
    p.add_argument("--gatys_sizes", default="", help="sizes at which Gatys runs too (default: all --sizes)")
    p.add_argument("--no_gatys", action="store_true", help="score the network only")
    p.add_argument("--style_size", type=int, default=512)
    p.add_argument("--content_weight", type=float, default=7.5)
    p.add_argument("--style_weight", type=float, default=100.0)
    p.add_argument("--tv_weight", type=float, default=200.0)
    p.add_argument("--vgg_weights", default="imagenet", help="'imagenet', a VGG19 notop .h5, or 'random' (tests only)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="", help="where to save the table (.md; a .json goes beside it); "
                                             "default RUNS_DIR/<style>/evaluation.md")
    p.add_argument("--progress", action="store_true", help="progress bars for Gatys")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    try:
        sizes = _int_list(args.sizes, "sizes")
        iterations = [] if args.no_gatys else _int_list(args.gatys_iterations, "gatys_iterations")
        gatys_sizes = _int_list(args.gatys_sizes, "gatys_sizes") if args.gatys_sizes else sizes
        styles.resolve_style(args.style)
        weights_path = args.weights or styles.trained_weights_path(args.style, args.runs_dir)
        if not os.path.isfile(weights_path):
            raise EvaluationError(f"{weights_path}: no trained transformer weights; train with train.py "
                                  "or pass --weights=PATH")
        paths = image_io.list_images(args.images)
        if args.max_images:
            paths = paths[: args.max_images]
        if not paths:
            raise EvaluationError(f"{args.images}: no images")
        photos = [(os.path.basename(p), image_io.load_image(p)) for p in paths]
        from tfstyle.transformer import build_transformer

        transformer = build_transformer()
        try:
            transformer.load_weights(weights_path)
        except Exception as e:  # h5py/keras raise many kinds
            raise EvaluationError(f"{weights_path}: cannot load as transformer weights "
                                  f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        style_image = styles.load_style_image(args.style, args.style_size)
        loss_network = vgg.build_loss_network(args.vgg_weights, seed=args.seed)
        loss_weights = {"content_weight": args.content_weight, "style_weight": args.style_weight,
                        "tv_weight": args.tv_weight}
        rows, summary = evaluate(transformer, loss_network, style_image, photos, sizes, iterations, gatys_sizes,
                                 loss_weights, progress=args.progress, log=log)
    except (EvaluationError, styles.UnknownStyleError, image_io.ImageError, vgg.LossNetworkError,
            FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    table = format_table(rows)
    text = (f"Style {styles.style_name(args.style)}, weights {weights_path}, VGG19 weights {args.vgg_weights}, "
            f"{len(photos)} photos from {args.images}; means over photos.\n\n{table}\n\n{format_summary(summary)}\n")
    print(text)
    out = args.out or os.path.join(args.runs_dir, styles.style_name(args.style), "evaluation.md")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump({"style": args.style, "weights": weights_path, "vgg_weights": args.vgg_weights,
                   "photos": [n for n, _ in photos], "rows": rows,
                   "equivalent_iterations": {str(k): v for k, v in summary.items()}}, f, indent=1)
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
