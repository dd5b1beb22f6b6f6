"""The training model: a transformer net trained against a frozen VGG19 loss network.

``StyleTransferModel`` is a ``keras.Model`` with its own ``train_step`` so that
``fit()`` brings everything Keras offers (callbacks, progress bar, distribution,
mixed precision with loss scaling, XLA) to a loss that is not a function of
(y_true, y_pred).
"""

import keras
import tensorflow as tf

from tfstyle import perceptual

LOSS_NAMES = ("loss", "content", "style", "tv")


class StyleTransferModel(keras.Model):
    """Wraps ``transformer`` (trained) and ``loss_network`` (frozen) with the style's Gram targets.

    ``fit()`` takes batches of content images (float32, RGB 0..255); there are no labels.
    """

    def __init__(self, transformer, loss_network, style_image, *, content_weight, style_weight, tv_weight, **kwargs):
        super().__init__(**kwargs)
        self.transformer = transformer
        self.loss_network = loss_network
        self.loss_network.trainable = False
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.tv_weight = float(tv_weight)
        # Gram targets as non-trainable float32 weights: they live on every replica.
        self.style_grams = {}
        for name, gram in perceptual.style_grams(loss_network, style_image).items():
            self.style_grams[name] = self.add_weight(
                name=f"style_gram_{name}", shape=gram.shape, dtype="float32", trainable=False,
                initializer="zeros")
            self.style_grams[name].assign(gram)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_NAMES}

    def call(self, images, training=False):
        return self.transformer(images, training=training)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def compute_losses(self, images, training=False):
        """Per-replica batch means of the weighted content, style, TV and total losses (float32)."""
        images = tf.cast(images, tf.float32)
        stylized = tf.cast(self.transformer(images, training=training), tf.float32)
        # One batched VGG call for the content targets and the stylized images.
        features = self.loss_network(tf.concat([images, stylized], axis=0), training=False)
        n = tf.shape(images)[0]
        stylized_features = {"content": features["content"][n:], "style": {k: f[n:] for k, f in features["style"].items()}}
        values = perceptual.weighted_losses(
            stylized_features, stylized, tf.stop_gradient(features["content"][:n]), self.style_grams,
            content_weight=self.content_weight, style_weight=self.style_weight, tv_weight=self.tv_weight)
        values["loss"] = values.pop("total")
        return {name: tf.reduce_mean(value) for name, value in values.items()}

    def _update_metrics(self, values):
        for name, tracker in self.trackers.items():
            tracker.update_state(values[name])
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        strategy = tf.distribute.get_strategy()
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode():
            # Keras 3.15 reduces per-replica logs across workers with strategy.reduce(MEAN, axis=0),
            # which fails on scalars: give them the axis it reduces away.
            logs = {name: value[None] for name, value in logs.items()}
        return logs

    def train_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        variables = self.transformer.trainable_variables
        with tf.GradientTape() as tape:
            values = self.compute_losses(images, training=True)
            # Gradients are summed over replicas: divide so the sum is the global-batch mean.
            loss = values["loss"] / tf.distribute.get_strategy().num_replicas_in_sync
            # Multiplies by the dynamic loss scale under mixed_float16 (LossScaleOptimizer).
            loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self._update_metrics(values)

    def test_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._update_metrics(self.compute_losses(images, training=False))
