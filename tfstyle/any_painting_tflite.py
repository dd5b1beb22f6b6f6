"""The part of the any-painting network TFLite runs: the encoder and decoder of each level, in one file.

TFLite's builtin ops cannot run the whole ``tfstyle.arbitrary`` pipeline: the
whitening-colouring transform needs eigendecompositions (``SelfAdjointEigV2``), which
are no builtin op (only a Flex op, i.e. the TensorFlow runtime on the phone), and the
antialiased resizes (``ScaleAndTranslate``) are neither. Everything else is convolutions.

So the file ``any_painting.tflite`` holds six signatures, float16 weights computing in
float32, any image size: ``encode1`` / ``encode2`` / ``encode3`` (``image`` float32
[1, H, W, 3] in 0..255 -> ``features``: relu1_1, relu2_1 or relu3_1) and ``decode1`` /
``decode2`` / ``decode3`` (``features`` -> ``image`` 0..255). An app does the rest:
per level, the mean and covariance of two feature maps, two symmetric
eigendecompositions of at most 256 x 256 and one matrix product per pixel
(``LiteRTAnyPainting``, with numpy, is that app's reference and what the tests
compare with the TensorFlow pipeline), plus the resizes.
"""

import os
import tempfile

import numpy as np
import tensorflow as tf

from tfstyle import decoders as decoders_lib
from tfstyle import litert, tflite
from tfstyle.arbitrary import COARSE_LEVELS, MIN_SIDE, encoders_by_level, scaled_size
from tfstyle.transformer import tflite_forms

FILE_NAME = "any_painting.tflite"
EPSILON = 1e-5  # as feature_transforms: eigenvalues at or below this x the largest are dropped


class LevelParts(tf.Module):
    """``encode{N}`` and ``decode{N}`` of every level as tf.functions, for the converter."""

    def __init__(self, encoder, decoders):
        super().__init__(name="any_painting_parts")
        encoders = encoders_by_level(encoder)
        self.encoder_list = [encoders[level] for level in decoders_lib.LEVELS]
        self.decoder_list = [decoders[level] for level in decoders_lib.LEVELS]
        # The tf.Variables behind the Keras weights, so the converter finds and freezes them.
        self.variables_to_freeze = [w.value for m in (encoder, *self.decoder_list) for w in m.weights]

    def signatures(self):
        found = {}
        for level, encoder, decoder in zip(decoders_lib.LEVELS, self.encoder_list, self.decoder_list):
            channels = decoder.input_shape[-1]
            encode = tf.function(lambda image, e=encoder: {"features": e(image)},
                                 input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32, name="image")])
            decode = tf.function(lambda features, d=decoder: {"image": tf.clip_by_value(d(features), 0.0, 255.0)},
                                 input_signature=[tf.TensorSpec([1, None, None, channels], tf.float32, name="features")])
            found[f"encode{level}"] = encode.get_concrete_function()
            found[f"decode{level}"] = decode.get_concrete_function()
        return found


def convert(encoder, decoders):
    """The bytes of ``any_painting.tflite`` (float16 weights)."""
    parts = LevelParts(encoder, decoders)
    with tempfile.TemporaryDirectory(prefix="tfstyle-parts-") as tmp, tflite_forms(), tflite.quiet_tensorflow():
        signatures = parts.signatures()
        tf.saved_model.save(parts, tmp, signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=list(signatures))
        return tflite.run_converter(converter, "fp16")


def whiten_colour(content, style_stats, strength):
    """numpy: ``content`` [H, W, C] features with the painting's (mean, covariance) ``style_stats``."""
    flat = content.reshape(-1, content.shape[-1]).astype(np.float64)
    mean = flat.mean(0)
    transform = _power(np.cov(flat, rowvar=False), -0.5) @ _power(style_stats[1], 0.5)
    coloured = (flat - mean) @ transform + style_stats[0]
    return (strength * coloured + (1.0 - strength) * flat).reshape(content.shape).astype(np.float32)


def _power(covariance, power):
    values, vectors = np.linalg.eigh(covariance)
    keep = values > EPSILON * values.max()
    return (vectors[:, keep] * values[keep] ** power) @ vectors[:, keep].T


def _resize(image, height, width):
    return tf.image.resize(image, [height, width], method="bilinear", antialias=True).numpy()


class LiteRTAnyPainting:
    """The any-painting pipeline of ``tfstyle.arbitrary`` on ``any_painting.tflite`` with numpy for the transform:
    what an app on a phone runs (resizes here with TensorFlow's, as the reference pipeline does)."""

    def __init__(self, model_path, painting, coarse_size=512, style_size=512, num_threads=None):
        self.interpreter = litert.interpreter(model_path=model_path, num_threads=num_threads)
        self.coarse_size = coarse_size
        h, w = painting.shape[:2]
        scale = style_size / max(h, w)
        scaled = _resize(painting[None].astype(np.float32), max(MIN_SIDE, round(h * scale)),
                         max(MIN_SIDE, round(w * scale)))
        self.style_stats = {}
        for level in decoders_lib.LEVELS:
            features = self.run(f"encode{level}", image=scaled)["features"][0]
            flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
            self.style_stats[level] = (flat.mean(0), np.cov(flat, rowvar=False))

    def run(self, signature, **inputs):
        return self.interpreter.get_signature_runner(signature)(**inputs)

    def _level(self, level, image, strength):
        features = self.run(f"encode{level}", image=image)["features"][0]
        moved = whiten_colour(features, self.style_stats[level], strength)
        return self.run(f"decode{level}", features=moved[None])["image"]

    def __call__(self, photo, strength=1.0):
        """uint8 [H, W, 3] -> float32 [H, W, 3] 0..255."""
        photo = photo[None].astype(np.float32)
        h, w = photo.shape[1:3]
        ch, cw = (int(side) for side in scaled_size(photo, self.coarse_size, multiple=4))  # as arbitrary's
        small = _resize(photo, ch, cw)
        x = small
        for level in COARSE_LEVELS:
            x = self._level(level, x, strength)
        x = np.clip(_resize(x, h, w) + photo - _resize(small, h, w), 0.0, 255.0)
        return np.clip(self._level(1, x, strength)[0], 0.0, 255.0)


def write(out_dir, encoder, decoders):
    """Writes ``<out_dir>/any_painting.tflite``; returns its path."""
    path = os.path.join(out_dir, FILE_NAME)
    tflite.write_atomic(path, convert(encoder, decoders))
    return path
