"""The optimization method of Gatys et al.: optimize the output pixels directly.

``tfstyle gatys --style=mosaic content.jpg out.png --iterations=300``

The image starts from the content photo (or noise) and is optimized against
the very loss the fast network is trained with (``tfstyle.perceptual``: VGG19
content, Gram style and TV terms, same weights), with L-BFGS (scipy's
L-BFGS-B, pixels bounded to 0..255) or Adam. One L-BFGS iteration is one
quasi-Newton step, which may take several loss/gradient evaluations; Johnson
et al. count iterations the same way.
"""

import sys
import time

import numpy as np
import tensorflow as tf

from tfstyle import perceptual

OPTIMIZERS = ("lbfgs", "adam")


class GatysError(ValueError):
    """Settings that cannot work (unknown optimizer, non-positive iterations...)."""


class Objective:
    """Loss and gradient of the perceptual loss w.r.t. the pixels of one image."""

    def __init__(self, loss_network, content_image, grams, loss_weights):
        self.loss_network = loss_network
        self.shape = (1, *np.asarray(content_image).shape[-3:])
        self.content_targets = perceptual.content_features(loss_network, np.reshape(content_image, self.shape))
        self.grams = grams
        self.weights = dict(loss_weights)
        spec = tf.TensorSpec(self.shape, tf.float32)
        self._value_and_grad = tf.function(self._value_and_grad_fn, input_signature=[spec])
        self._values = tf.function(self._values_fn, input_signature=[spec])

    def _values_fn(self, image):
        values = perceptual.perceptual_losses(self.loss_network, image, self.content_targets, self.grams, **self.weights)
        return {k: v[0] for k, v in values.items()}

    def _value_and_grad_fn(self, image):
        with tf.GradientTape() as tape:
            tape.watch(image)
            values = self._values_fn(image)
        return values, tape.gradient(values["total"], image)

    def values(self, image):
        """``{"content", "style", "tv", "total"}`` as Python floats for a [1, H, W, 3] image."""
        out = self._values(tf.constant(np.reshape(image, self.shape), tf.float32))
        return {k: float(v) for k, v in out.items()}

    def value_and_grad(self, image):
        values, grad = self._value_and_grad(tf.constant(np.reshape(image, self.shape), tf.float32))
        return {k: float(v) for k, v in values.items()}, grad.numpy()


def stylize(content_image, style_image, loss_network, loss_weights, iterations=300, optimizer="lbfgs", lr=5.0,
            init="content", seed=0, record_every=10, record_at=(), progress=False):
    """Optimizes an image; returns ``(float32 [H, W, 3] 0..255, history)``.

    ``content_image``: [H, W, 3] 0..255; ``style_image``: [1, h, w, 3] 0..255;
    ``loss_weights``: ``content_weight``, ``style_weight``, ``tv_weight`` (a recipe's ``loss_weights``).
    ``history`` is a list of ``{"iteration", "content", "style", "tv", "total",
    "seconds"}`` at iteration 0, every ``record_every`` iterations, at each
    iteration in ``record_at``, and at the last one.
    """
    if optimizer not in OPTIMIZERS:
        raise GatysError(f"unknown optimizer '{optimizer}': use one of {', '.join(OPTIMIZERS)}")
    if iterations < 1:
        raise GatysError("--iterations must be positive")
    content_image = np.asarray(content_image, np.float32)
    grams = perceptual.style_grams(loss_network, style_image, loss_weights.get("style_levels", (1,)))
    objective = Objective(loss_network, content_image, grams, loss_weights)
    if init == "content":
        x0 = content_image.copy()
    elif init == "noise":
        x0 = np.random.default_rng(seed).uniform(0, 255, content_image.shape).astype(np.float32)
    else:
        raise GatysError(f"unknown init '{init}': use content or noise")

    record_at = set(record_at) | {iterations}
    history = []
    start = time.perf_counter()

    def record(iteration, image, values=None):
        if iteration == 0 or iteration in record_at or (record_every and iteration % record_every == 0):
            values = values or objective.values(image)
            history.append({"iteration": iteration, **values, "seconds": round(time.perf_counter() - start, 3)})

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=iterations, unit="it", desc=f"gatys {optimizer}", file=sys.stderr)

    record(0, x0)
    if optimizer == "lbfgs":
        image = _run_lbfgs(objective, x0, iterations, record, bar)
    else:
        image = _run_adam(objective, x0, iterations, lr, record, bar)
    if bar is not None:
        bar.close()
    if history[-1]["iteration"] != iterations:  # L-BFGS stopped early: say so in the history
        history.append({"iteration": history[-1]["iteration"], **objective.values(image),
                        "seconds": round(time.perf_counter() - start, 3), "stopped_early": True})
    return np.reshape(image, content_image.shape), history


def _run_lbfgs(objective, x0, iterations, record, bar):
    from scipy.optimize import minimize

    cache = {}

    def fun(x):
        values, grad = objective.value_and_grad(x.astype(np.float32))
        cache["x"], cache["values"] = x.copy(), values
        return np.float64(values["total"]), grad.astype(np.float64).ravel()

    count = [0]

    def callback(intermediate_result):
        count[0] += 1
        x = intermediate_result.x
        # The accepted point is almost always the last one evaluated: reuse its losses.
        values = cache["values"] if np.array_equal(cache.get("x"), x) else None
        record(count[0], x.astype(np.float32), values)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{intermediate_result.fun:.4g}")

    result = minimize(fun, x0.astype(np.float64).ravel(), jac=True, method="L-BFGS-B",
                      bounds=[(0.0, 255.0)] * x0.size, callback=callback,
                      options={"maxiter": iterations, "maxfun": 20 * iterations, "ftol": 0.0, "gtol": 0.0, "maxcor": 10})
    return result.x.astype(np.float32)


def _run_adam(objective, x0, iterations, lr, record, bar):
    import keras

    image = tf.Variable(np.reshape(x0, objective.shape), dtype=tf.float32)
    adam = keras.optimizers.Adam(learning_rate=lr)
    for i in range(1, iterations + 1):
        values, grad = objective._value_and_grad(image)  # noqa: SLF001
        adam.apply_gradients([(grad, image)])
        image.assign(tf.clip_by_value(image, 0.0, 255.0))
        record(i, image.numpy())
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{float(values['total']):.4g}")
    return image.numpy()
