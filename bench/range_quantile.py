"""INT8 accuracy against the calibration range quantile: one JSON line per quantile.

``python bench/range_quantile.py --style=rain_princess --quantiles=0.99,0.9,0.75,0.6``

Converts the network of the style's latest export to full-integer INT8 with each
``--quantiles`` value in place of ``tflite.RANGE_QUANTILE`` (``tflite.calibrated_ranges``: per
tensor, that quantile over the calibration crops of each crop's own range) and scores the file
against the style's float SavedModel (``<saved_models>/<style>/<version>``) on ``--images``, as
the export report does. Choose a quantile on photos that are not the evaluation set.
``--statistics_margin`` gives the per-image statistics (the norms' channel means and variances)
their own ranges (``tflite.calibrated_ranges``).
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

from tfstyle import export, models, tflite  # noqa: E402
from tfstyle.images import list_images  # noqa: E402
from tfstyle.transformer import build_transformer  # noqa: E402


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--style", default="mosaic")
    p.add_argument("--quantiles", default="0.99,0.9,0.75,0.6", help="comma list, each in (0.5, 1]")
    p.add_argument("--images", default=common.shared_photos("eval"))
    p.add_argument("--calibration_dir", default=common.DEFAULT_CALIBRATION)
    p.add_argument("--statistics_margin", type=float, default=tflite.STATISTICS_MARGIN,
                   help="per-image statistics: the extremes widened by this fraction (negative: the quantile range)")
    p.add_argument("--crops", type=int, default=100)
    p.add_argument("--crop_size", type=int, default=256)
    p.add_argument("--saved_models", default=os.path.join(repo, "saved_models"))
    p.add_argument("--quick", action="store_true", help="a random tiny network, 4 crops of 32 px, 1 photo: for tests")
    args = p.parse_args()
    quantiles = [float(q) for q in args.quantiles.split(",")]
    margin = None if args.statistics_margin < 0 else args.statistics_margin
    photos = list_images(args.images)
    with tempfile.TemporaryDirectory() as tmp:
        if args.quick:
            net, quantiles, photos = build_transformer(width=0.25, residual_blocks=1), quantiles[:1], photos[:1]
            args.crops, args.crop_size = 4, 32
            savedmodel = export.export_savedmodel(net, tmp, "quick")
        else:
            savedmodel = models.latest_savedmodel(args.saved_models, args.style)
            if not savedmodel:
                sys.exit(f"error: no export of '{args.style}' under {args.saved_models}: run `tfstyle export --style={args.style}`")
            net, _ = models.load_network(savedmodel)  # the network of the export it is scored against
        crops = tflite.representative_crops(args.calibration_dir, args.crops, args.crop_size)
        for q in quantiles:
            content = tflite.convert(net, "int8", crops, range_quantile=q, statistics_margin=margin)
            result = export.compare_tflite(savedmodel, {"int8": content}, photos)["int8"]
            worst = min(result["per_image"], key=lambda r: r["psnr"])
            common.emit({"bench": "range_quantile", "style": "quick" if args.quick else args.style, "quantile": q,
                         "statistics_margin": margin,
                         "psnr_mean": result["psnr_mean"], "psnr_min": result["psnr_min"], "worst_image": worst["image"],
                         "images": len(photos), "crops": args.crops, "crop_size": args.crop_size,
                         **common.machine()})


if __name__ == "__main__":
    main()
