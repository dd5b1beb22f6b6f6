"""How fast is each way `tfstyle stylize` can run a style, and how close to the float picture?

``python bench/stylize_paths.py --style=mosaic --photo=../shared/data/content/eval/kodim01.png``

For one photo (768x512 for the Kodak ones), per path: the median seconds of ``stylize.stylize_image``
(the interpreter or graph already built and warmed up; photo loading and writing excluded) and the
PSNR against the float network on TensorFlow. Paths: ``default`` (``load_stylizer`` with
``--precision=auto``: what `tfstyle stylize --style=NAME` runs), ``float`` (the float32 network on
TensorFlow's runtime), ``fp16`` / ``int8`` (the export's TFLite files on LiteRT) and
``tflite_float32`` (the network converted without quantization, on LiteRT). One JSON line per path,
with ``vs_fastest_faithful``: seconds over those of the fastest path within 1 pixel level of float
(PSNR >= 48 dB).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import numpy as np  # noqa: E402

from tfstyle import export, images, litert, stylize, tflite  # noqa: E402

FAITHFUL_DB = 48.0  # max error of about one level: the float picture


class _Runner(stylize.BlendMixin):
    def __init__(self, run):
        self.run = run

    def __call__(self, image):
        return self.run(image)


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--style", default="mosaic")
    p.add_argument("--photo", default=os.path.join(common.shared_photos("eval"), "kodim01.png"))
    p.add_argument("--saved_models", default=os.path.join(repo, "saved_models"))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="the sample photo at 64 px, 1 repeat: for tests")
    args = p.parse_args()
    if args.quick and not os.path.isfile(args.photo):
        args.photo = images.list_images(images.SAMPLES_DIR)[0]
    image = images.load_image(args.photo)
    if args.quick:
        image, args.repeats = images.resize_longer_side(image, 64), 1
    paths = {}
    paths["default"], default_source = stylize.load_stylizer(args.style, saved_models=args.saved_models)
    paths["float"], source = stylize.load_stylizer(args.style, saved_models=args.saved_models, precision="float")
    for precision in ("fp16", "int8"):
        try:
            paths[precision], _ = stylize.load_stylizer(args.style, saved_models=args.saved_models, precision=precision)
        except stylize.StylizeError:
            pass
    float32 = litert.TFLiteStylizer(tflite.convert(paths["float"].model, "float32"), num_threads=os.cpu_count())
    paths["tflite_float32"] = _Runner(float32)
    reference = stylize.stylize_image(paths["float"], image, tile_size=0)
    results = {}
    for name, stylizer in paths.items():
        out = stylize.stylize_image(stylizer, image, tile_size=0)
        seconds, times = common.time_call(lambda s=stylizer: stylize.stylize_image(s, image, tile_size=0), args.repeats)
        psnr = export.psnr(out, reference)
        results[name] = {"median_s": round(seconds, 4), "times": times,
                         "psnr_vs_float": round(psnr, 2) if np.isfinite(psnr) else None}  # None: identical
    faithful = [r["median_s"] for r in results.values() if (r["psnr_vs_float"] or np.inf) >= FAITHFUL_DB]
    for name, r in results.items():
        common.emit({"bench": "stylize_paths", "style": args.style, "path": name,
                     "source": default_source if name == "default" else (source if name == "float" else ""),
                     "size": f"{image.shape[1]}x{image.shape[0]}", **r,
                     "vs_fastest_faithful": round(r["median_s"] / min(faithful), 2), **common.machine()})


if __name__ == "__main__":
    main()
