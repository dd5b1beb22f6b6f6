"""The whitening-colouring transform (WCT) of Li et al. 2017, *Universal Style Transfer via Feature Transforms*.

The photo's features are whitened (centred, decorrelated, unit variance per
direction) and coloured with the painting's covariance and mean, so that their
second-order statistics -- the Gram matrices a style loss compares -- become
the painting's, while the spatial arrangement stays the photo's. No training
and no painting data: it is what lets any picture be a style at once
(``tfstyle.arbitrary``).

ReLU features have channels that are always zero and directions of tiny
variance; inverting those would blow noise up, so eigenvalues at or below
``epsilon`` times the largest are dropped, as Li et al. drop those below 1e-5.
"""

import tensorflow as tf


def mean_and_covariance(features):
    """``features`` [N, C] -> (mean [C], covariance [C, C]) in float64 (eigh on float32 loses small directions)."""
    features = tf.cast(features, tf.float32)
    n = tf.cast(tf.shape(features)[0], tf.float32)
    mean = tf.reduce_mean(features, axis=0)
    centred = features - mean
    covariance = tf.matmul(centred, centred, transpose_a=True) / tf.maximum(n - 1.0, 1.0)
    return tf.cast(mean, tf.float64), tf.cast(covariance, tf.float64)


def _matrix_power(covariance, power, epsilon):
    """covariance ** power on its eigenvalues above ``epsilon`` x the largest; the others map to 0."""
    values, vectors = tf.linalg.eigh(covariance)
    keep = values > epsilon * tf.reduce_max(values)
    scaled = tf.where(keep, tf.pow(tf.where(keep, values, 1.0), power), tf.zeros_like(values))
    return tf.matmul(vectors * scaled[tf.newaxis, :], vectors, transpose_b=True)


def colour_transform(content_covariance, style_covariance, epsilon=1e-5):
    """The [C, C] matrix that takes centred features of covariance ``content_covariance`` to ``style_covariance``
    (row vectors: ``centred @ transform``): the photo's whitening, then the painting's colouring."""
    return tf.matmul(_matrix_power(content_covariance, -0.5, epsilon), _matrix_power(style_covariance, 0.5, epsilon))


def whiten_colour(content, style, strength=1.0, epsilon=1e-5):
    """The photo's features ``content`` [H, W, C] with the mean and covariance of ``style`` [h, w, C].

    ``strength`` blends the transformed features with the photo's own: 0 returns
    ``content`` unchanged, 1 the full transform (Li et al.'s alpha). Returns float32 [H, W, C].
    """
    shape = tf.shape(content)
    channels = shape[-1]
    flat = tf.reshape(tf.cast(content, tf.float32), [-1, channels])
    content_mean, content_cov = mean_and_covariance(flat)
    style_mean, style_cov = mean_and_covariance(tf.reshape(style, [-1, channels]))
    transform = colour_transform(content_cov, style_cov, epsilon)
    coloured = tf.matmul(flat - tf.cast(content_mean, tf.float32), tf.cast(transform, tf.float32))
    coloured += tf.cast(style_mean, tf.float32)
    blended = strength * coloured + (1.0 - strength) * flat
    return tf.reshape(blended, shape)
