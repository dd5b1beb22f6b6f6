"""The transformer's layers in textbook ops, for tests and benchmarks to compare against.

tfstyle's layers compute the same functions in forms that run fast in TFLite and
XNNPACK (reflection padding as slices and concats, instance norm without
SQUARED_DIFFERENCE, upsampling convs at low resolution); these are the plain
forms: MIRROR_PAD, ``tf.nn.moments``, resize x2 then a 3x3 conv at the high
resolution, the 9x9 convs at full resolution.
"""

import tensorflow as tf

from tfstyle import transformer as T


def reference_pad(layer, x):
    p = layer.padding
    return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")


def reference_conv(layer, x):
    """What a ``T.Conv2D`` computes, in textbook ops: a plain conv (also for ``space_to_depth=2``), or for
    ``upsample=2`` resize x2 (nearest), reflection pad 1, 3x3 conv at the high resolution."""
    if layer.upsample == 1:
        return tf.nn.conv2d(x, layer.kernel, layer.strides, "VALID") + layer.bias
    x = tf.image.resize(x, tf.shape(x)[1:3] * 2, method="nearest")
    x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
    return tf.nn.conv2d(x, tf.cast(layer.kernel, x.dtype), 1, "VALID") + tf.cast(layer.bias, x.dtype)


def reference_norm(layer, x):
    x32 = tf.cast(x, tf.float32)
    mean, variance = tf.nn.moments(x32, axes=[1, 2], keepdims=True)
    y = (x32 - mean) * tf.math.rsqrt(variance + layer.epsilon)
    y = y * tf.cast(layer.scale, tf.float32) + tf.cast(layer.offset, tf.float32)
    return tf.cast(y, layer.compute_dtype)


def use_textbook_layers():
    """Makes every transformer built from now on run the textbook forms (same weights, same function)."""
    T.ReflectionPadding2D.call = reference_pad
    T.InstanceNormalization.call = reference_norm
    T.Conv2D.call = reference_conv
