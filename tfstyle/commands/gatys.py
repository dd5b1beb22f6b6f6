"""Stylize one photo by optimizing its pixels (Gatys et al.): slow, and the quality baseline.

    tfstyle gatys --style=mosaic photo.jpg out.png [--iterations=300] [--vgg_weights=FILE]

The image starts from the photo (or noise) and is optimized with L-BFGS (or
Adam) against the very loss a network of that style is trained with: the same
VGG19 layers and weights, from the recipe for --vgg_weights unless set. The
losses along the way go to OUTPUT.losses.json.
"""

from absl import flags

from tfstyle.commands import common

common.define_style()
common.define_loss_network()
flags.DEFINE_integer("iterations", 300, "Optimizer iterations (L-BFGS: quasi-Newton steps).", lower_bound=1)
flags.DEFINE_enum("optimizer", "lbfgs", ["lbfgs", "adam"], "Optimizer of the pixels.")
flags.DEFINE_float("lr", 5.0, "Adam learning rate (pixels are 0..255).", lower_bound=0.0)
flags.DEFINE_integer("image_size", 0, "Longer side of the output in pixels (0: as the photo).", lower_bound=0)
flags.DEFINE_enum("init", "content", ["content", "noise"], "Start from the photo or from noise.")
flags.DEFINE_integer("log_every", 10, "Record the losses every N iterations.", lower_bound=0)
flags.DEFINE_string("history", "", "Where to write the recorded losses as JSON (default: OUTPUT.losses.json).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) != 3:
        common.fail("usage: tfstyle gatys --style=NAME PHOTO OUTPUT", 2)
    content_path, output = argv[1:]
    import json
    import os

    import numpy as np

    from tfstyle import gatys, images, models, recipes, styles, vgg

    try:
        style_path = models.style_image(FLAGS.style)
        if not os.path.isfile(content_path):
            raise gatys.GatysError(f"{content_path}: no such file")
        content = images.resize_longer_side(images.load_image(content_path), FLAGS.image_size, upscale=True)
        settings = common.loss_settings()
        network = vgg.resolve_weights(settings.pop("vgg_weights"))  # the file used, for the log
        _, loss = recipes.complete(network, **settings)
        style = styles.load_style_image(style_path, recipes.style_image_size(loss))
        net = vgg.build_loss_network(network, loss["style_layers"], loss["content_layer"], seed=FLAGS.seed)
        loss_weights = recipes.loss_settings(loss)
        image, history = gatys.stylize(content, style, net, loss_weights, FLAGS.iterations, FLAGS.optimizer, FLAGS.lr,
                                       FLAGS.init, FLAGS.seed, FLAGS.log_every, progress=FLAGS.progress)
        images.save_image(output, np.round(image))
    except (gatys.GatysError, styles.UnknownStyleError, images.ImageError, vgg.LossNetworkError, OSError) as e:
        common.fail(e)
    history_path = FLAGS.history or os.path.splitext(output)[0] + ".losses.json"
    with open(history_path, "w") as f:
        json.dump({"style": FLAGS.style, "optimizer": FLAGS.optimizer, "vgg_weights": network,
                   "loss": {k: list(v) if isinstance(v, tuple) else v for k, v in loss.items()},
                   "history": history}, f, indent=1)
    for h in history:
        print(f"iter {h['iteration']:5d}  total {h['total']:.6g}  content {h['content']:.6g}  "
              f"style {h['style']:.6g}  tv {h['tv']:.6g}  ({h['seconds']:.1f} s)")
    print(f"wrote {output} and {history_path}")
