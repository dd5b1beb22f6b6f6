"""Perceptual losses of Johnson et al.: content, Gram-matrix style, total variation.

Everything here runs in float32 whatever the mixed-precision policy: a Gram
matrix of float16 block1/block2 features overflows to inf (measured).
The normalization follows lengstrom/fast-style-transfer, so its loss weights
are a sensible starting point (``tfstyle.recipes``).
"""

import tensorflow as tf


def gram_matrix(features):
    """[B, H, W, C] features -> [B, C, C] Gram matrices normalized by C*H*W."""
    features = tf.cast(features, tf.float32)
    shape = tf.shape(features)
    b, h, w, c = shape[0], shape[1], shape[2], shape[3]
    flat = tf.reshape(features, [b, h * w, c])
    gram = tf.matmul(flat, flat, transpose_a=True)
    return gram / tf.cast(c * h * w, tf.float32)


def per_image_mse(a, b):
    """Per-image mean squared difference of two [B, H, W, C] batches, float32: [B]."""
    diff = tf.cast(a, tf.float32) - tf.cast(b, tf.float32)
    return tf.reduce_mean(tf.square(diff), axis=[1, 2, 3])


def content_loss(features, target_features):
    """Per-image mean squared error between feature maps: [B]."""
    return per_image_mse(features, target_features)


def style_loss(features_by_layer, target_grams_by_layer, normalize=False):
    """Per-image sum over layers of the mean squared error of Gram matrices: [B].

    ``target_grams_by_layer`` holds [1, C, C] (one style image, broadcast over the
    batch) or [B, C, C] Gram matrices, keyed like ``features_by_layer``.

    ``normalize`` divides each term by the mean square of its own target, so
    every term is a relative error: a deep layer's or a coarse level's Gram,
    whose entries can be 100x another's, does not swamp the rest. A zero
    target (a row with no style) scores 0.
    """
    total = 0.0
    for name, features in features_by_layer.items():
        target = tf.cast(target_grams_by_layer[name], tf.float32)
        term = tf.reduce_mean(tf.square(gram_matrix(features) - target), axis=[1, 2])
        if normalize:
            magnitude = tf.reduce_mean(tf.square(target), axis=[1, 2])
            term = tf.math.divide_no_nan(term, magnitude)
        total += term
    return total


def downsample(images, factor):
    """[B, H, W, C] images averaged over ``factor`` x ``factor`` blocks (H and W floored): the image
    seen ``factor`` times smaller, so a VGG layer there covers ``factor`` times more of it."""
    if factor == 1:
        return images
    return tf.nn.avg_pool2d(tf.cast(images, tf.float32), factor, factor, "VALID")


def total_variation_loss(images):
    """Per-image mean squared difference of neighbouring pixels (0..255 scale): [B]."""
    images = tf.cast(images, tf.float32)
    dy = images[:, 1:, :, :] - images[:, :-1, :, :]
    dx = images[:, :, 1:, :] - images[:, :, :-1, :]
    return tf.reduce_mean(tf.square(dy), axis=[1, 2, 3]) + tf.reduce_mean(
        tf.square(dx), axis=[1, 2, 3]
    )
