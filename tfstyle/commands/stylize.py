"""Apply a style to your own photos.

    tfstyle stylize --style=mosaic photo.jpg out.jpg
    tfstyle stylize --style=mosaic a.jpg b.png outdir/
    tfstyle stylize --model=saved_models/mosaic_int8.tflite photos/ outdir/
    tfstyle stylize --style=mosaic:0.7,candy:0.3 --strength=0.8 photo.jpg out.jpg
    tfstyle stylize --style=my_painting.jpg photo.jpg out.jpg
    tfstyle stylize --model=NETWORK --contact_sheet photo.jpg sheet.png
    tfstyle stylize --model=saved_models/mosaic_slim_int8.tflite clip.mp4 out.mp4 --json

--style is a style name: your trained run (<runs_dir>/<style>/), else your
latest export (<saved_models>/<style>/<version>), else the weights shipped with
tfstyle. A painting with no trained network (any image file, or a bundled painting
such as the_scream) goes through the any-painting network in seconds, with no
training (tfstyle.arbitrary; --stroke_scale, --coarse_size, --strength). --model (or a path given as --style) is transformer weights (.h5), a
SavedModel directory or a .tflite file. Photos are turned upright per EXIF and
come back at their own size (--max_size downscales first); photos larger than
--tile_size go through in tiles with blended seams.

A multi-style network (weights, SavedModel or .tflite) takes --style as a blend of
its styles, NAME[:WEIGHT],... (weights normalized; default: its first style), or
--style_weights with one number per style. --strength goes from 0 (the photo) to 1
(the full style): in norm space when the network has an identity style, else as a
pixel fade. A blend without --model looks for a multi-style run holding its styles.

Clips (.mp4, .mov, .mkv, .webm, .avi, animated .gif; a folder of frames with --fps)
go frame by frame through the same network, keeping their frame rate and sound
(needs PyAV: pip install 'tfstyle[video]'); see tfstyle.video.

By default a style runs on LiteRT from its export's float16 TFLite file when there is
one (--precision=float: TensorFlow's runtime; int8: the INT8 file); photos that need
tiles run on TensorFlow, whose tiles share normalization statistics. An output that
is its own input is refused unless --overwrite.
"""

import os

from absl import flags

from tfstyle.commands import common

common.define_style(default="", help_text="Style name (see `tfstyle styles`), or a path to a model (.h5, SavedModel dir, .tflite).")
common.define_runs_dir()
common.define_saved_models()
flags.DEFINE_string("model", "", "Path to a model: transformer weights (.h5), a SavedModel directory, or a .tflite file.")
flags.DEFINE_integer("max_size", 0, "Downscale photos so the longer side is at most this (0: keep the size).", lower_bound=0)
flags.DEFINE_integer("tile_size", 1024, "Photos with a side longer than this are processed in tiles (0: never tile).",
                     lower_bound=0)
flags.DEFINE_integer("tile_overlap", 128, "Overlap of neighbouring tiles in pixels (seams are blended across it).",
                     lower_bound=0)
flags.DEFINE_integer("stats_size", 1536, "Longer side of the photo copy whose normalization statistics tiles use.",
                     lower_bound=16)
flags.DEFINE_bool("preserve_color", False, "Keep the photo's colours: transfer only the stylized luminance.")
flags.DEFINE_float("strength", 1.0, "From 0 (the photo) to 1 (the full style).")
flags.DEFINE_list("style_weights", None, "Multi-style network: one weight per style, in its order (normalized).")
flags.DEFINE_bool("contact_sheet", False, "Write one image: the photo and every style of the network, labelled.")
flags.DEFINE_integer("fps", 0, "Clips: frame rate of a folder of input frames (0: 25).", lower_bound=0)
flags.DEFINE_bool("json", False, "Clips: print a JSON summary (frames, size, fps, audio, speed) on stdout.")
flags.DEFINE_enum("precision", "auto", ["auto", "float", "fp16", "int8"],
                  "auto: LiteRT on the style's float16 TFLite file (the float picture within a pixel level) "
                  "where its export has one, else float; float: the float32 network on TensorFlow; "
                  "fp16 / int8: the export's TFLite file of that precision.")
flags.DEFINE_string("decoders", "", "A painting with no trained network uses the any-painting network: its "
                    "decoders file (empty: the packaged ones; `tfstyle train-decoders` writes others).")
flags.DEFINE_bool("any_painting", False, "Use the any-painting network for --style even when the style has a "
                  "trained network (to compare the two).")
flags.DEFINE_float("stroke_scale", 1.0, "Any-painting network: how large the painting's strokes come out "
                   "(2: twice as large).", lower_bound=0.1)
flags.DEFINE_integer("coarse_size", 512, "Any-painting network: the photo's longer side at the coarse levels "
                     "(relu3_1, relu2_1); the look is that of a photo this size, whatever the photo's size.",
                     lower_bound=32)
flags.DEFINE_bool("overwrite", False, "Allow an output to replace its own input photo.")
FLAGS = flags.FLAGS


def check_values():
    """The numbers of --strength, --style_weights and the weights in a --style blend, checked before
    TensorFlow loads (it takes many seconds); returns the --style_weights as floats, or None."""
    from tfstyle import multistyle

    multistyle.check_strength(FLAGS.strength)
    for item in multistyle.split_styles(FLAGS.style) if "," in FLAGS.style or ":" in FLAGS.style else []:
        name, _, value = item.partition(":")
        if value.strip() and not os.path.exists(FLAGS.style):
            weight = multistyle.parse_number(value.strip(), f"weight of '{name.strip()}'")
            multistyle.check_weights([weight, 1.0], [name.strip(), "-"])  # finite and >= 0
    if not FLAGS.style_weights:
        return None
    weights = [multistyle.parse_number(w, "--style_weights") for w in FLAGS.style_weights]
    multistyle.check_weights(weights, [f"style {i + 1}" for i in range(len(weights))])
    return weights


def main(argv):
    from tfstyle import multistyle

    try:
        weights = check_values()
    except multistyle.StyleWeightsError as e:
        common.fail(e, 2)
    from tfstyle import models, styles, stylize, tiling, video

    try:
        if video.is_video_job(argv[1:]):
            return run_video(argv[1:], weights)
        failures = stylize.run(
            argv[1:], FLAGS.style, FLAGS.model, FLAGS.runs_dir, FLAGS.saved_models, FLAGS.max_size,
            FLAGS.tile_size, FLAGS.tile_overlap, FLAGS.stats_size, FLAGS.preserve_color,
            strength=FLAGS.strength, style_weights=weights, sheet=FLAGS.contact_sheet,
            precision=FLAGS.precision, overwrite=FLAGS.overwrite, painting=painting_settings(),
        )
    except (stylize.StylizeError, tiling.TilingError, models.ModelError, styles.UnknownStyleError, FileNotFoundError,
            multistyle.StyleWeightsError, video.VideoError) as e:
        common.fail(e, 2 if isinstance(e, stylize.StylizeError) and str(e).startswith("usage:") else 1)
    if failures:
        return 1


def painting_settings():
    return {"decoders": FLAGS.decoders, "stroke_scale": FLAGS.stroke_scale, "coarse_size": FLAGS.coarse_size,
            "always": FLAGS.any_painting}


def run_video(args, weights):
    import json

    from tfstyle import stylize, video

    stylize.check_max_size(FLAGS.max_size)
    stylizer, source = stylize.prepare_stylizer(FLAGS.style, FLAGS.model, FLAGS.runs_dir, FLAGS.saved_models,
                                                FLAGS.strength, weights, FLAGS.precision, os.cpu_count(),
                                                painting_settings())
    try:
        summary = {**video.run(args, stylizer, FLAGS.fps, FLAGS.max_size, FLAGS.preserve_color), "model": source}
    except KeyboardInterrupt:
        common.fail(f"interrupted; nothing written to {args[1]}", 130)
    if FLAGS.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {summary['output']}: {summary['frames']} frames {summary['width']}x{summary['height']} at "
              f"{summary['fps']:g} fps, audio {summary['audio']} ({summary['frames_per_second']} frames/s)")
