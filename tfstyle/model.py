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

from tfstyle import multistyle
from tfstyle.loss_terms import Batch, StyleTerm
from tfstyle.transformer import style_count


class StyleTransferModel(keras.Model):
    """Wraps ``transformer`` (trained) and ``loss_network`` (frozen) with the loss ``terms``.

    ``fit()`` takes batches of content images (float32, RGB 0..255); there are no labels.
    The loss is the sum of ``terms`` (``tfstyle.loss_terms``: content, style, TV,
    distillation, stability...), each logged under its name; the loss network runs once
    per step, on photos and outputs together, when a term needs its features.

    Multi-style: ``row_names`` names the transformer's style rows and ``train_rows``
    (default: all) are the rows batches are drawn from. ``frozen_rows_mask`` (float
    [rows], 1 for rows to train) zeroes the gradient of every other row: with the
    convolutions made non-trainable, this trains new styles into a network while its
    other styles stay bit-identical.
    """

    def __init__(self, transformer, loss_network, terms, *, row_names=None, train_rows=None, frozen_rows_mask=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.transformer = transformer
        self.loss_network = loss_network
        self.loss_network.trainable = False
        self.terms = list(terms)
        self.uses_features = any(term.uses_features for term in self.terms)
        self.num_rows = style_count(transformer)
        if self.num_rows is not None:
            self.row_names = list(row_names or [f"style{i + 1}" for i in range(self.num_rows)])
            if len(self.row_names) != self.num_rows:
                raise ValueError(f"{len(self.row_names)} names for {self.num_rows} style rows")
            self.train_rows = [int(r) for r in (range(self.num_rows) if train_rows is None else train_rows)]
            self.frozen_rows_mask = (None if frozen_rows_mask is None
                                     else tf.constant(np.asarray(frozen_rows_mask, np.float32)[:, None]))
        self.loss_names = ("loss", *(term.name for term in self.terms))
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.loss_names}
        if self.num_rows is not None:
            for r in self.train_rows:
                key = multistyle.metric_name(self.row_names[r])
                self.trackers[key] = keras.metrics.Mean(name=key)

    @property
    def style_grams(self):
        """The style term's Gram targets ``{level_key: weight}`` (empty without a style term)."""
        return next((term.grams for term in self.terms if isinstance(term, StyleTerm)), {})

    def call(self, images, training=False):
        return self.stylize(images, None if self.num_rows is None else self.default_ids(images), training)

    def stylize(self, images, style_ids, training=False):
        """The transformer's output for ``images`` (in the style rows ``style_ids`` of a multi-style network)."""
        if self.num_rows is None:
            return self.transformer(images, training=training)
        return self.transformer([images, self.style_weights(style_ids)], training=training)

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
        """Per-replica batch means of every term and of their sum, ``loss`` (float32)."""
        values, _ = self.per_image_losses(images, training, style_ids)
        return {name: tf.reduce_mean(value) for name, value in values.items()}

    def per_image_losses(self, images, training=False, style_ids=None):
        """({"loss", and one entry per term}: float32 [B] each, style_ids int32 [B] or None)."""
        images = tf.cast(images, tf.float32)
        if self.num_rows is not None:
            style_ids = self.default_ids(images) if style_ids is None else tf.cast(style_ids, tf.int32)
        stylized = tf.cast(self.stylize(images, style_ids, training), tf.float32)
        features = None
        if self.uses_features:  # one batched loss-network call for the photos and the outputs
            both = self.loss_network(tf.concat([images, stylized], axis=0), training=False)
            n = tf.shape(images)[0]
            features = {"photo": tf.nest.map_structure(lambda f: f[:n], both),
                        "stylized": tf.nest.map_structure(lambda f: f[n:], both)}
        batch = Batch(images, stylized, lambda x: self.stylize(x, style_ids, training), features, style_ids)
        values = {term.name: term.score(batch) for term in self.terms}
        values["loss"] = tf.add_n(list(values.values()))
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
