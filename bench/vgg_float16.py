"""Does the packaged float16 copy of VGG19 blocks 1-3 score images as the float32 file does?

``python bench/vgg_float16.py --reference=../shared/weights/vgg19_imagenet_block1_to_block3.npz``

For the first ``--photos`` photos of ``--images`` (longer side ``--size``) and the shipped
``--style`` network's outputs on them, the weighted perceptual losses (content, style, TV,
total; the blocks 1-3 recipe) under both files, and the largest relative difference per term.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    from tfstyle import images, models, perceptual, recipes, styles, vgg

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", required=True, help="the float32 vgg19_imagenet_block1_to_block3.npz")
    p.add_argument("--packaged", default=vgg.PACKAGED_BLOCKS_1_TO_3)
    p.add_argument("--images", default=os.path.join(repo, "..", "shared", "data", "content", "eval"))
    p.add_argument("--photos", type=int, default=6)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--style", default="mosaic")
    args = p.parse_args()
    r = recipes.BLOCKS_1_TO_3
    weights = dict(content_weight=r.content_weight, style_weight=r.style_weight, tv_weight=r.tv_weight)
    net = models.load_transformer(models.pretrained_path(args.style))
    paths = images.list_images(args.images)[: args.photos]
    photos = [images.resize_longer_side(images.load_image(p), args.size)[None].astype(np.float32) for p in paths]
    results = {}
    for name, path in (("reference", args.reference), ("packaged", args.packaged)):
        loss_network = vgg.build_loss_network(path, r.style_layers, r.content_layer)
        grams = perceptual.style_grams(loss_network, styles.load_style_image(args.style, r.style_size))
        rows = []
        for x in photos:
            targets = perceptual.content_features(loss_network, x)
            for image in (net(x, training=False), x):
                losses = perceptual.perceptual_losses(loss_network, image, targets, grams, **weights)
                rows.append([float(losses[k][0]) for k in perceptual.LOSS_KEYS])
        results[name] = np.array(rows)
    relative = np.abs(results["packaged"] - results["reference"]) / np.maximum(np.abs(results["reference"]), 1e-12)
    print(f"{len(photos)} photos of {args.images} and their {args.style} outputs at {args.size} px, recipe {r.name}")
    for key, value in zip(perceptual.LOSS_KEYS, relative.max(0)):
        print(f"max relative difference of the {key} loss: {value:.2g}")


if __name__ == "__main__":
    main()
