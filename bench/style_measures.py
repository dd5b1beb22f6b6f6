"""Style measures of stylized pictures: tfstyle's networks, the peer's outputs, Gatys' outputs, on one scale.

    python bench/style_measures.py --painting=mosaic --outputs=/tmp/peer/mosaic --label="peer mosaic"
    python bench/style_measures.py --painting=mosaic --outputs=out/mosaic/float out/mosaic/int8
    python bench/style_measures.py --painting=mosaic --model=tfstyle/pretrained/mosaic.npz --size=384
    python bench/style_measures.py --painting=mosaic --model=saved_models/mosaic_int8.tflite --size=384

For every photo of ``--photos`` this takes its output (``--outputs``: a folder of
pictures named like the photos, a suffix such as ``_styled`` allowed; or ``--model``: a
tfstyle network, style name or file as ``tfstyle stylize --model`` takes, run on the photo
at ``--size`` px longer side, a multi-style network on its ``--row``) and scores it
against the painting with ``tfstyle.measures`` (style gap closed, all / fine / coarse
scales, colour gap closed, content moved) and ``tfstyle.blobs`` (droplets). Prints one
JSON line per folder (or model) with the means over photos, the CPU and the loss network;
``--markdown`` also prints the table rows. Several ``--outputs`` folders share one loss
network and the photos' own scores. Score every method with the same ``--vgg_weights`` (the genuine
VGG19 blocks 1-3). The peer's outputs come from bench/peer_outputs.py.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

from tfstyle import images, measures, styles  # noqa: E402

DEFAULT_VGG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "weights",
                           "vgg19_imagenet_block1_to_block3.npz")


def matching_output(folder, photo_path):
    """The picture in ``folder`` whose name is the photo's stem (plus any suffix), or None."""
    stem = os.path.splitext(os.path.basename(photo_path))[0]
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(images.IMAGE_EXTENSIONS) and n.startswith(stem))
    exact = [n for n in names if os.path.splitext(n)[0] == stem]
    return os.path.join(folder, (exact or names)[0]) if names else None


def model_outputs(spec, row, size, photos):
    """(photo, output) pairs of a tfstyle network on ``photos`` at ``size`` px longer side."""
    from tfstyle import stylize

    stylizer, _ = stylize.load_stylizer(model=spec) if os.path.exists(spec) else stylize.load_stylizer(style=spec)
    if row:
        stylizer.set_blend(row)
    for path in photos:
        photo = images.resize_longer_side(images.load_image(path), size, upscale=True)
        yield photo, stylize.stylize_image(stylizer, photo)


def folder_outputs(folder, photos):
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such directory")
    for path in photos:
        output = matching_output(folder, path)
        if output is None:
            sys.exit(f"error: {folder}: no output for {os.path.basename(path)}")
        yield images.load_image(path), images.load_image(output)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--painting", required=True, help="bundled style name or a painting's path")
    p.add_argument("--photos", default=os.path.join("..", "shared", "data", "content", "eval"))
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--outputs", nargs="+", help="folders of stylized pictures named like the photos")
    source.add_argument("--model", help="a tfstyle network (weights, SavedModel, .tflite or style name)")
    p.add_argument("--row", default="", help="the style row of a multi-style --model")
    p.add_argument("--size", type=int, default=384, help="longer side for --model, in pixels")
    p.add_argument("--label", action="append", default=[], help="a row's name, once per row (default: the folder or model)")
    p.add_argument("--vgg_weights", default=DEFAULT_VGG)
    p.add_argument("--max_images", type=int, default=0)
    p.add_argument("--markdown", action="store_true", help="also print the Markdown table row on stderr")
    args = p.parse_args()
    common.set_threads(2)
    try:
        photos = images.list_images(args.photos)[: args.max_images or None]
        if not photos:
            raise FileNotFoundError(f"{args.photos}: no images")
        painting = images.load_image(styles.resolve_style(args.painting))
        scorer = measures.Measures(measures.loss_network(args.vgg_weights), painting)
        sources = [args.model] if args.model else args.outputs
        if args.label and len(args.label) != len(sources):
            raise ValueError(f"{len(args.label)} --label for {len(sources)} rows")
        for i, source in enumerate(sources):
            pairs = (model_outputs(source, args.row, args.size, photos) if args.model
                     else folder_outputs(source, photos))
            row = measures.summarize(scorer, pairs)
            label = args.label[i] if args.label else source
            common.emit({"bench": "style_measures", "label": label, "painting": styles.style_name(args.painting),
                         "source": source, "row": args.row or None, "size": args.size if args.model else None,
                         "photos": args.photos, "vgg_weights": os.path.basename(args.vgg_weights), **row,
                         **common.machine()})
            if args.markdown:
                print(measures.format_table([{**row, "network": label}]).splitlines()[-1], file=sys.stderr)
    except (FileNotFoundError, ValueError, images.ImageError, styles.UnknownStyleError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
