"""``tfstyle stylize``: apply a trained style to your own photos.

    tfstyle stylize --style=mosaic photo.jpg out.jpg
    tfstyle stylize --style=mosaic a.jpg b.png outdir/
    tfstyle stylize --model=saved_models/mosaic_int8.tflite photos/ outdir/

The model is a style name (``<runs_dir>/<style>/transformer.weights.h5``, else
the latest ``<saved_models>/<style>/<version>``, else the shipped weights) or a
path to weights (.h5), a SavedModel directory or a .tflite file. Photos are turned upright per EXIF and
come back at their own size (``--max_size`` downscales first).

Photos larger than ``--tile_size`` are processed in overlapping tiles whose seams
are blended. Instance normalization makes every output pixel depend on whole-image
statistics, so tiles must not normalize on their own (each tile would get its
own colours): the statistics of every normalization layer are measured on the
photo scaled to ``--stats_size`` (exact when the photo is no larger), and every
tile then uses them. Inside a tile's interior the
result then equals the whole-image result (the receptive field is about 110 px;
tile corners sit on the net's 4-pixel stride grid).
A .tflite file cannot take fixed statistics: a photo that needs tiles goes to the float network
on TensorFlow's runtime when there is one behind the file (a style name, a SavedModel), and is
refused with a one-line reason when only the file was given (never a patchwork of colours).

``--precision`` picks the runtime. The default runs LiteRT on the style's float16 TFLite file (the
SavedModel version's ``model.tflite``, float16 weights computing in float32: the float picture
within a pixel level; LiteRT's XNNPACK kernels, faster than TensorFlow's on a CPU) where its export
has one, else the float network on TensorFlow; ``float`` forces the latter, ``int8`` runs the
export's INT8 file.

A multi-style network (``tfstyle.multistyle``) stylizes with a blend of its styles
(``--style=mosaic:0.7,candy:0.3``, weights normalized; default its first style) at a
``--strength`` from 0 (the photo) to 1 (the full style): towards its identity "photo"
row in norm space when it has one (plus the identity row's error, so 0 is the photo exactly:
``multistyle.identity_correction``), else as a pixel fade (as for a single-style network).
"""

import contextlib
import os
import sys

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfstyle import multistyle, styles
from tfstyle.images import IMAGE_EXTENSIONS, ImageError, list_images, load_image, resize_longer_side, save_image
from tfstyle.tiling import TilingError, stylize_tiled, tile_grid
from tfstyle.transformer import MIN_SIDE

MODEL_EXTENSIONS = (".h5", ".tflite")
PRECISIONS = ("auto", "float", "fp16", "int8")


class StylizeError(RuntimeError):
    """No usable model, or arguments that cannot work; the message says what to do."""


# ----------------------------------------------------------------------------- models


class BlendMixin:
    """The style blend of a stylizer: ``row_names`` (None: a single-style network), the
    ``style_weights`` row fed to the network, and ``fade``, the pixel fade towards the photo."""

    row_names = None
    row = None
    fade = 1.0
    strength = 1.0
    blend = ("", 1.0, None)  # the arguments of the last set_blend
    correction = 0.0  # multistyle.identity_correction: the identity row's error to add back

    @property
    def style_names(self):
        return multistyle.style_names(self.row_names) if self.row_names else []

    def set_blend(self, spec="", strength=1.0, weights=None):
        """Picks styles by ``spec`` (``"mosaic:0.7,candy:0.3"``; empty: the first style) or by
        ``weights`` (one number per style), at ``strength``; a ``StyleWeightsError`` if unusable."""
        self.blend = (spec, strength, weights)
        strength = self.strength = multistyle.check_strength(strength)
        if not self.row_names:
            if weights:
                raise multistyle.StyleWeightsError("--style_weights: this network holds a single style")
            self.fade = strength
            return
        names = self.style_names
        if weights:
            blend = multistyle.check_weights(weights, names)
        else:
            blend = multistyle.parse_blend(spec or names[0], names)
        row, self.fade = multistyle.row_weights(blend, strength, self.row_names)
        self.row = np.asarray(row, np.float32)
        self.correction = multistyle.identity_correction(strength, self.row_names)

    def photo_row(self):
        """The identity row (``multistyle.PHOTO``) as a network row."""
        return np.asarray([float(n == multistyle.PHOTO) for n in self.row_names], np.float32)

    def inputs(self, batch):
        batch = batch.astype(np.float32)
        if self.row is None:
            return batch
        return [batch, np.tile(self.row, (len(batch), 1))]


class KerasStylizer(BlendMixin):
    """The float transformer; tiles use statistics measured on the whole photo."""

    def __init__(self, model):
        from tfstyle.transformer import ConditionalInstanceNormalization, InstanceNormalization, style_count

        self.model = model
        norm_types = (InstanceNormalization, ConditionalInstanceNormalization)
        norms = [layer for layer in model.layers if isinstance(layer, norm_types)]
        features = [layer.input[0] if isinstance(layer, ConditionalInstanceNormalization) else layer.input
                    for layer in norms]
        self.capture = keras.Model(model.input, features)
        self.fixed_norms = {}

        def swap(layer):
            if isinstance(layer, norm_types):
                self.fixed_norms[layer.name] = _FixedStatsNormalization(layer)
                return self.fixed_norms[layer.name]
            return layer  # shared: same weights, no copy

        self.fixed = keras.models.clone_model(model, clone_function=swap)
        self.norm_names = [layer.name for layer in norms]
        rows = style_count(model)
        if rows is not None:
            self.row_names = list(getattr(model, "row_names", None) or [f"style{i + 1}" for i in range(rows)])
            self.set_blend()

    def __call__(self, image):
        return self.model(self.inputs(image[None]), training=False)[0].numpy()

    def measure_statistics(self, image):
        """Per normalization layer, (mean, variance) over the image's H and W."""
        features = self.capture(self.inputs(image[None]), training=False)
        stats = []
        for f in features:
            mean, variance = tf.nn.moments(tf.cast(f, tf.float32), axes=[0, 1, 2])
            stats.append((mean.numpy(), variance.numpy()))
        return stats

    def set_statistics(self, stats):
        for name, (mean, variance) in zip(self.norm_names, stats):
            self.fixed_norms[name].mean.assign(mean)
            self.fixed_norms[name].variance.assign(variance)

    def for_tiles(self, size):
        del size
        return self

    def tile_runner(self, image, stats_size=1536):
        """Sets statistics measured on ``image`` scaled to ``stats_size``; returns the tile function."""
        self.set_statistics(self.measure_statistics(resize_longer_side(image, stats_size)))
        return lambda tile: self.fixed(self.inputs(tile[None]), training=False)[0].numpy()


class _FixedStatsNormalization(keras.layers.Layer):
    """Instance normalization with given statistics, sharing scale/offset with ``source``
    (plain, or conditional: then called on ``[x, style_weights]``)."""

    def __init__(self, source):
        super().__init__(name=f"{source.name}_fixed_stats")
        self.source = source
        channels = source.scale.shape[-1]
        self.mean = self.add_weight(name="mean", shape=(channels,), initializer="zeros", trainable=False)
        self.variance = self.add_weight(name="variance", shape=(channels,), initializer="ones", trainable=False)

    def call(self, inputs):
        conditional = isinstance(inputs, (list, tuple))
        x = inputs[0] if conditional else inputs
        if conditional:
            scale, offset = self.source.mixed(inputs[1])
        else:
            scale, offset = tf.cast(self.source.scale, tf.float32), tf.cast(self.source.offset, tf.float32)
        a = tf.math.rsqrt(self.variance + self.source.epsilon) * scale
        return tf.cast((tf.cast(x, tf.float32) - self.mean) * a + offset, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape[0] if isinstance(input_shape, list) else input_shape


class TFLiteTileStylizer(BlendMixin):
    """A .tflite model on LiteRT. A converted model has no statistics input, so it cannot tile:
    ``float_network`` (None, or a function returning the ``KerasStylizer`` of the same network)
    takes the photos that need tiles."""

    def __init__(self, path, float_network=None, num_threads=None):
        from tfstyle.litert import TFLiteStylizer

        self.path = path
        self.float_network = float_network
        self.run = TFLiteStylizer(model_path=path, num_threads=num_threads or os.cpu_count())
        if self.run.style_input is not None:
            rows = int(self.run.style_input["shape"][-1])
            with open(path, "rb") as f:
                names = multistyle.read_tflite_row_names(f.read())
            self.row_names = list(names or [f"style{i + 1}" for i in range(rows)])
            self.set_blend()

    def __call__(self, image):
        return self.run(image, self.row)

    def for_tiles(self, size):
        """The float network's stylizer, same blend, for a photo that needs tiles (``size``: its size);
        a one-line ``TilingError`` when there is no float network behind the file."""
        if self.float_network is None:
            raise TilingError(f"{size} needs tiles, and a .tflite file cannot share normalization statistics "
                              "across tiles (each tile would get its own colours): pass the SavedModel or .h5 "
                              "with --model, downscale with --max_size, or run it whole with --tile_size=0")
        if getattr(self, "_float", None) is None:
            self._float = self.float_network()
            self._float.set_blend(*self.blend)
            logging.info("photos that need tiles run on TensorFlow's runtime (shared normalization statistics)")
        return self._float


def tflite_beside(source, precision):
    """The ``precision`` (fp16 or int8) TFLite file of the network exported at ``source``, or None.

    fp16: the SavedModel version's ``model.tflite`` (float16 weights, float32 compute), else the
    export's ``<saved_models>/<style>_fp16.tflite``; int8: the export's ``<style>_int8.tflite``.
    """
    from tfstyle import models

    if not (os.path.isdir(source) and models.is_savedmodel_dir(source)):
        return None
    base = os.path.dirname(os.path.abspath(source))
    candidates = [os.path.join(source, "model.tflite")] if precision == "fp16" else []
    candidates.append(os.path.join(os.path.dirname(base), f"{os.path.basename(base)}_{precision}.tflite"))
    return next((p for p in candidates if os.path.isfile(p)), None)


def network_source(style="", model="", runs_dir="runs", saved_models="saved_models"):
    """The file or folder of the network ``--style`` / ``--model`` name (``models.find_network``;
    a blend: ``find_multi_style_network``; a run or versions folder: its weights or latest version)."""
    from tfstyle import models

    if model:
        source = models.find_weights(model, weights=model).rstrip(os.sep)
        if os.path.isdir(source) and not models.is_savedmodel_dir(source):
            final = os.path.join(source, "transformer.weights.h5")
            latest = models.latest_savedmodel(os.path.dirname(source) or ".", os.path.basename(source))
            source = final if os.path.isfile(final) else latest or source
        return source
    if not style:
        raise StylizeError("say which model to use: --style=NAME (a trained style) or --model=PATH")
    if is_blend(style):
        found = find_multi_style_network(style, runs_dir)
        if not found:
            raise StylizeError(f"--style={style}: no multi-style run under {runs_dir} nor shipped network holds "
                               "these styles; pass the network with --model=PATH")
        return found
    return models.find_network(style, runs_dir, saved_models, model_flag="--model")


def painting_stylizer(style, decoders="", **settings):
    """The any-painting network (``tfstyle.arbitrary``) for a painting with no trained network; returns
    (stylizer, description). ``decoders``: a decoders file (empty: the packaged ones); ``settings``:
    ``ArbitraryStylizer``'s (``coarse_size``, ``style_size``, ``stroke_scale``)."""
    from tfstyle import arbitrary
    from tfstyle import decoders as decoders_lib

    path = styles.resolve_style(style)
    logging.info("no trained network for %s: using the any-painting network (whitening-colouring transform, in "
                 "seconds); for a closer likeness, train one: tfstyle train --style=%s --data_dir=PHOTOS", style, style)
    try:
        stylizer = arbitrary.load(load_image(path), decoders or decoders_lib.PACKAGED, name=path, **settings)
    except (ImageError, arbitrary.ArbitraryStyleError, decoders_lib.DecoderError) as e:
        raise StylizeError(str(e)) from None
    return stylizer, f"{path} (any-painting network)"


def load_stylizer(style="", model="", runs_dir="runs", saved_models="saved_models", precision="auto",
                  tflite_threads=None, painting=None):
    """Picks the model for ``--style`` / ``--model`` and ``--precision`` (see the module docstring);
    returns (stylizer, description). ``tflite_threads``: a .tflite interpreter's threads (None: every core).
    A painting (bundled name or image file) with no trained network gets the any-painting network,
    with the ``painting_stylizer`` settings in ``painting`` (``always``: even when it has one)."""
    from tfstyle import models

    if precision not in PRECISIONS:
        raise StylizeError(f"--precision={precision}: use one of {', '.join(PRECISIONS)}")
    if not model and style and (style.endswith(MODEL_EXTENSIONS) or os.path.isdir(style)):
        model = style
    if model.endswith(".tflite"):
        if not os.path.isfile(model):
            raise StylizeError(f"{model}: no such .tflite file")
        return TFLiteTileStylizer(model, num_threads=tflite_threads), model
    painting = dict(painting or {})
    from tfstyle.arbitrary import SERVING_NAME

    if style == SERVING_NAME and not model:  # its export, which needs a painting beside the photo
        raise StylizeError(f"--style={SERVING_NAME} is the export of the any-painting network: pass the painting "
                           "itself, --style=painting.jpg")
    if painting.pop("always", False):
        if model or not style or is_blend(style):
            raise StylizeError("--any_painting takes a painting as --style (a bundled name or an image file)")
        return painting_stylizer(style, **painting)
    try:
        source = network_source(style, model, runs_dir, saved_models)
    except models.ModelError:
        stopped_run = models.checkpoints(os.path.join(runs_dir, styles.style_name(style))) if style else []
        if model or stopped_run or not (style in styles.STYLE_NAMES or os.path.isfile(style)):
            raise
        if precision in ("fp16", "int8"):
            raise StylizeError(f"--precision={precision}: {style} has no trained network, and the any-painting "
                               "network runs in float only") from None
        return painting_stylizer(style, **painting)
    float_network = lambda: KerasStylizer(models.load_network(source, runs_dir, saved_models)[0])  # noqa: E731
    if precision != "float":
        file = tflite_beside(source, "fp16" if precision == "auto" else precision)
        if file:
            return (TFLiteTileStylizer(file, float_network, tflite_threads),
                    f"{file} (LiteRT; the network of {source})")
        if precision != "auto":
            name = os.path.basename(os.path.dirname(os.path.abspath(source))) if os.path.isdir(source) else (
                os.path.splitext(os.path.basename(source))[0])
            raise StylizeError(f"--precision={precision}: no {precision} TFLite file beside {source}; write it with "
                               f"`tfstyle export --style={name}`, or use --precision=float")
    return float_network(), source


def is_blend(style):
    """Whether ``--style`` picks styles inside a multi-style network (``a:0.7,b:0.3`` or ``a,b``)."""
    return "," in style or (":" in style and not os.path.exists(style))


def find_multi_style_network(spec, runs_dir="runs"):
    """The weights of a multi-style network holding every style ``spec`` names, or None: a run's
    final weights under ``runs_dir`` first, then the networks shipped with tfstyle."""
    import glob

    from tfstyle import models

    wanted = {item.partition(":")[0].strip() for item in multistyle.split_styles(spec)}
    candidates = sorted(glob.glob(os.path.join(runs_dir, "*", "transformer.weights.h5")))
    candidates += sorted(glob.glob(os.path.join(models.PRETRAINED_DIR, "*.npz")))
    for path in candidates:
        try:
            names = models.row_names_of(path)
        except models.ModelError:
            continue
        if names and wanted <= set(names):
            return path
    return None


# ----------------------------------------------------------------------------- images


def preserve_color(content, stylized):
    """The stylized luminance with the content's chrominance (BT.601 YCbCr, as in JPEG)."""
    def to_ycbcr(rgb):
        r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
        y = 0.299 * r + 0.587 * g + 0.114 * b
        return y, -0.168736 * r - 0.331264 * g + 0.5 * b, 0.5 * r - 0.418688 * g - 0.081312 * b

    y, _, _ = to_ycbcr(np.clip(stylized, 0, 255))
    _, cb, cr = to_ycbcr(content)
    rgb = np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], axis=-1)
    return np.clip(rgb, 0, 255)


def stylize_image(stylizer, image, tile_size=1024, tile_overlap=128, stats_size=1536, keep_color=False):
    """uint8 [H, W, 3] -> uint8 [H, W, 3] stylized, tiled when a side exceeds ``tile_size``.

    The stylizer's blend applies (``BlendMixin``), its pixel fade included; strength 0 is the photo
    itself, and a norm-space strength adds back the identity row's error
    (``multistyle.identity_correction``).
    """
    if getattr(stylizer, "strength", 1.0) == 0.0:
        return image.copy()
    h, w = image.shape[:2]
    tiled = bool(tile_size and max(h, w) > tile_size) and not getattr(stylizer, "tiles_itself", False)
    if tiled:
        grid = tile_grid(h, w, tile_size, tile_overlap)
        stylizer = stylizer.for_tiles(f"{w}x{h} (more than --tile_size={tile_size})")

    def run():
        return stylize_tiled(image, stylizer.tile_runner(image, stats_size), grid) if tiled else stylizer(image)

    out = run()
    correction = getattr(stylizer, "correction", 0.0)
    if correction:
        row, stylizer.row = stylizer.row, stylizer.photo_row()
        try:
            out = out + correction * (image.astype(np.float32) - run())
        finally:
            stylizer.row = row
    fade = getattr(stylizer, "fade", 1.0)
    if fade < 1.0:
        out = fade * out + (1.0 - fade) * image.astype(np.float32)
    if keep_color:
        out = preserve_color(image, out)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- command line


def _same_file(a, b):
    return os.path.abspath(a) == os.path.abspath(b) or (os.path.exists(b) and os.path.samefile(a, b))


def plan_jobs(args, overwrite=False):
    """(input, output) pairs from positional arguments: ``IN OUT``, ``IN... OUTDIR``, ``FOLDER OUTDIR``.

    An output that is its own input photo is refused unless ``overwrite``.
    """
    if len(args) < 2:
        raise StylizeError("usage: tfstyle stylize --style=NAME INPUT... OUTPUT (an image file, or a folder for many inputs)")
    *inputs, output = args
    for path in inputs:
        if not os.path.exists(path):
            raise StylizeError(f"{path}: no such file or directory")
    to_dir = len(inputs) > 1 or os.path.isdir(inputs[0]) or os.path.isdir(output) or output.endswith(os.sep)
    if not to_dir:
        if not output.lower().endswith(IMAGE_EXTENSIONS):
            raise StylizeError(f"{output}: unknown image extension (use one of {', '.join(IMAGE_EXTENSIONS)})")
        jobs = [(inputs[0], output)]
        _refuse_overwriting_inputs(jobs, overwrite)
        return jobs
    if os.path.isfile(output):
        raise StylizeError(f"{output}: is a file; with several inputs or a folder the output must be a folder")
    jobs = []
    for path in inputs:
        if os.path.isdir(path):
            jobs.extend((p, os.path.join(output, os.path.relpath(p, path))) for p in list_images(path))
        else:
            jobs.append((path, os.path.join(output, os.path.basename(path))))
    _refuse_overwriting_inputs(jobs, overwrite)
    return jobs


def _refuse_overwriting_inputs(jobs, overwrite):
    if overwrite:
        return
    for src, dst in jobs:
        if _same_file(src, dst):
            raise StylizeError(f"{dst}: is the input photo; refusing to overwrite it (pass --overwrite to replace it)")


def contact_sheet(stylizer, image, columns=4, label_height=18):
    """uint8 sheet: the photo and every style of the network on it, each labelled with its name.

    A single-style network gives the photo and its one style.
    """
    from PIL import Image, ImageDraw

    tiles = [("photo", image)]
    names = stylizer.style_names or ["stylized"]
    for name in names:
        if stylizer.row_names:
            stylizer.set_blend(name)
        tiles.append((name, stylize_image(stylizer, image, tile_size=0)))
    h, w = image.shape[:2]
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * w, rows * (h + label_height)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (name, tile) in enumerate(tiles):
        x, y = (i % columns) * w, (i // columns) * (h + label_height)
        sheet.paste(Image.fromarray(tile), (x, y + label_height))
        draw.text((x + 4, y + 3), name, fill="black")
    return np.asarray(sheet)


def check_max_size(max_size):
    if max_size and max_size < MIN_SIDE:
        raise StylizeError(f"--max_size={max_size}: must be 0 (keep the size) or at least {MIN_SIDE}")


def prepare_stylizer(style="", model="", runs_dir="runs", saved_models="saved_models", strength=1.0,
                     style_weights=None, precision="auto", tflite_threads=None, painting=None):
    """``load_stylizer`` with the blend of ``--style`` / ``--style_weights`` at ``strength`` set;
    returns (stylizer, description)."""
    multistyle.check_strength(strength)
    stylizer, source = load_stylizer(style, model, runs_dir, saved_models, precision, tflite_threads, painting)
    spec = style if (model or is_blend(style)) else ""
    if spec and not stylizer.row_names:
        if is_blend(spec):
            raise multistyle.StyleWeightsError(f"--style={spec}: {source} holds a single style; blends need a "
                                               "multi-style network")
        spec = ""  # with --model, a single-style network's --style is only a name
    stylizer.set_blend(spec, strength, style_weights)
    logging.info("model: %s", source)
    if stylizer.row_names:
        logging.info("styles of %s: %s", source, ", ".join(stylizer.style_names))
    return stylizer, source


def run(args, style="", model="", runs_dir="runs", saved_models="saved_models", max_size=0, tile_size=1024,
        tile_overlap=128, stats_size=1536, keep_color=False, strength=1.0, style_weights=None, sheet=False,
        precision="auto", overwrite=False, painting=None):
    """Stylizes every job; returns the number of photos that failed (their errors go to stderr).

    ``strength``, ``style_weights`` and a blend in ``style`` pick the styles of a multi-style
    network (``BlendMixin.set_blend``); ``sheet`` writes a contact sheet of every style instead.
    ``precision`` and ``painting``: see ``load_stylizer``; ``overwrite``: allow an output to replace its input.
    """
    check_max_size(max_size)
    multistyle.check_strength(strength)
    jobs = plan_jobs(args, overwrite)
    if not jobs:
        raise StylizeError(f"no images found in {', '.join(args[:-1])}")
    stylizer, source = prepare_stylizer(style, model, runs_dir, saved_models, strength, style_weights, precision,
                                        painting=painting)
    if sheet:
        if len(jobs) != 1:
            raise StylizeError("--contact_sheet takes one photo and one output image")
        src, dst = jobs[0]
        image = resize_longer_side(load_image(src, max_side=max_size or None), max_size)
        save_image(dst, contact_sheet(stylizer, image))
        return 0
    failures = 0
    progress = None
    if len(jobs) > 1:
        from tqdm import tqdm

        progress = tqdm(total=len(jobs), unit="img", file=sys.stderr, dynamic_ncols=True)
    with logs_above(progress):
        failures = _stylize_jobs(jobs, stylizer, progress, max_size, tile_size, tile_overlap, stats_size, keep_color)
    if progress:
        progress.close()
    if len(jobs) > 1:
        print(f"stylized {len(jobs) - failures} of {len(jobs)} images into {args[-1]}", file=sys.stderr)
    elif not failures:
        print(f"wrote {jobs[0][1]}")
    return failures


class _AboveProgress:
    """A stream whose lines ``tqdm.write`` prints above the progress bar, on ``stream``."""

    def __init__(self, progress, stream):
        self.progress, self.stream = progress, stream

    def write(self, text):
        if text.strip():
            self.progress.write(text.rstrip("\n"), file=self.stream)

    def flush(self):
        self.stream.flush()


@contextlib.contextmanager
def logs_above(progress):
    """While ``progress`` (a tqdm bar, or None) runs, absl's log lines and other writes to stderr print
    above it, not into it (absl's handler writes to its stream, or to ``sys.stderr`` before flags are parsed)."""
    if progress is None:
        yield
        return
    handler = logging.get_absl_handler().python_handler
    stream, stderr = handler.stream, sys.stderr
    above = _AboveProgress(progress, stderr)
    handler.setStream(above)
    sys.stderr = above
    try:
        yield
    finally:
        sys.stderr = stderr
        handler.setStream(stream)


def _stylize_jobs(jobs, stylizer, progress, max_size, tile_size, tile_overlap, stats_size, keep_color):
    """Stylizes each (src, dst); returns how many failed (each failure one ``error:`` line)."""
    failures = 0
    for src, dst in jobs:
        try:
            image = load_image(src, max_side=max_size or None)
            image = resize_longer_side(image, max_size)
            if min(image.shape[:2]) < MIN_SIDE:
                raise ImageError(f"{src}: {image.shape[1]}x{image.shape[0]} pixels is too small: "
                                 f"the network needs at least {MIN_SIDE} on each side")
            out = stylize_image(stylizer, image, tile_size, tile_overlap, stats_size, keep_color)
            save_image(dst, out)
        except ImageError as e:
            failures += 1
            message = f"error: {e}"
            print(message, file=sys.stderr)  # above the progress bar (logs_above)
        except TilingError as e:
            failures += 1
            print(f"error: {src}: {e}", file=sys.stderr)
        except OSError as e:
            failures += 1
            print(f"error: {dst}: cannot write ({e.strerror or e})", file=sys.stderr)
        if progress:
            progress.update(1)
    return failures
