"""Inference latency of the transformer net: Keras, SavedModel, TFLite fp32/fp16/int8.

``python bench/inference.py --sizes=256,512,1024 --threads=2``

One JSON line per (path, size): median latency of ``--repeats`` runs after a
warm-up, the transformer's GFLOP per image and the achieved GFLOP/s. Weights
are random (``--weights=PATH`` for a trained net): speed does not depend on them,
except that INT8 is calibrated on crops of ``--calibration_dir`` photos.
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import flops as flops_lib  # noqa: E402
from tfstyle.transformer import build_transformer  # noqa: E402

PATHS = ("keras", "keras_xla", "savedmodel", "tflite_fp32", "tflite_fp16", "tflite_int8")


def keras_runner(model, x, jit_compile=False):
    fn = tf.function(lambda t: model(t, training=False), jit_compile=jit_compile)
    x = tf.constant(x)
    return lambda: fn(x).numpy()


def savedmodel_runner(model, x, tmp):
    class Serving(tf.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def serve(self, images):
            return {"stylized": self.net(images, training=False)}

    path = os.path.join(tmp, "savedmodel")
    if not os.path.isdir(path):
        module = Serving(model)
        tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    fn = tf.saved_model.load(path).signatures["serving_default"]
    x = tf.constant(x)
    return lambda: fn(images=x)["stylized"].numpy()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="256,512,1024")
    p.add_argument("--paths", default=",".join(PATHS), help=f"comma list of {', '.join(PATHS)}")
    p.add_argument("--threads", type=int, default=2, help="TF intra-op threads and TFLite num_threads (0: default)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--weights", default="", help="transformer .weights.h5 (default: random init)")
    p.add_argument("--calibration_dir", default=common.DEFAULT_CALIBRATION, help="photos for INT8 calibration")
    p.add_argument("--layers", choices=("current", "before"), default="current",
                   help="'before': the MIRROR_PAD / tf.nn.moments / resize / full-resolution 9x9 conv layers of the textbook network (pytorch/examples' fast_neural_style)")
    p.add_argument("--quick", action="store_true", help="64 px, 1 repeat: for tests")
    args = p.parse_args()
    if args.layers == "before":
        from tfstyle.testing import textbook

        textbook.use_textbook_layers()
    sizes = [64] if args.quick else [int(s) for s in args.sizes.split(",")]
    repeats = 1 if args.quick else args.repeats
    paths = args.paths.split(",")
    unknown = set(paths) - set(PATHS)
    if unknown:
        sys.exit(f"error: unknown path(s) {sorted(unknown)}: use {', '.join(PATHS)}")
    common.set_threads(args.threads)
    keras.utils.set_random_seed(0)
    model = build_transformer()
    if args.weights:
        model.load_weights(args.weights)
    meta = {"bench": "inference", "layers": args.layers, "threads": args.threads, **common.machine()}
    tflite_models = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            if path.startswith("tflite_"):
                mode = {"tflite_fp32": "float32", "tflite_fp16": "fp16", "tflite_int8": "int8"}[path]
                calib = common.calibration_crops(args.calibration_dir, args.quick) if mode == "int8" else None
                tflite_models[path] = common.convert_transformer(model, mode, calib)
            for size in sizes:
                x = common.random_images(1, size)
                if path == "keras":
                    run = keras_runner(model, x)
                elif path == "keras_xla":
                    run = keras_runner(model, x, jit_compile=True)
                elif path == "savedmodel":
                    run = savedmodel_runner(model, x, tmp)
                else:
                    run, _ = common.tflite_runner(tflite_models[path], (1, size, size, 3), args.threads or None)
                median, times = common.time_call(run, repeats=repeats, warmup=1)
                gflop = flops_lib.transformer_flops(size, size, textbook=args.layers == "before") / 1e9
                common.emit({**meta, "load1": round(os.getloadavg()[0], 2), "path": path, "size": size, "median_s": round(median, 4), "times_s": times,
                             "gflop": round(gflop, 2), "gflops_per_s": round(gflop / median, 1),
                             **({"tflite_bytes": len(tflite_models[path])} if path in tflite_models else {})})


if __name__ == "__main__":
    main()
