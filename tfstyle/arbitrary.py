"""Any painting as a style, with no training: universal style transfer (Li et al. 2017) on VGG19 blocks 1-3.

For a photo and a painting, coarse to fine:

1. relu3_1, then relu2_1, at ``coarse_size`` (the photo's longer side scaled to
   it, 512 by default): the photo's features are given the painting's mean and
   covariance (``feature_transforms.whiten_colour``) and decoded back to an image
   (``tfstyle.decoders``), whose features feed the next level.
2. relu1_1 at the photo's full size: the coarse result, upsampled, with the photo's
   own finer detail added back (what the downscale removed), is recoloured the
   same way and decoded. relu1_1 and its decoder see 5 x 5 pixels, so this level
   runs in horizontal bands and any photo size fits in memory.

Because the coarse levels always run at ``coarse_size``, a photo looks the same
at 512 px and at 4000 px, and the time grows only with the cheap fine level.
``stroke_scale`` scales the painting before its features are taken: 2 gives
strokes twice as large. ``strength`` blends transformed and original features at
every level (0: the photo back). The painting's features are computed once per
stylizer, so a folder of photos pays for them once.
"""

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfstyle import decoders as decoders_lib
from tfstyle import multistyle
from tfstyle.feature_transforms import colour_transform, mean_and_covariance, whiten_colour

COARSE_LEVELS = (3, 2)
BAND_ROWS = 256  # rows of the fine level per band (64 relu1_1 channels x 256 rows x 8000 px: 0.5 GB)
HALO = 2  # rows a band needs beyond its own: one 3x3 conv in the encoder, one in the decoder
MIN_SIDE = 16  # a painting or photo smaller than this has no usable relu3_1 statistics


class ArbitraryStyleError(ValueError):
    """A painting or setting the any-painting network cannot use; the message names it."""


def resize_to(image, height, width):
    return tf.image.resize(image, tf.stack([height, width]), method="bilinear", antialias=True)


def scaled_size(image, longer_side, multiple=1):
    """(h, w) of ``image`` [1, H, W, 3] with its longer side at most ``longer_side`` (never enlarged unless
    ``multiple`` rounds up), rounded to a multiple of ``multiple``; graph-friendly."""
    hw = tf.cast(tf.shape(image)[1:3], tf.float32)
    scale = tf.minimum(1.0, tf.cast(longer_side, tf.float32) / tf.reduce_max(hw))
    size = tf.cast(tf.round(hw * scale / multiple), tf.int32) * multiple
    return tf.maximum(size[0], MIN_SIDE), tf.maximum(size[1], MIN_SIDE)


def painting_features(encoders, painting, style_size, stroke_scale=1.0):
    """{level: features [h, w, C]} of ``painting`` [1, H, W, 3] float 0..255, its longer side scaled
    (both ways) to ``style_size`` x ``stroke_scale``."""
    hw = tf.cast(tf.shape(painting)[1:3], tf.float32)
    size = tf.cast(tf.round(hw * style_size * stroke_scale / tf.reduce_max(hw)), tf.int32)
    scaled = resize_to(painting, tf.maximum(size[0], MIN_SIDE), tf.maximum(size[1], MIN_SIDE))
    return {level: encoder(scaled)[0] for level, encoder in encoders.items()}


def coarse_stylize(encoders, decoders, photo, style_features, strength, coarse_size):
    """relu3_1 then relu2_1 on ``photo`` [1, H, W, 3] scaled to ``coarse_size``; returns the result at
    H x W with the photo's detail above that scale added back. Graph-friendly."""
    h, w = tf.shape(photo)[1], tf.shape(photo)[2]
    ch, cw = scaled_size(photo, coarse_size, multiple=4)  # the coarse decoders upsample twice by 2
    small = resize_to(photo, ch, cw)
    x = small
    for level in COARSE_LEVELS:
        moved = whiten_colour(encoders[level](x)[0], style_features[level], strength)
        x = tf.clip_by_value(decoders[level](moved[None]), 0.0, 255.0)
    detail = photo - resize_to(small, h, w)  # what the downscale removed (zero when none)
    return tf.clip_by_value(resize_to(x, h, w) + detail, 0.0, 255.0)


def recolour(features, photo_mean, transform, style_mean, strength):
    """relu1_1 ``features`` [..., C] centred, multiplied by ``transform``, given the painting's mean, and
    blended with themselves at ``strength``."""
    coloured = tf.tensordot(features - photo_mean, transform, axes=1) + style_mean
    return strength * coloured + (1.0 - strength) * features


def fine_statistics(flat_photo_features, style_features):
    """(photo mean, transform, painting mean) of the relu1_1 level, float32."""
    photo_mean, photo_cov = flat_photo_features
    style_mean, style_cov = mean_and_covariance(tf.reshape(style_features, [-1, tf.shape(style_features)[-1]]))
    return (tf.cast(photo_mean, tf.float32), tf.cast(colour_transform(photo_cov, style_cov), tf.float32),
            tf.cast(style_mean, tf.float32))


def stylize_whole(encoders, decoders, photo, painting, strength, coarse_size, style_size, stroke_scale=1.0):
    """The whole pipeline on one photo [1, H, W, 3] and painting [1, h, w, 3] (float 0..255) in one graph,
    the fine level in one piece: what the SavedModel signature runs."""
    style_features = painting_features(encoders, painting, style_size, stroke_scale)
    coarse = coarse_stylize(encoders, decoders, photo, style_features, strength, coarse_size)
    features = encoders[1](coarse)
    stats = fine_statistics(mean_and_covariance(tf.reshape(features, [-1, tf.shape(features)[-1]])), style_features[1])
    return tf.clip_by_value(decoders[1](recolour(features, *stats, strength)), 0.0, 255.0)


class ArbitraryStylizer:
    """Stylizes photos (uint8 [H, W, 3]) with one painting; the interface of ``tfstyle.stylize``'s stylizers.

    ``encoder`` is ``decoders.build_encoder(...)``; ``decoders`` maps levels 1-3 to decoders.
    """

    row_names = None  # a single style: no blend rows
    row = None
    fade = 1.0  # strength acts on features, not as a pixel fade
    correction = 0.0
    tiles_itself = True  # the fine level runs in bands; stylize_image must not cut the photo into tiles

    def __init__(self, painting, encoder, decoders, coarse_size=512, style_size=512, stroke_scale=1.0, name=""):
        if min(painting.shape[:2]) < MIN_SIDE:
            raise ArbitraryStyleError(f"{name or 'the painting'}: {painting.shape[1]}x{painting.shape[0]} pixels is "
                                      f"too small to be a style (at least {MIN_SIDE} on each side)")
        if stroke_scale <= 0 or coarse_size < MIN_SIDE or style_size < MIN_SIDE:
            raise ArbitraryStyleError("stroke_scale must be > 0, coarse_size and style_size at least "
                                      f"{MIN_SIDE} (got {stroke_scale}, {coarse_size}, {style_size})")
        self.encoders = encoders_by_level(encoder)
        self.decoders = decoders
        self.coarse_size = int(coarse_size)
        self.strength = 1.0
        painting = tf.convert_to_tensor(np.asarray(painting, np.float32)[None])
        self.style_features = painting_features(self.encoders, painting, style_size, stroke_scale)
        # Each pass as one traced graph, for any size (eager Keras calls cost more than the convolutions on
        # small photos); the strength is a tensor argument, so changing it traces nothing again.
        graph = lambda fn: tf.function(fn, reduce_retracing=True)  # noqa: E731
        self._coarse = graph(lambda photo, strength: coarse_stylize(
            self.encoders, self.decoders, photo, self.style_features, strength, self.coarse_size))
        self._band_sums = graph(self._sums)
        self._band_decode = graph(lambda band, stats, strength: self.decoders[1](
            recolour(self.encoders[1](band), *stats, strength)))

    def set_blend(self, spec="", strength=1.0, weights=None):
        if weights:
            raise multistyle.StyleWeightsError("--style_weights: a painting is a single style")
        self.strength = multistyle.check_strength(strength)

    @staticmethod
    def _bands(image):
        """(band with halo, first own row inside it, own rows) over ``image`` [1, H, W, 3]."""
        height = int(image.shape[1])
        for start in range(0, height, BAND_ROWS):
            stop = min(height, start + BAND_ROWS)
            top, bottom = max(0, start - HALO), min(height, stop + HALO)
            yield image[:, top:bottom], start - top, stop - start

    def _sums(self, band, offset, own):
        """(sum, sum of outer products, count) of the relu1_1 features of a band's own rows: float32 within
        the band (a band holds at most a few million pixels), float64 across bands."""
        features = self.encoders[1](band)[:, offset:offset + own]
        flat = tf.reshape(features, [-1, tf.shape(features)[-1]])
        return (tf.cast(tf.reduce_sum(flat, 0), tf.float64),
                tf.cast(tf.matmul(flat, flat, transpose_a=True), tf.float64), tf.shape(flat)[0])

    def _fine(self, image, strength):
        """The relu1_1 level at full size, band by band: statistics summed over the bands, then recoloured."""
        sums = [self._band_sums(band, offset, own) for band, offset, own in self._bands(image)]
        total, outer = tf.add_n([s[0] for s in sums]), tf.add_n([s[1] for s in sums])
        count = float(sum(int(s[2]) for s in sums))
        mean = total / count
        covariance = (outer - count * mean[:, None] * mean[None, :]) / max(count - 1.0, 1.0)
        stats = fine_statistics((mean, covariance), self.style_features[1])
        rows = [self._band_decode(band, stats, strength)[:, offset:offset + own]
                for band, offset, own in self._bands(image)]
        return tf.concat(rows, axis=1)

    def __call__(self, image):
        """uint8 or float [H, W, 3] -> float32 [H, W, 3] in 0..255."""
        if min(image.shape[:2]) < MIN_SIDE:
            raise ArbitraryStyleError(f"{image.shape[1]}x{image.shape[0]} pixels is too small for the any-painting "
                                      f"network (at least {MIN_SIDE} on each side)")
        photo = tf.convert_to_tensor(np.asarray(image, np.float32)[None])
        strength = tf.constant(self.strength, tf.float32)
        return np.clip(self._fine(self._coarse(photo, strength), strength)[0].numpy(), 0.0, 255.0)


def encoders_by_level(encoder):
    """{level: the encoder cut at that level}: a level's pass computes no deeper layer."""
    return {level: keras.Model(encoder.input, encoder.output[str(level)]) for level in decoders_lib.LEVELS}


SERVING_NAME = "any_painting"  # the model name of its export: <saved_models>/any_painting/<version>/
SIGNATURE = "stylize_with_style_image"


class AnyPaintingServingModule(tf.Module):
    """The any-painting network as a SavedModel for TF Serving.

    ``stylize_with_style_image`` (also ``serving_default``): ``images`` uint8 [B, H, W, 3], ``style_images``
    uint8 [1, h, w, 3] (the painting), ``strength`` float32 [] in 0..1 -> ``stylized`` uint8 [B, H, W, 3].
    ``stylize_bytes``: ``image_bytes`` and ``style_image_bytes`` string [B] / [1] (JPEG, PNG, ...)
    and ``strength`` -> ``stylized_bytes`` PNG [B]. The whole pipeline runs in the graph (the fine level in
    one piece), at ``coarse_size`` and ``style_size`` fixed at export. A painting smaller than 16 px a side
    or a strength outside 0..1 is an InvalidArgument (HTTP 400 in TF Serving).
    """

    def __init__(self, encoder, decoders, coarse_size=512, style_size=512):
        super().__init__(name="tfstyle_any_painting")
        # Lists, not dicts keyed by level: a SavedModel tracks only string-keyed dicts.
        self.encoder_list = [encoders_by_level(encoder)[level] for level in decoders_lib.LEVELS]
        self.decoder_list = [decoders[level] for level in decoders_lib.LEVELS]
        self.coarse_size, self.style_size = int(coarse_size), int(style_size)

    def _stylize(self, images, painting, strength):
        tf.debugging.assert_greater_equal(tf.reduce_min(tf.shape(painting)[1:3]), MIN_SIDE,
                                          message=f"style_images: the painting needs at least {MIN_SIDE} px a side")
        tf.debugging.assert_greater_equal(tf.reduce_min(tf.shape(images)[1:3]), MIN_SIDE,
                                          message=f"images: photos need at least {MIN_SIDE} px a side")
        tf.debugging.Assert(tf.logical_and(strength >= 0.0, strength <= 1.0), ["strength must be in 0..1"])
        painting = tf.cast(painting, tf.float32)

        def one(photo):
            out = stylize_whole(dict(zip(decoders_lib.LEVELS, self.encoder_list)),
                                dict(zip(decoders_lib.LEVELS, self.decoder_list)), photo[None], painting, strength,
                                self.coarse_size, self.style_size)
            return tf.cast(tf.round(out[0]), tf.uint8)

        return tf.map_fn(one, tf.cast(images, tf.float32), fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images"),
                                  tf.TensorSpec([1, None, None, 3], tf.uint8, name="style_images"),
                                  tf.TensorSpec([], tf.float32, name="strength")])
    def stylize_with_style_image(self, images, style_images, strength):
        return {"stylized": self._stylize(images, style_images, strength)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes"),
                                  tf.TensorSpec([1], tf.string, name="style_image_bytes"),
                                  tf.TensorSpec([], tf.float32, name="strength")])
    def stylize_bytes(self, image_bytes, style_image_bytes, strength):
        from tfstyle.export import decode_checked

        painting = decode_checked(style_image_bytes[0])[None]

        def one(data):
            return tf.io.encode_png(self._stylize(decode_checked(data)[None], painting, strength)[0])

        return {"stylized_bytes": tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec([], tf.string))}

    def signatures(self):
        images = self.stylize_with_style_image.get_concrete_function()
        return {SIGNATURE: images, "serving_default": images,
                "stylize_bytes": self.stylize_bytes.get_concrete_function()}


def load(painting, decoders_path=decoders_lib.PACKAGED, vgg_weights="auto", name="", **settings):
    """An ``ArbitraryStylizer`` for ``painting`` (uint8 [H, W, 3]) with the packaged (or given) decoders."""
    from tfstyle import vgg

    logging.info("any-painting network: decoders %s, encoder %s", decoders_path, vgg.resolve_weights(vgg_weights))
    nets = decoders_lib.load_decoders(decoders_path)
    encoder = decoders_lib.build_encoder(vgg_weights)
    return ArbitraryStylizer(painting, encoder, nets, name=name, **settings)
