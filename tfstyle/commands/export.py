"""Export a trained style for production.

    tfstyle export --style=mosaic [--weights=PATH] [--out=saved_models]
    tfstyle export --any_painting

Writes <out>/<style>/<version>/ (a SavedModel for TensorFlow Serving, written
atomically), <out>/<style>_int8.tflite and <out>/<style>_fp16.tflite (for
phones) and <out>/<style>_export_report.json (sizes, ops, INT8/fp16 accuracy
against the float model). The weights are --weights, else your training run of
the style, else the weights shipped with tfstyle. See docs/SERVING.md.
"""

import os

from absl import flags, logging

from tfstyle.commands import common

common.define_style()
common.define_weights()
common.define_runs_dir()
flags.DEFINE_string("out", "saved_models", "Export folder (TF Serving's model base path is <out>/<style>).")
flags.DEFINE_integer("version", 0, "SavedModel version number. 0: one more than the highest existing version.", lower_bound=0)
flags.DEFINE_bool("overwrite", False, "Replace --version if it already exists.")
flags.DEFINE_list("tflite", ["int8", "fp16"], "TFLite files to write: int8, fp16 (empty: none).")
flags.DEFINE_string("calibration_dir", "", "Photos for INT8 calibration crops. Empty: the --data_dir the weights were "
                    "trained on (from the run's config.json), else ../shared/data/content/train when it exists, else "
                    "the three sample photos shipped in the package (enough to try; a release wants 100+ photos).")
flags.DEFINE_integer("calibration_crops", 100, "Number of calibration crops (at least 100 for a release).", lower_bound=1)
flags.DEFINE_integer("calibration_size", 256, "Calibration crop size in pixels.", lower_bound=16)
flags.DEFINE_string("range_quantile", "auto",
                    "INT8 activation ranges: this quantile over the calibration crops of each crop's own range, "
                    "in (0.5, 1]; auto: of 0.6, 0.75 and 0.9 (all from one calibration pass), the one whose INT8 "
                    "file is closest to the float network on 16 photos of --calibration_dir that gave no crop, "
                    "at 256 px (the best mean PSNR, with the worst photo within 1 dB of the best).")
flags.DEFINE_string("eval_dir", "../shared/data/content/eval",
                    "Photos to measure TFLite vs float accuracy on (empty, or the default folder missing: skip).")
flags.DEFINE_integer("eval_max_images", 0, "Use at most this many eval photos (0: all).", lower_bound=0)
flags.DEFINE_bool("any_painting", False, "Instead of a style, export the any-painting network to "
                  "<out>/any_painting/<version>/: a SavedModel whose signature stylize_with_style_image takes the "
                  "photos and a painting (tfstyle.arbitrary), and <out>/any_painting.tflite: its encoders and "
                  "decoders (TFLite cannot run its eigendecompositions; tfstyle.any_painting_tflite).")
flags.DEFINE_string("decoders", "", "--any_painting: the decoders file (empty: the packaged ones).")
FLAGS = flags.FLAGS
DEFAULT_CALIBRATION_DIR = "../shared/data/content/train"


def calibration_folder(weights):
    """(folder, why) of the INT8 calibration photos: --calibration_dir, else the run's --data_dir, else
    DEFAULT_CALIBRATION_DIR when it exists, else the package's sample photos."""
    from tfstyle import images, models

    if FLAGS.calibration_dir:
        return FLAGS.calibration_dir, "--calibration_dir"
    trained_on = models.run_config(weights).get("data_dir")
    if trained_on and os.path.isdir(trained_on):
        return trained_on, "the photos the network was trained on"
    if os.path.isdir(DEFAULT_CALIBRATION_DIR):
        return DEFAULT_CALIBRATION_DIR, "the default folder"
    return images.SAMPLES_DIR, ("the package's sample photos, as no --calibration_dir was given; pass "
                                "--calibration_dir=FOLDER (100+ of your photos) for a release")


def summary_lines(report):
    lines = [f"wrote SavedModel  {report['savedmodel']['path']}  {report['savedmodel']['bytes'] / 1e6:.2f} MB"]
    for mode, info in report["tflite"].items():
        ops = "integer-only builtin ops" if not info["float_ops"] else f"float ops: {', '.join(info['float_ops'])}"
        lines.append(f"wrote TFLite {mode:5s} {info['path']}  {info['bytes'] / 1e6:.2f} MB  ({ops}; I/O {', '.join(info['io_types'])})")
    for mode, result in report.get("eval", {}).items():
        if isinstance(result, dict) and "psnr_mean" in result:
            lines.append(
                f"{mode} vs float on {report['eval']['images']} images of {report['eval']['dir']}: "
                f"PSNR mean {result['psnr_mean']} dB, min {result['psnr_min']} dB, max abs error {result['max_abs_error']}"
            )
    lines.append(f"wrote report  {report['report_path']}")
    return lines


def _range_quantile(value):
    """--range_quantile as export_style takes it: "auto" or a float in (0.5, 1]."""
    if value == "auto":
        return value
    try:
        quantile = float(value)
    except ValueError:
        quantile = None
    if quantile is None or not 0.5 < quantile <= 1.0:
        common.fail(f"--range_quantile: '{value}' is neither auto nor a number in (0.5, 1]", 2)
    return quantile


def main(argv):
    if len(argv) > 1:
        common.fail(f"unexpected arguments: {' '.join(argv[1:])} (flags take the form --name=value)", 2)
    modes = [m.strip() for m in FLAGS.tflite if m.strip()]
    unknown = sorted(set(modes) - {"int8", "fp16"})
    if unknown:
        common.fail(f"--tflite: unknown mode(s) {', '.join(unknown)}; use int8 and/or fp16", 2)
    range_quantile = _range_quantile(FLAGS.range_quantile)
    from tfstyle import export, images, models, styles, tflite

    if FLAGS.any_painting:
        return export_any_painting()

    try:
        weights = models.find_weights(FLAGS.style, FLAGS.runs_dir, FLAGS.weights or None, saved_models=FLAGS.out)
        logging.info("exporting %s from %s", styles.style_name(FLAGS.style), weights)
        calibration_dir, why = calibration_folder(weights)
        if "int8" in modes:
            logging.info("INT8 calibration photos: %s (%s)", calibration_dir, why)
        eval_dir = FLAGS.eval_dir
        if eval_dir == flags.FLAGS["eval_dir"].default and not os.path.isdir(eval_dir):
            logging.info("no %s: skipping the accuracy report (pass --eval_dir=FOLDER)", eval_dir)
            eval_dir = ""
        for folder, flag in ((calibration_dir if "int8" in modes else None, "calibration_dir"), (eval_dir, "eval_dir")):
            if folder and not os.path.isdir(folder):
                raise FileNotFoundError(f"{folder}: no such directory (--{flag} takes a folder of photos)")
        report = export.export_style(
            FLAGS.style,
            weights,
            out_dir=FLAGS.out,
            version=FLAGS.version or None,
            overwrite=FLAGS.overwrite,
            tflite_modes=modes,
            calibration_dir=calibration_dir,
            num_crops=FLAGS.calibration_crops,
            crop_size=FLAGS.calibration_size,
            eval_dir=eval_dir or None,
            eval_max_images=FLAGS.eval_max_images or None,
            range_quantile=range_quantile,
        )
    except (export.ExportError, models.ModelError, styles.UnknownStyleError, tflite.ConversionError,
            images.ImageError, FileNotFoundError) as e:
        common.fail(e)
    for line in summary_lines(report):
        print(line)




def export_any_painting():
    from tfstyle import decoders, export, tflite

    try:
        path, parts = export.export_any_painting(FLAGS.out, FLAGS.version or None, FLAGS.overwrite,
                                                 FLAGS.decoders or None)
    except (export.ExportError, decoders.DecoderError, tflite.ConversionError) as e:
        common.fail(e)
    print(f"wrote SavedModel  {path}  {export.dir_size(path) / 1e6:.2f} MB  (signature stylize_with_style_image)")
    print(f"wrote TFLite      {parts}  {os.path.getsize(parts) / 1e6:.2f} MB  (encode1-3 and decode1-3: the "
          "convolutions; the app does the transform, see tfstyle.any_painting_tflite)")
