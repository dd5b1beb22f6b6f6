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


def interpreter(model_content=None, model_path=None, num_threads=None):
    return Interpreter(model_content=model_content, model_path=model_path, num_threads=num_threads)


class TFLiteStylizer:
    """Runs a converted model on one uint8 [H, W, 3] image at its own size."""

    def __init__(self, model_content=None, model_path=None, num_threads=None):
        self.interp = interpreter(model_content=model_content, model_path=model_path, num_threads=num_threads)
        self.input = self.interp.get_input_details()[0]
        self.output = self.interp.get_output_details()[0]
        self.shape = None

    def __call__(self, image):
        """uint8 [H, W, 3] -> float32 [H, W, 3] in 0..255."""
        h, w = image.shape[:2]
        if self.shape != (h, w):
            self.interp.resize_tensor_input(self.input["index"], [1, h, w, 3], strict=False)
            self.interp.allocate_tensors()
            self.shape = (h, w)
            self.input = self.interp.get_input_details()[0]
            self.output = self.interp.get_output_details()[0]
        x = image[None].astype(np.float32)
        scale, zero = self.input["quantization"]
        if self.input["dtype"] in (np.uint8, np.int8):
            info = np.iinfo(self.input["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.input["dtype"])
        self.interp.set_tensor(self.input["index"], x)
        self.interp.invoke()
        y = self.interp.get_tensor(self.output["index"])[0]
        scale, zero = self.output["quantization"]
        if self.output["dtype"] in (np.uint8, np.int8):
            y = (y.astype(np.float32) - zero) * scale
        return np.clip(y.astype(np.float32), 0.0, 255.0)
