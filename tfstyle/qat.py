"""Quantization-aware fine-tuning: a trained transformer learns to keep its INT8 file close to its float function.

Post-training quantization rounds every activation to its tensor's int8 grid; in the full
networks that noise builds up along the residual trunk (about 2 dB of signal-to-noise per
block, docs/RESULTS.md). Here the network is fine-tuned with that rounding in its forward
pass, so its weights learn to live with it:

* the network is first put in the form the INT8 file is made from
  (``tflite.quantization_friendly``: the same float function);
* ``simulated_int8`` is that network with a ``FakeQuant`` after every tensor the INT8 file
  holds in int8 (conv outputs, the norms' full-size products and sums, ReLU and residual
  outputs, the output pixels), each with the range ``tflite.calibrated_ranges`` would give it
  (the ``range_quantile`` of the calibration crops' own extremes); rounding passes gradients
  straight through inside the range;
* ``QuantizationAwareDistiller`` trains the shared weights so that both the simulated INT8
  output and the float output stay close to the frozen original network's (mean squared
  pixel difference): the INT8 file then matches a float network that still draws the style;
* ``unfold`` writes the fine-tuned weights back into the original architecture (the same
  function), which exports as any trained network does.

The loss network is not used: a step costs three transformer passes, no VGG.
"""

import re

import keras
import numpy as np
import tensorflow as tf

from tfstyle import tflite
from tfstyle.callbacks import ProgressLog, weights_are_finite
from tfstyle.transformer import Conv2D, style_count


class FakeQuant(keras.layers.Layer):
    """Rounds its input to the 8-bit grid of [low, high], as TFLite's uint8/int8 activations are.

    Before ``low`` and ``high`` are set it passes its input through; with ``recording`` a list,
    each (eager) call appends its input's (min, max) to it. ``tf.quantization.fake_quant_*``
    nudges the range so 0 is on the grid (as the converter does) and passes gradients
    straight through inside the range, zero outside.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.low = self.high = None
        self.recording = None

    def call(self, x):
        if self.recording is not None:
            self.recording.append((float(tf.reduce_min(x)), float(tf.reduce_max(x))))
            return x
        if self.low is None:
            return x
        return tf.quantization.fake_quant_with_min_max_args(x, min=self.low, max=self.high, num_bits=8)


class _QuantizedOutput(keras.layers.Layer):
    """``layer`` (its own weights, shared) followed by a ``FakeQuant`` of its output."""

    def __init__(self, layer):
        super().__init__(name=f"{layer.name}_quantized")
        self.layer = layer
        self.quantize = FakeQuant(name=f"{layer.name}_fake_quant")

    def call(self, inputs):
        return self.quantize(self.layer(inputs))


class _QuantizedFoldedNorm(keras.layers.Layer):
    """``tflite._FoldedInstanceNormalization`` with the INT8 file's full-size int8 tensors rounded:
    the product ``x * a`` and, unless a ReLU follows (TFLite fuses it into the ADD), the sum."""

    def __init__(self, norm, quantize_output):
        super().__init__(name=f"{norm.name}_quantized")
        self.norm = norm
        self.product = FakeQuant(name=f"{norm.name}_product_fake_quant")
        self.output_quantize = FakeQuant(name=f"{norm.name}_fake_quant") if quantize_output else None

    def call(self, inputs):
        product, offset = self.norm.terms(inputs)
        y = self.product(product) + offset
        return y if self.output_quantize is None else self.output_quantize(y)

    def compute_output_shape(self, input_shape):
        return input_shape[0] if isinstance(input_shape, list) else input_shape


def _quantized_layer(layer, names):
    if isinstance(layer, tflite._FoldedInstanceNormalization):  # noqa: SLF001
        base = layer.source.name[: -len("_norm")]
        return _QuantizedFoldedNorm(layer, quantize_output=f"{base}_relu" not in names)
    if isinstance(layer, (Conv2D, tflite._HighResolutionUpsampleConv, keras.layers.ReLU, keras.layers.Add,  # noqa: SLF001
                          tflite._ScaledTanh)) or layer.name == "to_pixels":  # noqa: SLF001
        return _QuantizedOutput(layer)
    return layer


def fake_quants(model):
    """The ``FakeQuant`` layers of a ``simulated_int8`` model, in graph order."""
    found = []
    for layer in model.layers:
        for attr in ("quantize", "product", "output_quantize"):
            q = getattr(layer, attr, None)
            if isinstance(q, FakeQuant):
                found.append(q)
    return found


def simulated_int8(friendly, calibration, range_quantile=tflite.RANGE_QUANTILE):
    """``friendly`` (a ``tflite.quantization_friendly`` network) with the INT8 file's rounding, as a
    model sharing its weights; each ``FakeQuant`` gets, over ``calibration`` (float32 [1, H, W, 3]
    crops), the (1 - q) quantile of the crops' minima and the q quantile of their maxima. The output
    pixels get [0, 255], the uint8 output's grid."""
    names = {layer.name for layer in friendly.layers}
    model = keras.models.clone_model(friendly, clone_function=lambda layer: _quantized_layer(layer, names))
    quants = fake_quants(model)
    for q in quants:
        q.recording = []
    for inputs in tflite.calibration_inputs(friendly, calibration):
        model(inputs if style_count(friendly) is not None else inputs[0], training=False)
    for q in quants:
        lows, highs = zip(*q.recording)
        q.low, q.high = float(np.quantile(lows, 1.0 - range_quantile)), float(np.quantile(highs, range_quantile))
        q.low, q.high = min(q.low, 0.0), max(q.high, 0.0)
        q.recording = None
    pixels = model.get_layer("to_pixels_quantized").quantize
    pixels.low, pixels.high = 0.0, 255.0
    return model


def unfold(friendly, original):
    """A copy of ``original``'s architecture holding ``friendly``'s (possibly fine-tuned) weights in
    the original parametrization: the float function of ``friendly``.

    ``quantization_friendly`` scaled each normalized conv's output channels by s (epsilon by s**2)
    and divided the output conv by ``tflite.TANH_INPUT_LIMIT``; this divides by s (the bias offset
    it removed does not matter: instance norm cancels it) and multiplies back.
    """
    model = keras.models.clone_model(original)
    model.set_weights(original.get_weights())
    if getattr(original, "row_names", None):
        model.row_names = original.row_names
    scales = {}
    for layer in friendly.layers:
        if isinstance(layer, tflite._FoldedInstanceNormalization):  # noqa: SLF001
            source = layer.source
            scales[source.name[: -len("_norm")] + "_conv"] = np.sqrt(layer.epsilon.numpy() / source.epsilon)
            model.get_layer(source.name).set_weights(source.get_weights())
    for layer in model.layers:
        if not isinstance(layer, Conv2D):
            continue
        kernel, bias = (w.numpy() for w in _friendly_conv(friendly, layer.name).weights)
        if layer.name in scales:
            kernel, bias = kernel / scales[layer.name], bias / scales[layer.name]
        elif layer.name == "out_conv":
            kernel, bias = kernel * tflite.TANH_INPUT_LIMIT, bias * tflite.TANH_INPUT_LIMIT
        layer.set_weights([kernel, bias])
    return model


def _friendly_conv(friendly, name):
    for layer in friendly.layers:
        conv = getattr(layer, "source", layer)
        if isinstance(conv, Conv2D) and conv.name == name:
            return conv
    raise ValueError(f"no conv {name} in the quantization-friendly network")


class QuantizationAwareDistiller(keras.Model):
    """Trains the weights shared by ``student`` (float) and ``simulated`` (its ``simulated_int8``)
    towards the frozen ``teacher``: loss = MSE(simulated, teacher) + MSE(student, teacher), in
    0..255 pixels (logged as ``int8`` and ``float``). ``fit()`` takes batches of photos; a
    multi-style network gets a random one-hot style row per photo."""

    def __init__(self, student, simulated, teacher, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.student, self.simulated, self.teacher = student, simulated, teacher
        self.teacher.trainable = False
        self.rows = style_count(student)
        self.seed = tf.random.Generator.from_seed(seed)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "int8", "float")}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _inputs(self, images):
        images = tf.cast(images, tf.float32)
        if self.rows is None:
            return images
        rows = self.seed.uniform([tf.shape(images)[0]], 0, self.rows, dtype=tf.int32)
        return [images, tf.one_hot(rows, self.rows)]

    def call(self, images, training=False):
        return self.simulated(self._inputs(images), training=training)

    def train_step(self, images):
        inputs = self._inputs(images)
        target = tf.stop_gradient(self.teacher(inputs, training=False))
        variables = self.student.trainable_variables
        with tf.GradientTape() as tape:
            int8 = tf.reduce_mean(tf.square(self.simulated(inputs, training=True) - target))
            float_ = tf.reduce_mean(tf.square(self.student(inputs, training=True) - target))
            loss = int8 + float_
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        for name, value in (("loss", loss), ("int8", int8), ("float", float_)):
            self.trackers[name].update_state(value)
        return {name: t.result() for name, t in self.trackers.items()}


def fine_tune(model, calibration, dataset, steps, lr=2e-5, range_quantile=tflite.RANGE_QUANTILE, log_every=25,
              jit_compile=True):
    """Returns ``model`` (a trained transformer) fine-tuned for ``steps`` batches of ``dataset``
    (float32 photos, 0..255, batches of a fixed size) so its INT8 file stays closer to its float function; ``calibration``:
    crops as for ``tflite.convert``. ``model`` itself is not changed.

    ``lr`` is small because the weights train in the INT8 form's scale (``quantization_friendly``
    multiplies each normalized conv's kernel by about 1 / its output's spread): at 1e-4 candy's
    float output moved by 140 (MSE, pixel levels squared) in 5 steps, at 1e-5 by 4.
    """
    friendly = tflite.quantization_friendly(model, calibration)
    simulated = simulated_int8(friendly, calibration, range_quantile)
    teacher = keras.models.clone_model(model)
    teacher.set_weights(model.get_weights())
    distiller = QuantizationAwareDistiller(friendly, simulated, teacher)
    distiller.compile(optimizer=keras.optimizers.Adam(lr), jit_compile=jit_compile)
    steps_of = lambda m: int(m.optimizer.iterations.numpy())  # noqa: E731
    batch_size = int(dataset.element_spec.shape[0])  # batched with a fixed size, as data.folder_dataset does
    callbacks = [keras.callbacks.TerminateOnNaN(), ProgressLog(steps, batch_size, steps_of, every=log_every)]
    distiller.fit(dataset.repeat(), steps_per_epoch=steps, epochs=1, verbose=0, callbacks=callbacks)
    if steps_of(distiller) < steps or not weights_are_finite(friendly):
        raise FloatingPointError(f"quantization-aware fine-tuning diverged at step {steps_of(distiller)}: lower --lr")
    return unfold(friendly, model)


_ROUNDS_CLAUSE = re.compile(r"; then \d+ steps of quantization-aware fine-tuning[^;]*")


def card_after_round(card, settings):
    """Returns a weights card (``models.pretrained_card``) with one more fine-tuning round.

    ``card["quantization_aware"]`` lists every round's ``settings`` in order (a card written with
    one round as a bare dict reads as that round), and the summary's fine-tuning clause gives the
    total steps once, however many rounds ran, so a network tuned twice says so in one phrase.
    """
    rounds = card.get("quantization_aware", [])
    rounds = ([rounds] if isinstance(rounds, dict) else list(rounds)) + [settings]
    card = {**card, "quantization_aware": rounds}
    if card.get("summary"):
        steps = sum(r["steps"] for r in rounds)
        how = f"tfstyle qat, {len(rounds)} rounds" if len(rounds) > 1 else "tfstyle qat"
        card["summary"] = (_ROUNDS_CLAUSE.sub("", card["summary"])
                           + f"; then {steps} steps of quantization-aware fine-tuning for its INT8 file ({how})")
    return card
