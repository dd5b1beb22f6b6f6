"""Train a fast style transfer network for one style, or one network for several styles.

    tfstyle train --style=painting.jpg --data_dir=PHOTOS
    tfstyle train --style=mosaic --data_dir=PHOTOS --init_from= [--steps=N]
    tfstyle train --style=mosaic,candy,starry_night --identity_style --data_dir=PHOTOS
    tfstyle train --style=the_scream --add_to=runs/mosaic-candy-starry_night-photo --data_dir=PHOTOS
    tfstyle train --style=mosaic --width=0.25 --residual_blocks=3 --teacher=mosaic --name=mosaic_slim ...

With no other flag, one style fine-tunes the packaged candy network to the painting
(350 steps at 192 px, with the stability and dark-mass terms: about 22 minutes on 2 CPU
cores, the ETA in the log); --init_from= trains from random weights (40000 steps at
256 px, as Johnson et al.).

Outputs go to <runs_dir>/<style>/ (a multi-style run: <runs_dir>/<style>-<style>-.../):
final weights, checkpoints, previews, TensorBoard logs. Several --style values train
one network whose instance norms hold a scale and offset per style (convolutions
shared), each batch's examples going to the styles in turn; the log shows each
style's loss (style_<name>). --identity_style adds a "photo" row trained with the
content loss only, which `tfstyle stylize --strength` blends towards. --add_to trains
new styles into an existing network: only their norm rows learn, so the styles
already there stay bit-identical. --width and --residual_blocks make a slim
network; --teacher adds the mean squared difference to a trained network's
output to the loss (distillation). Run the same command again after an interruption (even
kill -9) and training resumes at the last checkpoint; a larger --steps trains
longer. Progress goes to the log every --log_every steps.
"""

from absl import flags

from tfstyle.commands import common
from tfstyle.config import FROM_SCRATCH, MIN_IMAGE_SIZE, QUICK_START, QUICK_START_BASE, WIDTHS

d = common.DEFAULTS


def by_start(setting):
    """Help text: a schedule setting's default depends on where the run starts (training.with_start)."""
    return (f" Default: {QUICK_START[setting]:g} fine-tuning the packaged {QUICK_START_BASE} network, "
            f"{FROM_SCRATCH[setting]:g} from random weights.")


common.define_style(help_text="Bundled style name (see `tfstyle styles`) or a path to a style image; several, "
                    "separated by commas, train one multi-style network.")
flags.DEFINE_list("style_scales", d.style_scales, "Multi-style: one factor per --style value multiplying --style_weight "
                  "for that style, e.g. 1,1,10 (a style whose Gram loss on photos is small, like starry_night, needs a "
                  "larger weight to show). Default: 1 for every style.")
flags.DEFINE_bool("identity_style", d.identity_style, "Multi-style: also train the identity 'photo' style (content "
                  "loss only), so --strength at stylize time blends in norm space rather than in pixels.")
flags.DEFINE_string("add_to", d.add_to, "A multi-style run folder or weights file: train --style into it as new "
                    "style(s), learning only their norm parameters (convolutions and other styles frozen).")
flags.DEFINE_string("name", d.name, "The run's folder under --runs_dir and the name the network is found and "
                    "exported under. Default: the style name, with _w<percent> / _b<blocks> for a slim network.")
flags.DEFINE_float("width", d.width, f"Filters of every conv as a fraction of Johnson et al.'s: one of "
                   f"{', '.join(map(str, WIDTHS))} (multiply-adds fall with about width squared).")
flags.register_validator("width", lambda w: w in WIDTHS, f"--width must be one of {', '.join(map(str, WIDTHS))}")
flags.DEFINE_integer("residual_blocks", d.residual_blocks, "Residual blocks at a quarter of the resolution.",
                     lower_bound=0, upper_bound=16)
flags.DEFINE_string("init_from", d.init_from, "Start a new run from these transformer weights (a network of the "
                    "same width and depth): fine-tuning, or a second phase with other loss weights. auto: the packaged "
                    f"{QUICK_START_BASE} network for one full-width style, else random weights; empty: random weights.")
flags.DEFINE_string("teacher", d.teacher, "Distillation: a trained network (style name, run folder, weights file or "
                    "SavedModel) whose outputs this one also learns to match.")
flags.DEFINE_float("distill_weight", d.distill_weight, "Weight of the mean squared pixel difference (0..255) to "
                   "--teacher's output.", lower_bound=0.0)
flags.DEFINE_float("noise_stability_weight", d.noise_stability_weight, "Stable video: weight of the mean squared "
                   "change of the output when the photo gets noise of --noise_sigma."
                   + by_start("noise_stability_weight"),
                   lower_bound=0.0)
flags.DEFINE_float("noise_sigma", d.noise_sigma, "Standard deviation (0..255) of that noise.", lower_bound=0.0)
flags.DEFINE_float("shift_stability_weight", d.shift_stability_weight, "Stable video: weight of the mean squared "
                   "difference between the output of a photo moved by a few pixels and the moved output."
                   + by_start("shift_stability_weight"),
                   lower_bound=0.0)
flags.DEFINE_float("dark_mass_weight", d.dark_mass_weight, "Weight of the penalty on near-black masses (8x8 "
                   "blocks darker than luma 40) painted where the photo is brighter: the droplets."
                   + by_start("dark_mass_weight"),
                   lower_bound=0.0)
common.define_runs_dir()
common.define_loss_network()
flags.DEFINE_string("data_dir", d.data_dir, "Folder of training photos (searched recursively). Empty: use --dataset.")
flags.DEFINE_string("dataset", d.dataset, "tensorflow-datasets name used when --data_dir is empty.")
flags.DEFINE_string("tfds_data_dir", d.tfds_data_dir, "Where tensorflow-datasets keeps its data (default: its own).")
flags.DEFINE_integer("image_size", d.image_size, "Training crop size in pixels." + by_start("image_size"),
                     lower_bound=MIN_IMAGE_SIZE)
flags.DEFINE_integer("batch_size", d.batch_size, "Global batch size, split over all replicas.", lower_bound=1)
flags.DEFINE_integer("steps", d.steps, "Total optimizer steps." + by_start("steps"), lower_bound=1)
flags.DEFINE_integer("accum_steps", d.accum_steps, "Gradient accumulation: batches per optimizer step.", lower_bound=1)
flags.DEFINE_float("lr", d.lr, "Adam learning rate." + by_start("lr"), lower_bound=0.0)
flags.DEFINE_enum("lr_schedule", d.lr_schedule, ["constant", "cosine", "exponential"], "Learning-rate decay over --steps.")
flags.DEFINE_float("lr_decay_rate", d.lr_decay_rate, "cosine: final lr fraction; exponential: decay factor over --steps.")
flags.DEFINE_enum("precision", d.precision, ["auto", "float32", "mixed_float16", "mixed_bfloat16"],
                  "auto: mixed_float16 on GPU, float32 on CPU.")
flags.DEFINE_enum("strategy", d.strategy, ["auto", "default", "mirrored", "multi_worker"],
                  "auto: multi_worker with TF_CONFIG, mirrored on >1 GPU.")
flags.DEFINE_bool("jit_compile", d.jit_compile, "Compile the train step with XLA.")
flags.DEFINE_integer("checkpoint_every", d.checkpoint_every, "Steps between checkpoints (and resume points); "
                     "the last step is always checkpointed.", lower_bound=1)
flags.DEFINE_integer("keep_checkpoints", d.keep_checkpoints, "Transformer checkpoints to keep.", lower_bound=1)
flags.DEFINE_integer("preview_every", d.preview_every, "Steps between preview grids, and one at the end (0: never).",
                     lower_bound=0)
flags.DEFINE_integer("log_every", d.log_every, "Steps between progress lines in the log (0: never).", lower_bound=0)
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        common.fail(f"unexpected arguments: {' '.join(argv[1:])} (flags take the form --name=value)", 2)
    from tfstyle import data, images, models, multistyle, styles, training, vgg
    from tfstyle.config import TrainConfig

    config = TrainConfig(**{f: getattr(FLAGS, f) for f in TrainConfig.__dataclass_fields__ if f in FLAGS})
    if config.style_scales:
        try:
            config.style_scales = tuple(float(x) for x in config.style_scales)
        except ValueError:
            common.fail(f"--style_scales={','.join(FLAGS.style_scales)}: give numbers separated by commas", 2)
    try:
        training.train(config)
    except (styles.UnknownStyleError, data.DataError, vgg.LossNetworkError, images.ImageError, training.TrainingError,
            multistyle.StyleWeightsError, models.ModelError) as e:
        common.fail(e, hard=isinstance(e, data.DataError))
