"""How close is the fast network to the optimization method? Same photos, same loss network.

    tfstyle evaluate --style=mosaic [--weights=PATH] [--images=DIR] --vgg_weights=FILE

For every photo, at each of --sizes (longer side), scores with the loss the
network was trained with (VGG19 layers and weights from the run's config.json
or the shipped weights' card, else the recipe for --vgg_weights): the photo itself, the
network's output, and Gatys' L-BFGS optimization after each of
--gatys_iterations. Prints and saves a table of the means over photos and the
"equivalent iterations" at which Gatys gets below the network. A multi-style
network (--weights) is scored on its --style row, at that style's weight.

--measures adds the style measures (tfstyle.measures: style gap closed, colour gap
closed, content moved; tfstyle.blobs: droplets) of the network's outputs at
--measure_size against the style's painting, with --vgg_weights (blocks 1-3 suffice).
--flicker_frames=30 adds the network's warp error on synthetic moving clips of the
first three photos, relative to the clips' own (tfstyle.flicker).
"""

import os

from absl import flags

from tfstyle.commands import common

common.define_style()
common.define_weights()
common.define_runs_dir()
common.define_loss_network()
DEFAULT_IMAGES = os.path.join("..", "shared", "data", "content", "eval")
flags.DEFINE_string("images", "", f"Folder of photos. Empty: {DEFAULT_IMAGES} when it exists, else the three sample "
                    "photos shipped in the package.")
flags.DEFINE_integer("max_images", 0, "Use only the first N photos (0: all).", lower_bound=0)
flags.DEFINE_list("sizes", ["256", "512"], "Longer side of the photos in pixels.")
flags.DEFINE_list("gatys_iterations", ["50", "100", "300"], "L-BFGS iterations to report.")
flags.DEFINE_list("gatys_sizes", [], "Sizes at which Gatys runs too (default: all --sizes).")
flags.DEFINE_bool("gatys", True, "Run Gatys (--nogatys scores the network only).")
flags.DEFINE_string("out", "", "Where to save the table (.md; a .json goes beside it). "
                    "Default: <runs_dir>/<style>/evaluation.md.")
flags.DEFINE_bool("progress", False, "Progress bars for Gatys.")
flags.DEFINE_bool("measures", False, "Also report the style measures and droplets (tfstyle.measures, tfstyle.blobs).")
flags.DEFINE_integer("measure_size", 384, "Longer side of the photos for --measures, in pixels.", lower_bound=32)
flags.DEFINE_integer("flicker_frames", 0, "Also measure flicker: warp error on synthetic pan/zoom/rotate/jitter clips "
                     "of this many frames (30 is the standard; 0: no).", lower_bound=0)
FLAGS = flags.FLAGS


def positive_ints(values, name):
    try:
        numbers = [int(v) for v in values]
    except ValueError:
        common.fail(f"--{name} must be a comma-separated list of integers, got '{','.join(values)}'", 2)
    if any(n < 1 for n in numbers):
        common.fail(f"--{name} values must be positive, got '{','.join(values)}'", 2)
    return numbers


def main(argv):
    if len(argv) > 1:
        common.fail(f"unexpected arguments: {' '.join(argv[1:])} (flags take the form --name=value)", 2)
    sizes = positive_ints(FLAGS.sizes, "sizes")
    iterations = positive_ints(FLAGS.gatys_iterations, "gatys_iterations") if FLAGS.gatys else []
    gatys_sizes = positive_ints(FLAGS.gatys_sizes, "gatys_sizes") if FLAGS.gatys_sizes else sizes
    import json
    import sys

    from tfstyle import evaluate, images, measures, models, multistyle, recipes, styles, vgg

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    try:
        weights_path = models.find_weights(FLAGS.style, FLAGS.runs_dir, FLAGS.weights or None)
        folder = FLAGS.images or (DEFAULT_IMAGES if os.path.isdir(DEFAULT_IMAGES) else images.SAMPLES_DIR)
        paths = images.list_images(folder)[: FLAGS.max_images or None]
        if not paths:
            raise FileNotFoundError(f"{folder}: no images (--images takes a folder of photos)")
        photos = [(os.path.basename(p), images.load_image(p)) for p in paths]
        transformer, _ = models.load_network(weights_path)
        row = None
        if getattr(transformer, "row_names", None):  # a multi-style network: score its --style row
            row = styles.style_name(FLAGS.style)
            transformer = multistyle.single_style(transformer, row)
        settings = common.loss_settings()
        network = settings["vgg_weights"] = vgg.resolve_weights(FLAGS.vgg_weights)  # the file used, for the log
        trained, trained_network = models.trained_loss(weights_path, row)
        if os.path.basename(trained_network) == os.path.basename(network):
            settings.update({k: v for k, v in trained.items() if settings[k] is None})
        _, loss = recipes.complete(settings.pop("vgg_weights"), **settings)
        style_image = styles.load_style_image(models.style_image(FLAGS.style, FLAGS.runs_dir),
                                              recipes.style_image_size(loss))
        loss_network = vgg.build_loss_network(network, loss["style_layers"], loss["content_layer"], seed=FLAGS.seed)
        loss_weights = recipes.loss_settings(loss)
        rows, summary = evaluate.evaluate(transformer, loss_network, style_image, photos, loss_weights, sizes,
                                          iterations, gatys_sizes, progress=FLAGS.progress, log=log)
        scored = None
        if FLAGS.measures:
            painting = images.load_image(models.style_image(FLAGS.style, FLAGS.runs_dir))
            scorer = measures.Measures(measures.loss_network(network), painting)
            scored = evaluate.style_measures(transformer, scorer, photos, FLAGS.measure_size)
        flicker_rows = measure_flicker(transformer, photos[:3], log) if FLAGS.flicker_frames else []
    except (models.ModelError, styles.UnknownStyleError, images.ImageError, vgg.LossNetworkError,
            multistyle.StyleWeightsError, FileNotFoundError, ValueError) as e:
        common.fail(e)
    table = evaluate.format_table(rows)
    text = (f"Style {styles.style_name(FLAGS.style)}, weights {weights_path}, VGG19 weights {network} "
            f"(style {', '.join(loss['style_layers'])}; content {loss['content_layer']}; weights content "
            f"{loss['content_weight']:g}, style {loss['style_weight']:g}, TV {loss['tv_weight']:g}; style image "
            f"{loss['style_size']} px), {len(photos)} photos from {folder}; means over photos.\n\n"
            f"{table}\n\n{evaluate.format_summary(summary)}\n")
    if scored:
        text += (f"\nStyle measures at {FLAGS.measure_size} px against the painting (tfstyle.measures; blobs: "
                 f"droplets, tfstyle.blobs), means over photos:\n\n"
                 f"{measures.format_table([{**scored, 'network': 'tfstyle'}])}\n")
    if flicker_rows:
        from tfstyle import flicker

        text += f"\nFlicker (warp error, 0..255, on synthetic clips; tfstyle.flicker):\n\n{flicker.format_table(flicker_rows)}\n"
    print(text)
    out = FLAGS.out or os.path.join(FLAGS.runs_dir, styles.style_name(FLAGS.style), "evaluation.md")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump({"style": FLAGS.style, "weights": weights_path, "vgg_weights": network,
                   "loss": {k: list(v) if isinstance(v, tuple) else v for k, v in loss.items()},
                   "photos": [n for n, _ in photos], "rows": rows,
                   "equivalent_iterations": {str(k): v for k, v in summary.items()},
                   "style_measures": scored and {**scored, "size": FLAGS.measure_size},
                   "flicker": flicker_rows}, f, indent=1)
    log(f"wrote {out}")


def measure_flicker(transformer, photos, log):
    from tfstyle import flicker, images, stylize, video

    transform = video.frame_transform(stylize.KerasStylizer(transformer))
    photos = [(n, flicker.landscape(images.resize_longer_side(p, 768, upscale=True))) for n, p in photos]
    return flicker.measure(flicker.frame_by_frame(transform), photos, frames=FLAGS.flicker_frames, log=log)
