"""The weighted perceptual loss of Johnson et al. for a batch of images, as one function.

Shared by training (``tfstyle.loss_terms``), the optimization method
(``tfstyle.gatys``) and the evaluation (``tfstyle.evaluate``), so all three score
images alike: ``tfstyle.losses`` for the terms, the settings of the recipe
(``tfstyle.recipes``) passed in, per-image values in float32.

The style term can look at a pyramid: with ``style_levels=(1, 2, 4)`` the Gram
matrices of the style layers are also taken of the image and of the style
image averaged over 2x2 and 4x4 blocks, so relu3_1, which sees ~24 px at full
size, also matches the painting's shapes of ~50 and ~100 px.
"""

import tensorflow as tf

from tfstyle import losses

LOSS_KEYS = ("content", "style", "tv", "total")
# The settings ``weighted_losses`` takes, as a recipe names them.
LOSS_SETTINGS = ("content_weight", "style_weight", "tv_weight", "style_levels", "style_normalize")


def level_key(layer, level):
    """The name of ``layer``'s Gram term at pyramid ``level`` (the layer's own name at level 1)."""
    return layer if level == 1 else f"{layer}_down{level}"


def style_features(loss_network, images, style_levels=(1,), level1=None):
    """``{level_key: features}`` of the style layers for every pyramid level of float32 0..255 ``images``.

    ``level1``: the style features of ``images`` themselves when the caller has them already.
    """
    found = {}
    for level in style_levels:
        if level == 1 and level1 is not None:
            features = level1
        else:
            features = loss_network(losses.downsample(images, level), training=False)["style"]
        found.update({level_key(name, level): f for name, f in features.items()})
    return found


def style_grams(loss_network, style_image, style_levels=(1,)):
    """Gram targets ``{level_key: [1, C, C]}`` of one float32 [1, H, W, 3] 0..255 style image."""
    image = tf.convert_to_tensor(style_image, tf.float32)
    return {key: losses.gram_matrix(f) for key, f in style_features(loss_network, image, style_levels).items()}


def content_features(loss_network, content_images):
    """Content-layer features of float32 [B, H, W, 3] 0..255 images (the content targets)."""
    return loss_network(tf.convert_to_tensor(content_images, tf.float32), training=False)["content"]


def weighted_losses(features, images, content_targets, grams, *, content_weight, style_weight, tv_weight,
                    style_levels=(1,), style_normalize=False, loss_network=None):
    """Per-image weighted losses ``{"content", "style", "tv", "total"}``, each float32 [B].

    ``features`` is the loss network's output for ``images`` (the stylized
    batch, RGB 0..255), ``content_targets`` the content-layer features of the
    photos they should resemble, ``grams`` the style Gram targets
    (``style_grams`` with the same ``style_levels``). Levels other than 1 run
    ``loss_network`` on the downsampled ``images``.
    """
    content = content_weight * losses.content_loss(features["content"], content_targets)
    pyramid = style_features(loss_network, images, style_levels, level1=features["style"])
    style = style_weight * losses.style_loss(pyramid, grams, normalize=style_normalize)
    tv = tv_weight * losses.total_variation_loss(images)
    return {"content": content, "style": style, "tv": tv, "total": content + style + tv}


def perceptual_losses(loss_network, images, content_targets, grams, **settings):
    """Runs ``loss_network`` on ``images`` and returns :func:`weighted_losses` (each float32 [B])."""
    images = tf.cast(images, tf.float32)
    features = loss_network(images, training=False)
    return weighted_losses(features, images, content_targets, grams, loss_network=loss_network, **settings)
