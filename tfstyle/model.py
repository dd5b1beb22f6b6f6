"""The training model: a transformer net trained against a frozen VGG19 loss network.

``StyleTransferModel`` is a ``keras.Model`` with its own ``train_step`` so that
``fit()`` brings everything Keras offers (callbacks, progress bar, distribution,
mixed precision with loss scaling, XLA) to a loss that is not a function of
(y_true, y_pred).

Multi-style training (a transformer built with ``num_styles``) gives every image of a
batch a style row: ``fit()`` then takes ``(images, style_ids)`` pairs, int32 [B] row
indices, and each image is scored against its own style's Gram targets (the identity
row ``multistyle.PHOTO`` against none: content and TV losses only).
"""

import keras
import numpy as np
import tensorflow as tf

from tfstyle import losses, multistyle, perceptual
from tfstyle.transformer import style_count

LOSS_NAMES = ("loss", "content", "style", "tv")


class StyleTransferModel(keras.Model):
    """Wraps ``transformer`` (trained) and ``loss_network`` (frozen) with the styles' Gram targets.

    ``fit()`` takes batches of content images (float32, RGB 0..255); there are no labels.

    Single-style: ``style_image`` is one float32 [1, H, W, 3] image. Multi-style: ``style_image``
    is a list with one entry per style row of the transformer, an image or None (a row without
    Gram targets: the identity row, or a row that is not trained), ``row_names`` names the rows,
    and ``train_rows`` (default: every row with an image, and the identity row) are the rows
    batches are drawn from. ``frozen_rows_mask`` (float [rows], 1 for rows to train) zeroes the
    gradient of every other row: with the convolutions made non-trainable, this trains new
    styles into a network while its other styles stay bit-identical. ``style_scales`` (one per
    row, default 1) multiplies ``style_weight`` for each row's images: styles whose Gram loss on
    photos differs by an order of magnitude train together at a balance each can show.

    Distillation: with a frozen single-style ``teacher`` transformer, the loss adds
    ``distill_weight`` times the per-image mean squared difference (0..255 pixels) between
    the transformer's and the teacher's output (``distill`` in the logs). With content and
    style weights both 0 the loss network is not run at all: pure distillation costs a
    teacher forward pass instead of two VGG passes.
    """

    def __init__(self, transformer, loss_network, style_image, *, content_weight, style_weight, tv_weight,
                 row_names=None, train_rows=None, frozen_rows_mask=None, style_scales=None, teacher=None, distill_weight=0.0, **kwargs):
        super().__init__(**kwargs)
        self.transformer = transformer
        self.loss_network = loss_network
        self.loss_network.trainable = False
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.tv_weight = float(tv_weight)
        self.teacher = teacher
        self.distill_weight = float(distill_weight)
        if teacher is not None:
            teacher.trainable = False
            if style_count(transformer) is not None:
                raise ValueError("distillation trains a single-style transformer")
        self.num_rows = style_count(transformer)
        images = [style_image] if self.num_rows is None else list(style_image)
        if self.num_rows is not None:
            self.row_names = list(row_names or [f"style{i + 1}" for i in range(self.num_rows)])
            if len(images) != self.num_rows or len(self.row_names) != self.num_rows:
                raise ValueError(f"{len(images)} style images and {len(self.row_names)} names for "
                                 f"{self.num_rows} style rows")
            if train_rows is None:
                train_rows = [r for r, (img, name) in enumerate(zip(images, self.row_names))
                              if img is not None or name == multistyle.PHOTO]
            self.train_rows = [int(r) for r in train_rows]
            # Per row, the factor on the style loss: 0 for the identity row (and rows without targets).
            scales = [1.0] * self.num_rows if style_scales is None else [float(x) for x in style_scales]
            if len(scales) != self.num_rows:
                raise ValueError(f"{len(scales)} style scales for {self.num_rows} style rows")
            self.row_style_scale = tf.constant(
                [0.0 if img is None else scale for img, scale in zip(images, scales)], tf.float32)
            self.frozen_rows_mask = (None if frozen_rows_mask is None
                                     else tf.constant(np.asarray(frozen_rows_mask, np.float32)[:, None]))
        # Gram targets as non-trainable float32 weights: they live on every replica.
        # Multi-style: [rows, C, C] per layer, zeros for rows without an image.
        grams = [None if img is None else perceptual.style_grams(loss_network, img) for img in images]
        shapes = next(g for g in grams if g is not None) if any(g is not None for g in grams) else \
            perceptual.style_grams(loss_network, np.zeros((1, 32, 32, 3), np.float32))
        self.style_grams = {}
        for name, gram in shapes.items():
            shape = gram.shape if self.num_rows is None else (self.num_rows, *gram.shape[1:])
            self.style_grams[name] = self.add_weight(
                name=f"style_gram_{name}", shape=shape, dtype="float32", trainable=False, initializer="zeros")
            value = gram if self.num_rows is None else np.concatenate(
                [np.zeros(gram.shape, np.float32) if g is None else g[name].numpy() for g in grams])
            self.style_grams[name].assign(value)
        self.loss_names = LOSS_NAMES + (("distill",) if teacher is not None else ())
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.loss_names}
        if self.num_rows is not None:
            for r in self.train_rows:
                key = multistyle.metric_name(self.row_names[r])
                self.trackers[key] = keras.metrics.Mean(name=key)

    def call(self, images, training=False):
        if self.num_rows is None:
            return self.transformer(images, training=training)
        return self.transformer([images, self.style_weights(self.default_ids(images))], training=training)

    def style_weights(self, style_ids):
        """One-hot ``style_weights`` rows for int [B] style row indices."""
        return tf.one_hot(tf.cast(style_ids, tf.int32), self.num_rows, dtype=tf.float32)

    def default_ids(self, images):
        """Style rows for a batch given without them: the trained rows in turn."""
        rows = tf.constant(self.train_rows, tf.int32)
        return tf.gather(rows, tf.range(tf.shape(images)[0]) % len(self.train_rows))

    @property
    def metrics(self):
        return list(self.trackers.values())

    def compute_losses(self, images, training=False, style_ids=None):
        """Per-replica batch means of the weighted content, style, TV and total losses (float32)."""
        values, _ = self.per_image_losses(images, training, style_ids)
        return {name: tf.reduce_mean(value) for name, value in values.items()}

    def per_image_losses(self, images, training=False, style_ids=None):
        """({"loss", "content", "style", "tv"[, "distill"]}: float32 [B] each, style_ids int32 [B] or None)."""
        images = tf.cast(images, tf.float32)
        grams = self.style_grams
        if self.num_rows is None:
            stylized = self.transformer(images, training=training)
        else:
            style_ids = self.default_ids(images) if style_ids is None else tf.cast(style_ids, tf.int32)
            stylized = self.transformer([images, self.style_weights(style_ids)], training=training)
            grams = {name: tf.gather(gram, style_ids) for name, gram in grams.items()}
        stylized = tf.cast(stylized, tf.float32)
        if self.content_weight or self.style_weight:
            # One batched VGG call for the content targets and the stylized images.
            features = self.loss_network(tf.concat([images, stylized], axis=0), training=False)
            n = tf.shape(images)[0]
            stylized_features = {"content": features["content"][n:],
                                 "style": {k: f[n:] for k, f in features["style"].items()}}
            values = perceptual.weighted_losses(
                stylized_features, stylized, tf.stop_gradient(features["content"][:n]), grams,
                content_weight=self.content_weight, style_weight=self.style_weight, tv_weight=self.tv_weight)
        else:
            zero = tf.zeros(tf.shape(images)[:1], tf.float32)
            tv = self.tv_weight * losses.total_variation_loss(stylized)
            values = {"content": zero, "style": zero, "tv": tv}
        if self.num_rows is not None:  # each row's style weight; the identity row has no style loss
            values["style"] = values["style"] * tf.gather(self.row_style_scale, style_ids)
        values["total"] = values["content"] + values["style"] + values["tv"]
        if self.teacher is not None:
            target = tf.stop_gradient(tf.cast(self.teacher(images, training=False), tf.float32))
            values["distill"] = self.distill_weight * tf.reduce_mean(tf.square(stylized - target), axis=[1, 2, 3])
            values["total"] += values["distill"]
        values["loss"] = values.pop("total")
        return values, style_ids

    def _update_metrics(self, values, per_image=None, style_ids=None):
        for name in self.loss_names:
            self.trackers[name].update_state(values[name])
        if self.num_rows is not None and per_image is not None:
            for r in self.train_rows:  # each style's mean loss over its images
                mask = tf.cast(tf.equal(style_ids, r), tf.float32)
                self.trackers[multistyle.metric_name(self.row_names[r])].update_state(per_image["loss"], mask)
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        strategy = tf.distribute.get_strategy()
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode():
            # Keras 3.15 reduces per-replica logs across workers with strategy.reduce(MEAN, axis=0),
            # which fails on scalars: give them the axis it reduces away.
            logs = {name: value[None] for name, value in logs.items()}
        return logs

    def train_step(self, data):
        images, style_ids, _ = keras.utils.unpack_x_y_sample_weight(data)
        variables = self.transformer.trainable_variables
        with tf.GradientTape() as tape:
            per_image, style_ids = self.per_image_losses(images, training=True, style_ids=style_ids)
            values = {name: tf.reduce_mean(value) for name, value in per_image.items()}
            # Gradients are summed over replicas: divide so the sum is the global-batch mean.
            loss = values["loss"] / tf.distribute.get_strategy().num_replicas_in_sync
            # Multiplies by the dynamic loss scale under mixed_float16 (LossScaleOptimizer).
            loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(loss, variables)
        if self.num_rows is not None and self.frozen_rows_mask is not None:
            # Only style-row tables are trainable here ([rows, C] each): zero the frozen rows.
            gradients = [g * tf.cast(self.frozen_rows_mask, g.dtype) for g in gradients]
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self._update_metrics(values, per_image, style_ids)

    def test_step(self, data):
        images, style_ids, _ = keras.utils.unpack_x_y_sample_weight(data)
        per_image, style_ids = self.per_image_losses(images, training=False, style_ids=style_ids)
        values = {name: tf.reduce_mean(value) for name, value in per_image.items()}
        return self._update_metrics(values, per_image, style_ids)
