"""The weighted perceptual loss of Johnson et al. for a batch of images, as one function.

Shared by training (``tfstyle.model``), the optimization method
(``tfstyle.gatys``) and the evaluation (``tfstyle.evaluate``), so all three score
images alike: ``tfstyle.losses`` for the terms, the weights of the recipe
(``tfstyle.recipes``) passed in, per-image values in float32.
"""

import tensorflow as tf

from tfstyle import losses

LOSS_KEYS = ("content", "style", "tv", "total")


def style_grams(loss_network, style_image):
    """Gram targets ``{layer: [1, C, C]}`` of one float32 [1, H, W, 3] 0..255 style image."""
    features = loss_network(tf.convert_to_tensor(style_image, tf.float32), training=False)["style"]
    return {name: losses.gram_matrix(f) for name, f in features.items()}


def content_features(loss_network, content_images):
    """Content-layer features of float32 [B, H, W, 3] 0..255 images (the content targets)."""
    return loss_network(tf.convert_to_tensor(content_images, tf.float32), training=False)["content"]


def weighted_losses(features, images, content_targets, grams, *, content_weight, style_weight, tv_weight):
    """Per-image weighted losses ``{"content", "style", "tv", "total"}``, each float32 [B].

    ``features`` is the loss network's output for ``images`` (the stylized
    batch, RGB 0..255), ``content_targets`` the content-layer features of the
    photos they should resemble, ``grams`` the style Gram targets.
    """
    content = content_weight * losses.content_loss(features["content"], content_targets)
    style = style_weight * losses.style_loss(features["style"], grams)
    tv = tv_weight * losses.total_variation_loss(images)
    return {"content": content, "style": style, "tv": tv, "total": content + style + tv}


def perceptual_losses(loss_network, images, content_targets, grams, **loss_weights):
    """Runs ``loss_network`` on ``images`` and returns :func:`weighted_losses` (each float32 [B])."""
    images = tf.cast(images, tf.float32)
    features = loss_network(images, training=False)
    return weighted_losses(features, images, content_targets, grams, **loss_weights)
