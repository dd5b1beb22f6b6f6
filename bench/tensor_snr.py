"""Where an INT8 file loses: the signal-to-noise ratio of every int8 tensor against float, on one photo.

``python bench/tensor_snr.py --style=candy --image=../shared/data/content/eval/kodim11.png``

The float reference is the calibrated float model of the same graph (the network after
``tflite.quantization_friendly``, calibrated by the converter on the export's crops, before
``mlir_quantize``), so tensors match by name. Both run with LiteRT's
``experimental_preserve_all_tensors``. One JSON line per int8 tensor of the file at
``<saved_models>/<style>_int8.tflite``, in execution order: op, name, shape, SNR in dB, and the share
of float values outside the tensor's int8 range (clipped).
"""

import argparse
import contextlib
import io
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfstyle import litert, models, tflite  # noqa: E402
from tfstyle.images import load_image  # noqa: E402
from tfstyle.transformer import tflite_forms  # noqa: E402


def calibrated_float_model(model, crops):
    """The converter's calibrate-only output for ``model``: float ops, the INT8 file's graph and names."""
    with tflite_forms():
        friendly = tflite.quantization_friendly(model, crops)
        converter = tf.lite.TFLiteConverter.from_keras_model(friendly)
        tflite.calibrate_only(converter, tflite.calibration_inputs(friendly, crops))
        with contextlib.redirect_stdout(io.StringIO()):
            return converter.convert()


def run_all(interp, image):
    """Invokes ``interp`` on one [1, H, W, 3] image and returns it."""
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], list(image.shape), strict=False)
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], image.astype(inp["dtype"]))
    interp.invoke()
    return interp


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--style", default="candy", help="a single-style export under --saved_models")
    p.add_argument("--image", default=os.path.join(repo, "..", "shared", "data", "content", "eval", "kodim11.png"))
    p.add_argument("--weights", default="", help="default: the shipped tfstyle/pretrained/<style>.npz")
    p.add_argument("--saved_models", default=os.path.join(repo, "saved_models"))
    p.add_argument("--calibration_dir", default=common.DEFAULT_CALIBRATION)
    p.add_argument("--crops", type=int, default=100,
                   help="as the export: the crops set the channel scaling of the INT8 graph (quantization_friendly)")
    p.add_argument("--crop_size", type=int, default=256)
    p.add_argument("--quick", action="store_true", help="4 crops of 32 px: for tests, against an export made so")
    args = p.parse_args()
    if args.quick:
        args.crops, args.crop_size = 4, 32
    model = models.load_transformer(args.weights or models.pretrained_path(args.style))
    crops = tflite.representative_crops(args.calibration_dir, args.crops, args.crop_size)
    image = load_image(args.image)[None]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
        reference = run_all(litert.interpreter(model_content=calibrated_float_model(model, crops),
                                               experimental_preserve_all_tensors=True), image.astype(np.float32))
        quantized = run_all(litert.interpreter(model_path=os.path.join(args.saved_models, f"{args.style}_int8.tflite"),
                                               experimental_preserve_all_tensors=True), image)
    by_name = {t["name"]: t["index"] for t in reference.get_tensor_details()}
    details = {t["index"]: t for t in quantized.get_tensor_details()}
    meta = {"bench": "tensor_snr", "style": args.style, "image": os.path.basename(args.image)}
    for op in quantized._get_ops_details():  # noqa: SLF001 (execution order and op names)
        if op["op_name"] == "DELEGATE":
            continue
        for index in op["outputs"]:
            t = details.get(index)
            if t is None or t["dtype"] != np.int8 or t["name"] not in by_name:
                continue
            try:
                ref = reference.get_tensor(by_name[t["name"]])
                value = quantized.get_tensor(index).astype(np.float32)
            except ValueError:  # a tensor the runtime freed or left empty (a zero-row pad slice)
                continue
            scale, zero = t["quantization"]
            value = (value - zero) * scale
            if value.shape != ref.shape or not scale:
                continue
            noise = float(np.mean((value - ref) ** 2))
            clipped = float(np.mean((ref > (127 - zero) * scale) | (ref < (-128 - zero) * scale)))
            common.emit({**meta, "op": op["op_name"], "tensor": t["name"], "shape": list(value.shape),
                         "snr_db": round(10 * np.log10(float(np.mean(ref**2)) / max(noise, 1e-12)), 1),
                         "clipped": round(clipped, 4)})


if __name__ == "__main__":
    main()
