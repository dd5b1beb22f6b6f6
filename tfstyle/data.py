"""Training data as tf.data pipelines: a folder of photos, or a TFDS dataset (COCO).

Each image is scaled so its shorter side equals ``image_size`` (small images are
upscaled), randomly cropped to a square and randomly flipped. Files that cannot
be decoded are skipped and counted, never allowed to stop a run.

Flat crops (a blank scan, an overexposed sky) are dropped: on a constant image
every instance norm divides by sqrt(epsilon), and the gradients overflow to NaN.
"""

import threading

import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image

from tfstyle.images import IMAGE_EXTENSIONS, ImageError, list_images, load_image


# Crops whose pixel standard deviation (0..255 scale) is below this are dropped.
MIN_CROP_STD = 1.0


class DataError(RuntimeError):
    """The training data cannot be used at all (missing folder, no images, unknown dataset)."""


class SkippedFiles:
    """Thread-safe record of files the pipeline could not decode (each logged once).

    ``fatal`` is set once no file of the pipeline is usable: the pipeline then
    raises instead of filtering forever, and ``first_batch`` reports it.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.reasons = {}
        self.fatal = None

    def add(self, path, reason):
        with self._lock:
            if path not in self.reasons:
                self.reasons[path] = reason
                logging.warning("skipping %s", reason)

    def __len__(self):
        return len(self.reasons)


def scan_folder(directory, skipped):
    """Paths below ``directory`` whose header PIL can read; the rest go to ``skipped``.

    Reading headers only keeps this fast for large folders; truncated files that
    pass it are caught when decoded.
    """
    try:
        paths = list_images(directory)
    except FileNotFoundError:
        raise DataError(f"{directory}: no such directory") from None
    readable = []
    for path in paths:
        try:
            with Image.open(path) as img:
                img.size  # noqa: B018 - forces the header parse
            readable.append(path)
        except Exception as e:  # any failure here means the file is unusable
            skipped.add(path, f"{path}: not a readable image ({type(e).__name__})")
    if not readable:
        raise DataError(f"{directory}: no readable images found (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return readable


def random_crop(image, image_size, seed=None):
    """uint8 [H, W, 3] -> float32 [S, S, 3]: shorter side to S, random square crop, random flip."""
    shape = tf.shape(image)
    h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    scale = image_size / tf.minimum(h, w)
    new_hw = tf.maximum(tf.cast(tf.round(tf.stack([h, w]) * scale), tf.int32), image_size)
    image = tf.image.resize(image, new_hw, method="bilinear", antialias=True)
    image = tf.image.random_crop(image, [image_size, image_size, 3], seed=seed)
    image = tf.image.random_flip_left_right(image, seed=seed)
    return tf.clip_by_value(image, 0.0, 255.0)


def folder_dataset(directory, image_size, batch_size, skipped=None, shuffle_seed=None):
    """Infinite batches of random crops from the photos below ``directory``."""
    skipped = SkippedFiles() if skipped is None else skipped
    paths = scan_folder(directory, skipped)
    logging.info("training on %d images from %s (%d unreadable skipped)", len(paths), directory, len(skipped))

    unusable = set()

    def decode(path):
        path = path.decode()
        try:
            # JPEG draft decoding: a huge photo decodes at the smallest scale that still covers the crop.
            image = load_image(path, max_side=image_size)
            if image.std(axis=(0, 1)).max() < MIN_CROP_STD:  # spatial spread per channel: a 1x1 image is flat too
                raise ImageError(f"{path}: flat image (a single colour), nothing to learn from")
            return image, True
        except ImageError as e:
            skipped.add(path, str(e))
            unusable.add(path)
            if len(unusable) == len(paths):  # the endless pipeline would filter out every file forever
                skipped.fatal = (f"{directory}: none of its {len(paths)} image file(s) can be used "
                                 "(corrupt, truncated or single-colour)")
                raise DataError(skipped.fatal) from None
            return np.zeros((1, 1, 3), np.uint8), False

    def load(path):
        image, ok = tf.numpy_function(decode, [path], (tf.uint8, tf.bool), stateful=False)
        image.set_shape([None, None, 3])
        ok.set_shape([])
        return image, ok

    ds = tf.data.Dataset.from_tensor_slices(paths)
    ds = ds.shuffle(len(paths), seed=shuffle_seed, reshuffle_each_iteration=True).repeat()
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.filter(_decoded).map(_image)
    return _batch(ds, image_size, batch_size)


def first_batch(dataset, skipped):
    """The dataset's first batch; a ``DataError`` if the pipeline found no usable image."""
    try:
        return next(iter(dataset))
    except tf.errors.OpError:
        if skipped.fatal:
            raise DataError(skipped.fatal) from None
        raise


def _decoded(image, ok):
    return ok


def _image(image, ok):
    return image


def reachable(url, timeout=5.0):
    """Whether a TCP connection to ``url``'s host opens within ``timeout`` seconds."""
    import socket
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)), timeout).close()
        return True
    except (OSError, TypeError, ValueError):
        return False


def tfds_dataset(name, image_size, batch_size, data_dir=None, split="train"):
    """Infinite batches of random crops from a TFDS image dataset such as ``coco/2017``.

    A dataset not yet downloaded is downloaded and prepared first (COCO: ~19 GB);
    offline, that fails at once instead of after minutes of retries.
    """
    import tensorflow_datasets as tfds

    def fail(reason):
        return DataError(f"tensorflow-datasets '{name}': {reason}; use --data_dir=FOLDER for your own photos")

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # unknown names and broken installs raise many types
        raise fail(f"cannot load ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if not builder.is_prepared():
        homepage = builder.info.homepage or ""
        if homepage and not reachable(homepage):
            raise fail(f"not downloaded in {builder.data_dir} and {homepage} cannot be reached (offline?)")
        logging.info("downloading and preparing %s into %s (once; COCO is ~19 GB)", name, builder.data_dir)
    try:
        builder.download_and_prepare()
        ds = builder.as_dataset(split=split, shuffle_files=True)
    except Exception as e:
        raise fail(f"cannot load ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    ds = ds.map(lambda ex: ex["image"], num_parallel_calls=tf.data.AUTOTUNE).shuffle(1000).repeat()
    return _batch(ds, image_size, batch_size)


def _batch(ds, image_size, batch_size):
    ds = ds.map(lambda image: random_crop(image, image_size), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.filter(lambda crop: tf.math.reduce_std(crop) >= MIN_CROP_STD)
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    # Workers each read the whole file list and keep every n-th element.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)
