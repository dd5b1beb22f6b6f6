"""How close is the fast network to the optimization method? Same photos, same loss network.

``tfstyle evaluate --style=mosaic [--weights=PATH] [--images=DIR]``

For every photo (resized so its longer side is each of ``--sizes``) this
scores, with the training loss (``tfstyle.perceptual``: content, Gram style
and TV terms, training weights):

* ``photo``: the unmodified photo (where Gatys starts),
* ``tfstyle``: the trained transformer's output,
* ``gatys@N``: the optimization method (L-BFGS from the photo) after N iterations,

and prints and saves a table of the means over photos, plus, per size, the
number of L-BFGS iterations after which Gatys' loss falls below the
network's (the "equivalent iterations" of Johnson et al., Fig. 5).
``style_measures`` scores the network's outputs with ``tfstyle.measures`` and
``tfstyle.blobs`` instead of the training loss.
"""

import statistics
import time

import numpy as np
import tensorflow as tf

from tfstyle import gatys, measures, perceptual
from tfstyle import images as image_io

COLUMNS = ("method", "size", "iterations", "images", "content", "style", "tv", "total", "seconds_per_image")


def equivalent_iterations(history, target):
    """First recorded iteration at which the Gatys loss is <= ``target`` (None if never)."""
    for h in history:
        if h["total"] <= target:
            return h["iteration"]
    return None


def evaluate(transformer, loss_network, style_image, photos, weights, sizes=(256, 512), gatys_iterations=(50, 100, 300),
             gatys_sizes=None, record_every=5, progress=False, log=print):
    """Returns ``(rows, summary)``: table rows (dicts keyed by ``COLUMNS``) and per-size equivalences.

    ``photos``: list of (name, uint8 [H, W, 3]). ``weights``: the loss weights
    (``content_weight``, ``style_weight``, ``tv_weight``) the network was trained with.
    """
    gatys_sizes = sizes if gatys_sizes is None else gatys_sizes
    grams = perceptual.style_grams(loss_network, style_image, weights.get("style_levels", (1,)))
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
            image = image_io.resize_longer_side(photo, size, upscale=True).astype(np.float32)[None]
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
                _, history = gatys.stylize(image[0], style_image, loss_network, weights, iterations=max_iterations,
                                           record_every=record_every, record_at=gatys_iterations, progress=progress)
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


def style_measures(transformer, scorer, photos, size):
    """``measures.summarize`` of the network's outputs on ``photos`` (name, uint8) at ``size`` px longer side;
    ``scorer``: a ``measures.Measures`` for the style's painting."""
    net = tf.function(lambda images: transformer(images, training=False))

    def pairs():
        for _, photo in photos:
            image = image_io.resize_longer_side(photo, size, upscale=True)
            output = net(tf.constant(image.astype(np.float32)[None]))[0].numpy()
            yield image, np.clip(np.round(output), 0, 255).astype(np.uint8)

    return measures.summarize(scorer, pairs())


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
