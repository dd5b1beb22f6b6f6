"""Decoders that turn VGG19 relu1_1, relu2_1 and relu3_1 features back into photos.

The encoder is the frozen genuine VGG19 (blocks 1-3); each decoder mirrors the
encoder up to its layer (Li et al. 2017: conv 3x3 with reflection padding,
nearest-neighbour upsampling where VGG pools, computed as ``transformer.Conv2D(upsample=2)``) and is trained only to
reconstruct photos: the pixel loss plus the loss between the encoder's features
of the reconstruction and of the photo. No paintings are needed; at run time
``tfstyle.arbitrary`` decodes features that a whitening-colouring transform
has given a painting's statistics.

The three decoders are trained together (``DecoderTrainer``: one encoder pass
serves all three) by ``tfstyle train-decoders`` and shipped as one float16
``.npz`` (``PACKAGED``).
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from tfstyle import vgg
from tfstyle.transformer import Conv2D, ReflectionPadding2D

# The encoder layer each decoder inverts, by level (1: relu1_1, 2: relu2_1, 3: relu3_1).
LEVEL_LAYERS = {1: "block1_conv1", 2: "block2_conv1", 3: "block3_conv1"}
LEVELS = tuple(LEVEL_LAYERS)
# (filters, upsample before this conv) of each decoder's convs after its first; the last conv gives RGB.
_MIRROR = {3: [(256, 128, False), (128, 128, True), (128, 64, False), (64, 64, True), (64, 3, False)],
           2: [(128, 64, False), (64, 64, True), (64, 3, False)],
           1: [(64, 3, False)]}
# Root mean square of each level's features on photos (0..255 input; measured on eval photos at 256 px):
# the decoder's input is divided by it, so every decoder starts with inputs of unit scale.
FEATURE_RMS = {1: 40.0, 2: 170.0, 3: 230.0}
PACKAGED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights", "wct_decoders.npz")


class DecoderError(RuntimeError):
    """Decoder weights are missing, unreadable or do not fit."""


def build_encoder(weights="auto", seed=0):
    """Frozen VGG19 up to relu3_1: RGB 0..255 -> ``{"1": relu1_1, "2": relu2_1, "3": relu3_1}``."""
    layer_names = tuple(LEVEL_LAYERS.values())
    net = vgg.build_loss_network(weights, style_layers=layer_names, content_layer=LEVEL_LAYERS[3], seed=seed)
    outputs = {str(level): net.output["style"][name] for level, name in LEVEL_LAYERS.items()}
    encoder = keras.Model(net.input, outputs, name="vgg19_relu3_1")
    encoder.trainable = False
    return encoder


def build_decoder(level):
    """Features of ``level`` [B, H/2^(level-1), W/2^(level-1), C] -> RGB 0..255 [B, H, W, 3]."""
    channels = _MIRROR[level][0][0]
    features = keras.Input(shape=(None, None, channels), name=f"relu{level}_1")
    x = layers.Rescaling(1.0 / FEATURE_RMS[level], name="unit_scale")(features)
    convs = _MIRROR[level]
    for i, (_, filters, upsample) in enumerate(convs):
        activation = None if i == len(convs) - 1 else "relu"
        if upsample:  # nearest x2 + reflection pad + 3x3 conv, as four 2x2 convs (no resize op: TFLite takes it)
            x = Conv2D(filters, 3, upsample=2, activation=activation, name=f"conv{i}")(x)
        else:
            x = ReflectionPadding2D(1, name=f"pad{i}")(x)
            x = Conv2D(filters, 3, activation=activation, name=f"conv{i}")(x)
    rgb = layers.Rescaling(127.5, offset=127.5, name="to_0_255")(x)
    return keras.Model(features, rgb, name=f"decoder{level}")


def build_decoders(levels=LEVELS):
    return {level: build_decoder(level) for level in levels}


class DecoderTrainer(keras.Model):
    """Trains one decoder per level to invert the frozen encoder.

    Loss per level: mean squared pixel error (0..1 scale) + ``feature_weight`` x
    the mean squared difference of the encoder's features of the reconstruction
    and of the photo at that level (Li et al. use 1). Each level's loss is logged.
    """

    def __init__(self, encoder, decoders, feature_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoders = decoders
        self.feature_weight = float(feature_weight)
        self.trackers = {level: keras.metrics.Mean(name=f"level{level}") for level in decoders}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def level_losses(self, photos):
        features = self.encoder(photos)
        result = {}
        for level, decoder in self.decoders.items():
            target = features[str(level)]
            reconstruction = decoder(target, training=True)
            pixel = tf.reduce_mean(tf.square((reconstruction - photos) / 255.0))
            again = self.encoder(tf.clip_by_value(reconstruction, 0.0, 255.0))[str(level)]
            # Features are normalised by the photo's own mean square, so every level weighs alike.
            scale = tf.reduce_mean(tf.square(target)) + 1e-6
            feature = tf.reduce_mean(tf.square(again - target)) / scale
            result[level] = pixel + self.feature_weight * feature
        return result

    def train_step(self, photos):
        with tf.GradientTape() as tape:
            losses = self.level_losses(photos)
            total = tf.add_n(list(losses.values()))
        variables = [v for d in self.decoders.values() for v in d.trainable_variables]
        self.optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
        for level, value in losses.items():
            self.trackers[level].update_state(value)
        return {f"level{level}": t.result() for level, t in self.trackers.items()}


def save_decoders(path, decoders, card):
    """Writes every decoder's weights as float16 to ``path`` (.npz) and ``card`` (what trained them) beside it."""
    arrays = {}
    for level, decoder in decoders.items():
        for layer in decoder.layers:
            for i, w in enumerate(layer.get_weights()):
                arrays[f"decoder{level}/{layer.name}/{i}"] = w.astype(np.float16)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump(card, f, indent=1)


def load_decoders(path=PACKAGED, levels=LEVELS):
    """The decoders stored in ``path`` (float32). Raises ``DecoderError`` with the file and the problem."""
    if not os.path.isfile(path):
        raise DecoderError(f"{path}: no such decoder weights file (train one with `tfstyle train-decoders`)")
    try:
        with np.load(path) as f:
            arrays = {k: f[k].astype(np.float32) for k in f.files}
    except Exception as e:  # zipfile and numpy raise many types on corrupt files
        raise DecoderError(f"{path}: cannot read decoder weights ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    decoders = build_decoders(levels)
    for level, decoder in decoders.items():
        for layer in decoder.layers:
            names = [f"decoder{level}/{layer.name}/{i}" for i in range(len(layer.weights))]
            if not names:
                continue
            missing = [n for n in names if n not in arrays]
            if missing:
                raise DecoderError(f"{path}: has no {missing[0]}; not a tfstyle decoder file")
            values = [arrays[n] for n in names]
            if [v.shape for v in values] != [tuple(w.shape) for w in layer.weights]:
                raise DecoderError(f"{path}: {names[0]} has shape {values[0].shape}, not the decoder's")
            layer.set_weights(values)
    return decoders
