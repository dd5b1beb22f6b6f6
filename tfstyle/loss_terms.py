"""The terms of the training loss: small Keras layers that ``StyleTransferModel.train_step`` sums.

Each term's ``score`` maps a :class:`Batch` to a weighted per-image loss, float32
[B], under its own name (the name it has in the logs). Terms are Keras layers so
that their targets are tracked weights of the model (replicated, checkpointed). A
new kind of loss is a new term here and one line in ``tfstyle.training.loss_terms``;
the model does not change.

- ``ContentTerm``, ``StyleTerm``, ``TotalVariationTerm``: Johnson et al.'s
  perceptual loss (``tfstyle.perceptual``), the style term with the recipe's
  pyramid levels and per-term normalisation, and one Gram target row per style of
  a multi-style network.
- ``DistillTerm``: the mean squared pixel difference to a frozen teacher network.
- ``NoiseStabilityTerm``, ``ShiftStabilityTerm``: stability without video data
  (Gupta et al. 2017; Eilertsen et al. 2019; Wang et al. 2020): the output should
  barely change when the photo gets sensor noise, and should move with the photo
  when the photo moves by a few pixels. Video frames differ by exactly these.
- ``DarkMassTerm``: a penalty on the near-black masses ("droplets") a network paints
  where the photo is not dark.
"""

import dataclasses
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from tfstyle import losses, perceptual


@dataclasses.dataclass
class Batch:
    """What the terms score: one batch of photos and the network's outputs for them.

    ``photos`` and ``stylized`` are float32 [B, H, W, 3] 0..255. ``stylize`` runs the
    trained network again (same style rows, same training flag) on other images of the
    batch's size. ``features`` holds the loss network's outputs for the photos
    (``"photo"``) and the stylized images (``"stylized"``) when a term needs them.
    ``style_ids``: int32 [B] style rows of a multi-style network, else None.
    """

    photos: tf.Tensor
    stylized: tf.Tensor
    stylize: Callable
    features: Optional[dict] = None
    style_ids: Optional[tf.Tensor] = None


class LossTerm(keras.layers.Layer):
    """A weighted per-image loss. ``uses_features``: whether the batch must carry loss-network features."""

    uses_features = False

    def __init__(self, weight, **kwargs):
        super().__init__(**kwargs)
        self.weight = float(weight)

    def score(self, batch):
        """``weight`` x :meth:`value`, float32 [B] (zeros, without computing it, when ``weight`` is 0)."""
        if not self.weight:
            return tf.zeros(tf.shape(batch.photos)[:1], tf.float32)
        return self.weight * self.value(batch)

    def value(self, batch):
        """The unweighted per-image loss, float32 [B]."""
        raise NotImplementedError


class ContentTerm(LossTerm):
    """Mean squared difference of the content-layer features of output and photo."""

    def __init__(self, weight, **kwargs):
        super().__init__(weight, name="content", **kwargs)
        self.uses_features = bool(self.weight)

    def value(self, batch):
        target = tf.stop_gradient(batch.features["photo"]["content"])
        return losses.content_loss(batch.features["stylized"]["content"], target)


class TotalVariationTerm(LossTerm):
    """Mean squared difference of neighbouring output pixels."""

    def __init__(self, weight, **kwargs):
        super().__init__(weight, name="tv", **kwargs)

    def value(self, batch):
        return losses.total_variation_loss(batch.stylized)


class StyleTerm(LossTerm):
    """Gram-matrix distance to the style image(s), at every pyramid level of ``levels``.

    ``style_image``: one float32 [1, H, W, 3] image, or (multi-style) a list with an image
    or None per style row. The targets are non-trainable float32 weights ([1 or rows, C, C]
    per layer and level, zeros for rows without an image), so they live on every replica
    and in checkpoints. ``row_scales`` (multi-style): a factor on ``weight`` per row, 0
    for rows without an image (the identity row is scored on content and TV only).
    ``normalize``: each Gram term relative to its target's magnitude (``losses.style_loss``).
    """

    def __init__(self, weight, loss_network, style_image, levels=(1,), normalize=False, row_scales=None, **kwargs):
        super().__init__(weight, name="style", **kwargs)
        self.uses_features = bool(self.weight)
        self.loss_network = loss_network
        self.levels = tuple(int(level) for level in levels)
        self.normalize = bool(normalize)
        self.multi = isinstance(style_image, (list, tuple))
        images = list(style_image) if self.multi else [style_image]
        grams = [None if img is None else perceptual.style_grams(loss_network, img, self.levels) for img in images]
        shapes = next((g for g in grams if g is not None), None) or perceptual.style_grams(
            loss_network, np.zeros((1, 32, 32, 3), np.float32), self.levels)
        self.grams = {}
        for key, gram in shapes.items():
            value = gram if not self.multi else np.concatenate(
                [np.zeros(gram.shape, np.float32) if g is None else g[key].numpy() for g in grams])
            self.grams[key] = self.add_weight(name=f"style_gram_{key}", shape=value.shape, dtype="float32",
                                              trainable=False, initializer="zeros")
            self.grams[key].assign(value)
        if self.multi:
            scales = [1.0] * len(images) if row_scales is None else [float(x) for x in row_scales]
            if len(scales) != len(images):
                raise ValueError(f"{len(scales)} style scales for {len(images)} style rows")
            self.row_scales = tf.constant([0.0 if img is None else s for img, s in zip(images, scales)], tf.float32)

    def value(self, batch):
        grams = self.grams
        if self.multi:
            grams = {key: tf.gather(gram, batch.style_ids) for key, gram in grams.items()}
        pyramid = perceptual.style_features(self.loss_network, batch.stylized, self.levels,
                                            level1=batch.features["stylized"]["style"])
        value = losses.style_loss(pyramid, grams, normalize=self.normalize)
        return value * tf.gather(self.row_scales, batch.style_ids) if self.multi else value


class DistillTerm(LossTerm):
    """Mean squared pixel difference (0..255) to a frozen ``teacher`` network's output."""

    def __init__(self, weight, teacher, **kwargs):
        super().__init__(weight, name="distill", **kwargs)
        self.teacher = teacher
        self.teacher.trainable = False

    def value(self, batch):
        target = tf.stop_gradient(self.teacher(batch.photos, training=False))
        return losses.per_image_mse(batch.stylized, target)


class NoiseStabilityTerm(LossTerm):
    """Mean squared change of the output (0..255) when the photo gets Gaussian noise of ``sigma`` (0..255).

    Zero for a network that ignores such noise; video frames of a still scene differ by it.
    """

    def __init__(self, weight, sigma=2.0, **kwargs):
        super().__init__(weight, name="noise_stability", **kwargs)
        self.sigma = float(sigma)

    def value(self, batch):
        noisy = tf.clip_by_value(batch.photos + tf.random.normal(tf.shape(batch.photos), stddev=self.sigma), 0.0, 255.0)
        return losses.per_image_mse(batch.stylize(noisy), batch.stylized)


def moved(images, dy, dx):
    """``images`` [B, H, W, C] moved up-left by (dy, dx) >= 0 pixels: the part ``images[:, dy:, dx:]``
    that such a move keeps in the frame, at the top left."""
    return images[:, dy:, dx:]


class ShiftStabilityTerm(LossTerm):
    """Mean squared difference between the output of a photo moved by a few pixels and the moved output.

    A random shift (dy, dx) in 0..``max_shift`` per step: T(moved photo) against the same
    move of T(photo), on the pixels both cover, away from the borders by ``margin`` (a
    network's output near an edge depends on the edge). Zero for a network that commutes
    with translation; a pan in a video is such a move.
    """

    def __init__(self, weight, max_shift=8, margin=8, **kwargs):
        super().__init__(weight, name="shift_stability", **kwargs)
        self.max_shift = int(max_shift)
        self.margin = int(margin)

    def value(self, batch):
        dy, dx = (tf.random.uniform([], 1, self.max_shift + 1, tf.int32) for _ in range(2))
        moved_photo, moved_output = moved(batch.photos, dy, dx), moved(batch.stylized, dy, dx)
        # The moved photo is smaller than the batch: pad it back with its own edge so the network sees its size.
        h, w = tf.shape(batch.photos)[1], tf.shape(batch.photos)[2]
        padded = tf.pad(moved_photo, [[0, 0], [0, dy], [0, dx], [0, 0]], mode="SYMMETRIC")
        output = batch.stylize(padded)[:, : h - dy, : w - dx]
        m = self.margin
        return losses.per_image_mse(output[:, m:-m, m:-m], moved_output[:, m:-m, m:-m])


def luminance(images):
    """BT.601 luma (0..255) of RGB [B, H, W, 3] images, as [B, H, W, 1]."""
    return tf.reduce_sum(images * tf.constant([0.299, 0.587, 0.114], images.dtype), axis=-1, keepdims=True)


class DarkMassTerm(LossTerm):
    """Penalty on large near-black masses painted where the photo is not dark: the "droplets".

    Output and photo luma are averaged over ``block`` x ``block`` pixels first, so strokes,
    outlines and dots thinner than a block average out with their surroundings and cost
    nothing; a block whose output stays below ``threshold`` costs (threshold - output) x
    (photo - output) when the photo there is brighter. Zero for a network that paints no
    dark mass over a bright photo.
    """

    def __init__(self, weight, block=8, threshold=40.0, **kwargs):
        super().__init__(weight, name="dark_mass", **kwargs)
        self.block = int(block)
        self.threshold = float(threshold)

    def value(self, batch):
        output = losses.downsample(luminance(batch.stylized), self.block)
        photo = losses.downsample(luminance(batch.photos), self.block)
        cost = tf.nn.relu(self.threshold - output) * tf.nn.relu(photo - output)
        return tf.reduce_mean(cost, axis=[1, 2, 3])
