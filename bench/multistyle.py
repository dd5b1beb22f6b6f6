"""Latency of a multi-style network against the single-style one: TFLite float32 and INT8, same run.

``python bench/multistyle.py --styles=10 --size=1024 --threads=2``

One JSON line per (network, mode): median latency of ``--repeats`` runs after a
warm-up, the networks timed in turn (round-robin, so both see the same load), the
file size, its float ops (``tflite.op_report``; an INT8 file should have none) and the machine (CPU model, load). Weights are random (speed does not
depend on them, but every norm row and bias is made distinct, as after training: a fresh
net's identical constants are shared in the file and would understate its size); INT8 is calibrated on crops of ``--calibration_dir`` photos, each
multi-style crop paired with a style row. The two networks differ only in their
instance norms: per-style tables mixed by the style-weights input.
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfstyle import litert, tflite  # noqa: E402
from tfstyle.transformer import build_transformer  # noqa: E402

def distinct_weights(net, seed=0):
    """Gives every 1-D and 2-D weight (biases, norm scales and offsets) distinct random values."""
    rng = np.random.default_rng(seed)
    for w in net.weights:
        if len(w.shape) <= 2:
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype(np.float32) * (1 if "scale" in w.path else 0.1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", type=int, default=10)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--modes", default="float32,int8")
    parser.add_argument("--calibration_dir", default=common.DEFAULT_CALIBRATION)
    parser.add_argument("--quick", action="store_true", help="64 px, 1 repeat, 4 random calibration crops (for tests)")
    args = parser.parse_args()
    if args.quick:
        args.size, args.repeats = 64, 1
    common.set_threads(args.threads)
    machine = common.machine()
    crops = common.calibration_crops(args.calibration_dir, args.quick, num_crops=100, quick_images=4)
    image = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    runs = []  # (label, styles, mode, file, runner, style row)
    for label, num_styles in (("single", None), (f"{args.styles}_styles", args.styles)):
        keras.utils.set_random_seed(0)
        net = build_transformer(num_styles=num_styles)
        distinct_weights(net)
        row = None if num_styles is None else np.eye(num_styles, dtype=np.float32)[0]
        for mode in [m for m in args.modes.split(",") if m]:
            content = common.convert_transformer(net, mode, crops if mode == "int8" else None)
            runs.append((label, num_styles, mode, content, litert.TFLiteStylizer(content, num_threads=args.threads), row))
    # Interleaved: round r times every network once, so drift and other load hit both networks alike.
    times = [[] for _ in runs]
    for *_, runner, row in runs:
        runner(image, row)  # warm-up
    for _ in range(args.repeats):
        for i, (*_, runner, row) in enumerate(runs):
            times[i].append(common.time_call(lambda: runner(image, row), repeats=1, warmup=0)[0])
    for i, (label, num_styles, mode, content, _, _) in enumerate(runs):
        ops = tflite.op_report(content)
        common.emit({"bench": "multistyle", "network": label, "styles": num_styles or 1, "mode": mode,
                     "size": args.size, "threads": args.threads, "median_s": round(statistics.median(times[i]), 4),
                     "times_s": [round(t, 5) for t in times[i]], "bytes": len(content),
                     "float_ops": ops["float_ops"], **machine})


if __name__ == "__main__":
    main()
