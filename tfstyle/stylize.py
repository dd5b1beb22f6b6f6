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
A .tflite model cannot take fixed statistics, so its tiles normalize per tile.
"""

import os
import sys

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfstyle import styles
from tfstyle.images import IMAGE_EXTENSIONS, ImageError, list_images, load_image, resize_longer_side, save_image
from tfstyle.tiling import stylize_tiled, tile_grid
from tfstyle.transformer import MIN_SIDE

MODEL_EXTENSIONS = (".h5", ".tflite")


class StylizeError(RuntimeError):
    """No usable model, or arguments that cannot work; the message says what to do."""


# ----------------------------------------------------------------------------- models


class KerasStylizer:
    """The float transformer; tiles use statistics measured on the whole photo."""

    def __init__(self, model):
        from tfstyle.transformer import InstanceNormalization

        self.model = model
        norms = [layer for layer in model.layers if isinstance(layer, InstanceNormalization)]
        self.capture = keras.Model(model.input, [layer.input for layer in norms])
        self.fixed_norms = {}

        def swap(layer):
            if isinstance(layer, InstanceNormalization):
                self.fixed_norms[layer.name] = _FixedStatsNormalization(layer)
                return self.fixed_norms[layer.name]
            return layer  # shared: same weights, no copy

        self.fixed = keras.models.clone_model(model, clone_function=swap)
        self.norm_names = [layer.name for layer in norms]

    def __call__(self, image):
        return self.model(image[None].astype(np.float32), training=False)[0].numpy()

    def measure_statistics(self, image):
        """Per normalization layer, (mean, variance) over the image's H and W."""
        features = self.capture(image[None].astype(np.float32), training=False)
        stats = []
        for f in features:
            mean, variance = tf.nn.moments(tf.cast(f, tf.float32), axes=[0, 1, 2])
            stats.append((mean.numpy(), variance.numpy()))
        return stats

    def set_statistics(self, stats):
        for name, (mean, variance) in zip(self.norm_names, stats):
            self.fixed_norms[name].mean.assign(mean)
            self.fixed_norms[name].variance.assign(variance)

    def tile_runner(self, image, stats_size=1536):
        """Sets statistics measured on ``image`` scaled to ``stats_size``; returns the tile function."""
        self.set_statistics(self.measure_statistics(resize_longer_side(image, stats_size)))
        return lambda tile: self.fixed(tile[None].astype(np.float32), training=False)[0].numpy()


class _FixedStatsNormalization(keras.layers.Layer):
    """Instance normalization with given statistics, sharing scale/offset with ``source``."""

    def __init__(self, source):
        super().__init__(name=f"{source.name}_fixed_stats")
        self.source = source
        channels = source.scale.shape[0]
        self.mean = self.add_weight(name="mean", shape=(channels,), initializer="zeros", trainable=False)
        self.variance = self.add_weight(name="variance", shape=(channels,), initializer="ones", trainable=False)

    def call(self, x):
        x32 = tf.cast(x, tf.float32)
        y = (x32 - self.mean) * tf.math.rsqrt(self.variance + self.source.epsilon)
        y = y * tf.cast(self.source.scale, tf.float32) + tf.cast(self.source.offset, tf.float32)
        return tf.cast(y, self.compute_dtype)


class TFLiteTileStylizer:
    """A .tflite model; its tiles normalize per tile (a converted model has no statistics input)."""

    def __init__(self, path):
        from tfstyle.litert import TFLiteStylizer

        self.run = TFLiteStylizer(model_path=path)

    def __call__(self, image):
        return self.run(image)

    def tile_runner(self, image, stats_size=1536):
        del image, stats_size
        return self.run


def load_stylizer(style="", model="", runs_dir="runs", saved_models="saved_models"):
    """Picks the model for ``--style`` / ``--model`` (see the module docstring); returns (stylizer, description)."""
    from tfstyle import models

    path = model
    if not path and style and (style.endswith(MODEL_EXTENSIONS) or os.path.isdir(style)):
        path = style
    if path:
        if path.endswith(".tflite"):
            if not os.path.isfile(path):
                raise StylizeError(f"{path}: no such .tflite file")
            return TFLiteTileStylizer(path), path
        if os.path.isdir(path):
            if not models.is_savedmodel_dir(path):
                latest = models.latest_savedmodel(os.path.dirname(path.rstrip(os.sep)) or ".", os.path.basename(path.rstrip(os.sep)))
                if not latest:
                    raise StylizeError(f"{path}: not a SavedModel directory (no saved_model.pb) nor a folder of versions")
                path = latest
            return KerasStylizer(models.weights_from_savedmodel(path)), path
        return KerasStylizer(models.load_transformer(path)), path
    if not style:
        raise StylizeError("say which model to use: --style=NAME (a trained style) or --model=PATH")
    weights = styles.trained_weights_path(style, runs_dir)
    if os.path.isfile(weights):
        return KerasStylizer(models.load_transformer(weights)), weights
    latest = models.latest_savedmodel(saved_models, style)
    if latest:
        return KerasStylizer(models.weights_from_savedmodel(latest)), latest
    # The shipped weights, or an error that names a stopped run's checkpoints or the valid styles.
    weights = models.find_weights(style, runs_dir)
    return KerasStylizer(models.load_transformer(weights)), weights


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
    """uint8 [H, W, 3] -> uint8 [H, W, 3] stylized, tiled when a side exceeds ``tile_size``."""
    h, w = image.shape[:2]
    if tile_size and max(h, w) > tile_size:
        grid = tile_grid(h, w, tile_size, tile_overlap)
        out = stylize_tiled(image, stylizer.tile_runner(image, stats_size), grid)
    else:
        out = stylizer(image)
    if keep_color:
        out = preserve_color(image, out)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- command line


def plan_jobs(args):
    """(input, output) pairs from positional arguments: ``IN OUT``, ``IN... OUTDIR``, ``FOLDER OUTDIR``."""
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
        return [(inputs[0], output)]
    if os.path.isfile(output):
        raise StylizeError(f"{output}: is a file; with several inputs or a folder the output must be a folder")
    jobs = []
    for path in inputs:
        if os.path.isdir(path):
            jobs.extend((p, os.path.join(output, os.path.relpath(p, path))) for p in list_images(path))
        else:
            jobs.append((path, os.path.join(output, os.path.basename(path))))
    for src, dst in jobs:
        if os.path.abspath(src) == os.path.abspath(dst):
            raise StylizeError(f"{dst}: output would overwrite its input")
    return jobs


def run(args, style="", model="", runs_dir="runs", saved_models="saved_models", max_size=0, tile_size=1024,
        tile_overlap=128, stats_size=1536, keep_color=False):
    """Stylizes every job; returns the number of photos that failed (their errors go to stderr)."""
    if max_size and max_size < MIN_SIDE:
        raise StylizeError(f"--max_size={max_size}: must be 0 (keep the size) or at least {MIN_SIDE}")
    jobs = plan_jobs(args)
    if not jobs:
        raise StylizeError(f"no images found in {', '.join(args[:-1])}")
    stylizer, source = load_stylizer(style, model, runs_dir, saved_models)
    logging.info("model: %s", source)
    failures = 0
    progress = None
    if len(jobs) > 1:
        from tqdm import tqdm

        progress = tqdm(total=len(jobs), unit="img", file=sys.stderr, dynamic_ncols=True)
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
            (progress.write if progress else print)(message, file=sys.stderr)
        except OSError as e:
            failures += 1
            (progress.write if progress else print)(f"error: {dst}: cannot write ({e.strerror or e})", file=sys.stderr)
        if progress:
            progress.update(1)
    if progress:
        progress.close()
    if len(jobs) > 1:
        print(f"stylized {len(jobs) - failures} of {len(jobs)} images into {args[-1]}", file=sys.stderr)
    return failures
