"""Train a fast style transfer network: ``python train.py --style=mosaic``.

Run the same command again after an interruption and training resumes from the
last checkpoint. Outputs go to ``<runs_dir>/<style>/`` (see README).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter

from absl import app, flags  # noqa: E402

from tfstyle import data, distribution, images, styles, training, vgg  # noqa: E402
from tfstyle.training import TrainConfig  # noqa: E402

defaults = TrainConfig()
flags.DEFINE_string("style", defaults.style, "Bundled style name or path to a style image.")
flags.DEFINE_string("data_dir", defaults.data_dir, "Folder of training photos (searched recursively). Empty: use --dataset.")
flags.DEFINE_string("dataset", defaults.dataset, "tensorflow-datasets name used when --data_dir is empty.")
flags.DEFINE_string("tfds_data_dir", defaults.tfds_data_dir, "Where tensorflow-datasets keeps its data (default: its own).")
flags.DEFINE_string("runs_dir", defaults.runs_dir, "Outputs go to <runs_dir>/<style>/.")
flags.DEFINE_integer("image_size", defaults.image_size, "Training crop size in pixels.")
flags.DEFINE_integer("style_size", None, "Longer side of the style image in pixels (0: as is). Default: the recipe's.")
flags.DEFINE_integer("batch_size", defaults.batch_size, "Global batch size, split over all replicas.")
flags.DEFINE_integer("steps", defaults.steps, "Total optimizer steps.")
flags.DEFINE_integer("accum_steps", defaults.accum_steps, "Gradient accumulation: batches per optimizer step.")
flags.DEFINE_float("lr", defaults.lr, "Adam learning rate.")
flags.DEFINE_enum("lr_schedule", defaults.lr_schedule, ["constant", "cosine", "exponential"], "Learning-rate decay over --steps.")
flags.DEFINE_float("lr_decay_rate", defaults.lr_decay_rate, "cosine: final lr fraction; exponential: decay factor over --steps.")
flags.DEFINE_float("content_weight", None, "Weight of the content (feature) loss.")
flags.DEFINE_float("style_weight", None, "Weight of the Gram-matrix style loss.")
flags.DEFINE_float("tv_weight", None, "Weight of the total-variation loss.")
flags.DEFINE_list("style_layers", None, "VGG19 layers for the style loss. Default: the recipe's.")
flags.DEFINE_string("content_layer", None, "VGG19 layer for the content loss. Default: the recipe's.")
flags.DEFINE_string("vgg_weights", defaults.vgg_weights, "'imagenet', a path to VGG19 notop .h5 weights, or 'random' (tests only).")
flags.DEFINE_enum("precision", defaults.precision, list(distribution.PRECISIONS), "auto: mixed_float16 on GPU, float32 on CPU.")
flags.DEFINE_enum("strategy", defaults.strategy, list(distribution.STRATEGIES), "auto: multi_worker with TF_CONFIG, mirrored on >1 GPU.")
flags.DEFINE_bool("jit_compile", defaults.jit_compile, "Compile the train step with XLA.")
flags.DEFINE_integer("checkpoint_every", defaults.checkpoint_every, "Steps between checkpoints (and resume points).")
flags.DEFINE_integer("keep_checkpoints", defaults.keep_checkpoints, "Transformer checkpoints to keep.")
flags.DEFINE_integer("preview_every", defaults.preview_every, "Steps between preview grids (0: never).")
flags.DEFINE_integer("seed", defaults.seed, "Seed for initialization (and the random VGG19).")
flags.DEFINE_integer("verbose", defaults.verbose, "Keras fit verbosity (-1: bar on a terminal, else a line per checkpoint).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    config = TrainConfig(**{f: getattr(FLAGS, f) for f in TrainConfig.__dataclass_fields__ if f in FLAGS})
    try:
        training.train(config)
    except (styles.UnknownStyleError, data.DataError, vgg.LossNetworkError, images.ImageError, training.TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
