"""Helpers shared by the bench scripts: threads, timing, JSON lines, TFLite conversion.

Every bench script prints one JSON object per line on stdout (logs go to
stderr), so results can be collected with ``> results.jsonl``.
"""

import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def set_threads(threads):
    """Pins TensorFlow's intra-op pool to ``threads`` (0: TF's default); must run before any op."""
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)


def machine():
    """A short description of the machine for every JSON line.

    On these VMs the model name is only "AMD EPYC": the CPU family and model number tell the
    generation (family 25 model 1: Zen 3; model 17: Zen 4), and ``vnni`` whether INT8 dot
    products are fast.
    """
    cpu, info = platform.processor() or "", {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = (part.strip() for part in line.partition(":"))
                if key in ("model name", "cpu family", "model", "flags") and key not in info:
                    info[key] = value
                if line.strip() == "":
                    break
    except OSError:
        pass
    cpu = info.get("model name", cpu)
    if "cpu family" in info:
        cpu += f" (family {info['cpu family']} model {info.get('model', '?')})"
    flags = set(info.get("flags", "").split())
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {"cpu": cpu, "vnni": bool(flags & {"avx512_vnni", "avx_vnni"}), "cpus": os.cpu_count(), "gpus": len(gpus),
            "tf": tf.__version__, "load1": round(os.getloadavg()[0], 2)}


def emit(record, stream=None):
    """Prints one JSON line and flushes."""
    print(json.dumps(record, sort_keys=False), file=stream or sys.stdout, flush=True)


def time_call(fn, repeats=5, warmup=1):
    """Runs ``fn`` ``warmup`` times untimed, then ``repeats`` times; returns (median s, all times)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), [round(t, 5) for t in times]


def shared_photos(name):
    """``../shared/data/content/<name>`` beside the repo when it is there, else the package's sample photos."""
    from tfstyle.images import SAMPLES_DIR

    shared = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "content", name)
    return shared if os.path.isdir(shared) else SAMPLES_DIR


DEFAULT_CALIBRATION = shared_photos("train")


def calibration_crops(directory, quick, num_crops=16, quick_images=2):
    """INT8 calibration inputs: ``num_crops`` crops of 256 px from the photos in ``directory``
    (``quick_images`` random 64 px images with ``quick`` or without the folder)."""
    if quick or not os.path.isdir(directory):
        return [random_images(1, 64, seed=i) for i in range(quick_images)]
    from tfstyle import tflite

    return tflite.representative_crops(directory, num_crops=num_crops, crop_size=256)


def random_images(n, size, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype(np.float32)


def convert_fixed(fn_or_model, input_shape, mode="float32", calibration=None, io_int8=False):
    """Converts a Keras model/layer (or tf function of one tensor) with a fixed input shape.

    ``mode``: float32, fp16 or int8 (full integer; ``calibration`` is a list of
    float32 arrays of ``input_shape``; ``io_int8`` makes the I/O int8 too).
    """

    import keras

    if isinstance(fn_or_model, keras.layers.Layer) and not isinstance(fn_or_model, keras.Model):
        # A bare layer's variables do not survive int8 calibration; a functional model's do.
        inp = keras.Input(batch_shape=tuple(input_shape))
        fn_or_model = keras.Model(inp, fn_or_model(inp))

    @tf.function(input_signature=[tf.TensorSpec(input_shape, tf.float32)])
    def fn(x):
        return fn_or_model(x)

    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from tfstyle.transformer import tflite_forms

    with tflite_forms():  # trace the layers with the ops LiteRT runs fast, as tfstyle.tflite.convert does
        frozen = convert_variables_to_constants_v2(fn.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    import contextlib

    with contextlib.redirect_stdout(sys.stderr):
        return _finish(converter, mode, calibration, io_int8)


def _finish(converter, mode, calibration, io_int8):
    if mode == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([c] for c in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io_int8:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    return converter.convert()


def convert_transformer(model, mode, calibration=None):
    """The transformer as TFLite bytes: tfstyle.tflite's converter (dynamic H x W, uint8 I/O for int8)."""
    from tfstyle import tflite

    return tflite.convert(model, mode, calibration)


def tflite_runner(model_content, shape, threads=2):
    """An interpreter resized to ``shape`` with a random input set; returns (invoke fn, interpreter)."""
    from tfstyle import litert

    interp = litert.interpreter(model_content=model_content, num_threads=threads)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], list(shape), strict=False)
    interp.allocate_tensors()
    dtype = inp["dtype"]
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        x = np.random.default_rng(0).integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    else:
        x = np.random.default_rng(0).uniform(0, 255, shape).astype(dtype)
    interp.set_tensor(inp["index"], x)
    return interp.invoke, interp
