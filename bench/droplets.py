"""Droplets by output size: how many dark droplets (``tfstyle.blobs``) each network paints at each size.

    python bench/droplets.py --networks=tfstyle/pretrained/candy.npz,saved_models/candy_int8.tflite \
        --sizes=512,1024,2048 --save=/tmp/droplets > bench/results/droplets_zen4.jsonl

Every photo of ``--photos`` is scaled to each of ``--sizes`` (longer side) and stylized the way
``tfstyle stylize`` does (``stylize.stylize_image``: one pass up to 1024 px, 1024 px tiles with shared
statistics above). One JSON line per (network, size): the droplets found, the photos with any, and
which, with the CPU. ``--save`` keeps the outputs (``<save>/<network>/<size>/<photo>.png``) to look at.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

from tfstyle import blobs, images, stylize, tiling  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--networks", required=True, help="comma-separated, as tfstyle stylize --model takes them")
    p.add_argument("--sizes", default="512,1024,2048")
    p.add_argument("--photos", default=os.path.join("..", "shared", "data", "content", "eval"))
    p.add_argument("--max_images", type=int, default=0)
    p.add_argument("--save", default="", help="folder to keep the outputs in")
    args = p.parse_args()
    common.set_threads(2)
    photos = images.list_images(args.photos)[: args.max_images or None]
    for network in args.networks.split(","):
        stylizer, source = stylize.load_stylizer(model=network, precision="float" if not network.endswith(
            ".tflite") else "auto")
        label = os.path.splitext(os.path.basename(network.rstrip("/")))[0]
        for size in (int(s) for s in args.sizes.split(",")):
            found, skipped = {}, None
            for path in photos:
                photo = images.resize_longer_side(images.load_image(path), size, upscale=True)
                try:
                    output = stylize.stylize_image(stylizer, photo)
                except tiling.TilingError as e:  # a .tflite file has no shared-statistics tiles: say so, go on
                    skipped = str(e)
                    break
                stem = os.path.splitext(os.path.basename(path))[0]
                count = len(blobs.find_blobs(photo, output))
                if count:
                    found[stem] = count
                if args.save:
                    images.save_image(os.path.join(args.save, label, str(size), stem + ".png"), output)
            if skipped:
                common.emit({"bench": "droplets", "network": network, "size": size, "skipped": skipped,
                             **common.machine()})
                continue
            common.emit({"bench": "droplets", "network": network, "source": source, "size": size,
                         "droplets": sum(found.values()), "images_with_droplets": len(found), "images": len(photos),
                         "where": found, **common.machine()})


if __name__ == "__main__":
    main()
