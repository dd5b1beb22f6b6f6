"""Running ``.tflite`` files: LiteRT's interpreter (``ai_edge_litert``), TensorFlow's where LiteRT is missing.

``tf.lite.Interpreter`` is deprecated in favour of ``ai_edge_litert``, the same
runtime as a package of its own; both take the same calls.
"""

import numpy as np

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # pragma: no cover - LiteRT ships no wheel for some platforms
    import tensorflow as tf

    Interpreter = tf.lite.Interpreter


def interpreter(model_content=None, model_path=None, num_threads=None, **options):
    return Interpreter(model_content=model_content, model_path=model_path, num_threads=num_threads, **options)


def _quantize(x, details):
    """float32 values -> the tensor's type, through its quantization parameters when it is quantized
    (an unquantized uint8 tensor, as ``model.tflite``'s pixels, has scale 0: a plain rounding cast)."""
    if details["dtype"] in (np.uint8, np.int8):
        scale, zero = details["quantization"]
        if not scale:
            scale, zero = 1.0, 0
        info = np.iinfo(details["dtype"])
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(details["dtype"])
    return x.astype(details["dtype"])


class TFLiteStylizer:
    """Runs a converted model on one uint8 [H, W, 3] image at its own size.

    A multi-style model has a second input, ``style_weights`` [1, rows] (``style_input``),
    whose row is given with each call. An interpreter is prepared once per image size and kept
    for the next image of that size (up to ``sizes_kept`` sizes): preparing XNNPACK's kernels for a
    size costs about as much as a run, and a folder of photos is mostly of a few sizes.
    """

    def __init__(self, model_content=None, model_path=None, num_threads=None, sizes_kept=3):
        self._make = lambda: interpreter(model_content=model_content, model_path=model_path, num_threads=num_threads)
        self.interp = self._make()
        self._find_tensors()
        self.shape = None
        self.sizes_kept = sizes_kept
        self._by_size = {}  # (h, w) -> interpreter allocated for that size, most recent last

    def _use_size(self, h, w):
        interp = self._by_size.pop((h, w), None)
        if interp is None:
            interp = self.interp if not self._by_size and self.shape is None else self._make()
            interp.resize_tensor_input(self._input_index(interp), [1, h, w, 3], strict=False)
            interp.allocate_tensors()
        self._by_size[(h, w)] = interp
        while len(self._by_size) > self.sizes_kept:
            self._by_size.pop(next(iter(self._by_size)))
        self.interp, self.shape = interp, (h, w)
        self._find_tensors()

    @staticmethod
    def _input_index(interp):
        return next(d for d in interp.get_input_details() if len(d["shape"]) == 4)["index"]

    def _find_tensors(self):
        inputs = self.interp.get_input_details()
        self.input = next(d for d in inputs if len(d["shape"]) == 4)
        self.style_input = next((d for d in inputs if len(d["shape"]) == 2), None)
        self.output = self.interp.get_output_details()[0]

    def __call__(self, image, style_weights=None):
        """uint8 [H, W, 3] (and float [rows] style weights for a multi-style model) -> float32 [H, W, 3] in 0..255."""
        h, w = image.shape[:2]
        if self.shape != (h, w):
            self._use_size(h, w)
        self.interp.set_tensor(self.input["index"], _quantize(image[None].astype(np.float32), self.input))
        if self.style_input is not None:
            if style_weights is None:
                raise ValueError("this model is multi-style: pass style_weights, one per style row")
            row = np.asarray(style_weights, np.float32).reshape(1, -1)
            self.interp.set_tensor(self.style_input["index"], _quantize(row, self.style_input))
        self.interp.invoke()
        y = self.interp.get_tensor(self.output["index"])[0]
        scale, zero = self.output["quantization"]
        if self.output["dtype"] in (np.uint8, np.int8) and scale:
            y = (y.astype(np.float32) - zero) * scale
        return np.clip(y.astype(np.float32), 0.0, 255.0)
