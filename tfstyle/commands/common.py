"""Flags that several ``tfstyle`` subcommands share: each name, default and help text is written once here.

Only absl is imported, so ``--help`` and bad flags answer before TensorFlow
loads. A subcommand module calls the ``define_*`` functions it needs at import;
the ``tfstyle`` command imports exactly one subcommand per process, so no flag
is defined twice.
"""

import sys

from absl import flags

from tfstyle.config import TrainConfig

DEFAULTS = TrainConfig()
FLAGS = flags.FLAGS


def define_style(default=DEFAULTS.style, help_text="Bundled style name (see `tfstyle styles`) or a path to a style image."):
    flags.DEFINE_string("style", default, help_text)


def define_runs_dir():
    flags.DEFINE_string("runs_dir", DEFAULTS.runs_dir, "Training runs live in <runs_dir>/<style>/.")


def define_saved_models():
    flags.DEFINE_string("saved_models", "saved_models", "Exports live in <saved_models>/<style>/<version>/ (TF Serving's layout).")


def define_weights(help_text="Transformer weights (.weights.h5). Empty: the style's trained run, else its shipped weights."):
    flags.DEFINE_string("weights", "", help_text)


def define_loss_network():
    """--vgg_weights, --seed and the loss settings; unset loss settings come from the recipe (tfstyle.recipes)."""
    flags.DEFINE_string("vgg_weights", DEFAULTS.vgg_weights,
                        "VGG19 loss network: 'auto' (the full ImageNet file if already in the Keras cache or "
                        "$TFSTYLE_VGG19_WEIGHTS, else the genuine ImageNet blocks 1-3 shipped in the package; no "
                        "download), 'imagenet' (the full file: cache, $TFSTYLE_VGG19_WEIGHTS or download), a weights "
                        "file (.h5, or .npz holding the first layers, e.g. blocks 1-3), or 'random' (tests only).")
    flags.DEFINE_list("style_layers", None, "VGG19 layers of the style loss. Default: the recipe's for --vgg_weights.")
    flags.DEFINE_string("content_layer", None, "VGG19 layer of the content loss. Default: the recipe's.")
    flags.DEFINE_float("content_weight", None, "Weight of the content loss. Default: the recipe's.", lower_bound=0.0)
    flags.DEFINE_float("style_weight", None, "Weight of the Gram style loss. Default: the recipe's.", lower_bound=0.0)
    flags.DEFINE_float("tv_weight", None, "Weight of the total-variation loss. Default: the recipe's.", lower_bound=0.0)
    flags.DEFINE_integer("style_size", None, "Longer side of the style image in pixels (0: as is). Default: the recipe's.",
                         lower_bound=0)
    flags.DEFINE_list("style_levels", None, "Pyramid levels of the style loss: 1 is the image, 2 and 4 the image "
                      "averaged over 2x2 and 4x4 blocks (larger shapes of the painting). Default: the recipe's.")
    flags.register_validator("style_levels", lambda v: v is None or all(x.isdigit() and int(x) >= 1 for x in v),
                             "--style_levels takes whole numbers >= 1, e.g. 1,2,4")
    flags.DEFINE_bool("style_normalize", None, "Weigh each Gram term by its target's own magnitude, so no layer or "
                      "level swamps the others. Default: the recipe's.")
    flags.DEFINE_float("stroke_scale", None, "How large the painting's strokes come out: the style image at "
                       "--style_size x this (2: strokes twice as large). Default: the recipe's.", lower_bound=0.1)
    flags.DEFINE_integer("seed", DEFAULTS.seed, "Seed for initialization (and the random VGG19).")


def loss_settings():
    """The loss flags as keyword arguments (None where unset, for the recipe to fill)."""
    names = ("vgg_weights", "style_layers", "content_layer", "content_weight", "style_weight", "tv_weight", "style_size",
             "style_levels", "style_normalize", "stroke_scale")
    return {name: getattr(FLAGS, name) for name in names}


def fail(message, code=1, hard=False):
    """Ends the command with one line on stderr: ``error: <message>``.

    ``hard``: leave at once, without the interpreter's shutdown. After a tf.data
    pipeline failed, its worker threads may still be inside a Python function and
    a normal exit can wait on them for ever.
    """
    print(f"error: {message}", file=sys.stderr)
    if hard:
        import os

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
