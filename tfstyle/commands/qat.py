"""Fine-tune a trained network so its INT8 TFLite file stays close to its float function.

    tfstyle qat --style=candy --data_dir=PHOTOS [--weights=PATH] [--steps=500] [--out=FILE]
    tfstyle export --style=candy --weights=runs/candy_qat.npz

Quantization-aware fine-tuning (tfstyle.qat): the network is trained with the INT8
file's rounding simulated in its forward pass, towards its own original output, so the
int8 noise no longer builds up along the residual trunk; the float function moves as
little as the rounding allows. No loss network is needed. The result goes to --out
(default <runs_dir>/<name>_qat.npz: float16 weights with the source's card and the
fine-tuning settings, as the shipped styles are stored) and exports like any trained
network. A multi-style network keeps all its rows.
"""

import os

from absl import flags, logging

from tfstyle.commands import common

common.define_style(help_text="The trained network to fine-tune: a style name (its run, else its shipped weights).")
common.define_weights("Transformer weights to fine-tune (.weights.h5 or .npz). Empty: the style's run, else the "
                      "shipped weights.")
common.define_runs_dir()
flags.DEFINE_string("data_dir", "../shared/data/content/train", "Photos to fine-tune on and to take the calibration "
                    "crops from (the export should calibrate on the same folder).")
flags.DEFINE_integer("steps", 500, "Optimizer steps.", lower_bound=1)
flags.DEFINE_float("lr", 2e-5, "Adam learning rate (the weights are in the INT8 form's scale: keep it small).",
                   lower_bound=0.0)
flags.DEFINE_integer("image_size", 128, "Training crop size in pixels.", lower_bound=16)
flags.DEFINE_integer("batch_size", 4, "Batch size.", lower_bound=1)
flags.DEFINE_integer("calibration_crops", 100, "Crops that set the simulated int8 ranges (as the export's).",
                     lower_bound=1)
flags.DEFINE_integer("calibration_size", 256, "Calibration crop size in pixels.", lower_bound=16)
flags.DEFINE_float("range_quantile", 0.75, "Quantile of the crops' own extremes that sets each simulated range "
                   "(as `tfstyle export --range_quantile`).", lower_bound=0.5, upper_bound=1.0)
flags.DEFINE_string("out", "", "Where the fine-tuned weights go (.npz). Default: <runs_dir>/<style>_qat.npz.")
flags.DEFINE_integer("log_every", 25, "Steps between progress lines.", lower_bound=1)
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        common.fail(f"unexpected arguments: {' '.join(argv[1:])} (flags take the form --name=value)", 2)
    if FLAGS.out and not FLAGS.out.endswith(".npz"):
        common.fail(f"--out={FLAGS.out}: the weights are written as .npz (float16, as the shipped styles)", 2)
    if not os.path.isdir(FLAGS.data_dir):
        common.fail(f"--data_dir={FLAGS.data_dir}: no such directory", 2)
    from tfstyle import data, images, models, qat, styles, tflite

    try:
        weights = models.find_weights(FLAGS.style, FLAGS.runs_dir, FLAGS.weights or None)
        model, _ = models.load_network(weights)
        name = styles.style_name(FLAGS.style)
        out = FLAGS.out or os.path.join(FLAGS.runs_dir, f"{name}_qat.npz")
        logging.info("fine-tuning %s from %s for INT8, %d steps", name, weights, FLAGS.steps)
        crops = tflite.representative_crops(FLAGS.data_dir, FLAGS.calibration_crops, FLAGS.calibration_size)
        skipped = data.SkippedFiles()
        dataset = data.folder_dataset(FLAGS.data_dir, FLAGS.image_size, FLAGS.batch_size, skipped=skipped)
        data.first_batch(dataset, skipped)  # a folder without one usable photo: one line, before the slow part
        tuned = qat.fine_tune(model, crops, dataset, FLAGS.steps, lr=FLAGS.lr, range_quantile=FLAGS.range_quantile,
                              log_every=FLAGS.log_every)
    except (FloatingPointError, models.ModelError, styles.UnknownStyleError, tflite.ConversionError, images.ImageError,
            data.DataError, FileNotFoundError) as e:
        common.fail(e)
    settings = {"steps": FLAGS.steps, "lr": FLAGS.lr, "image_size": FLAGS.image_size, "batch_size": FLAGS.batch_size,
                "range_quantile": FLAGS.range_quantile, "photos": FLAGS.data_dir, "from": weights}
    card = models.pretrained_card(weights) if weights.endswith(".npz") else {}
    card.setdefault("style", name)  # a SavedModel or .h5 source carries no card
    models.save_pretrained(tuned, out, qat.card_after_round(card, settings))
    print(f"wrote {out}")
