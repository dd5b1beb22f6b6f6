"""The models a server offers: TF Serving's base-path layout, version pick-up, loading.

Layout: ``<base>/<model_name>/<version>/`` (a SavedModel in each version folder),
or, for a single model, ``<base>/<version>/``. Only folders named by digits are
versions, so an export's hidden ``.tmp-*`` folder is never loaded; model names
come from listing ``<base>`` (never from a request), so a request cannot name a
path outside it.

Version policy, as TF Serving's default (latest version): each model serves its
highest version that loads. A newer version that fails to load is reported
(state ``END``, with the error) and the previous one keeps serving; it is
retried when its folder changes. Older versions are unloaded once a newer one
is available. ``ModelRegistry.poll`` does one scan; the server calls it
periodically from a background thread. Loads run on their own thread(s), so the
server answers meanwhile; a version is ``LOADING`` until it is ``AVAILABLE`` (TF Serving's states).

With ``prefer_tflite_model`` (TF Serving's flag of that name), a version folder that
holds ``model.tflite`` is served from it through LiteRT (``TFLiteServable``): its
``serving_default`` at LiteRT's speed, and ``stylize_bytes`` with the images decoded and
encoded here. Other folders load as SavedModels.

TensorFlow is imported when the first model loads, not at module import.
"""

import logging
import os
import re
import threading

import numpy as np

from tfstyle.rest_json import InputSpec, RequestError

log = logging.getLogger("tfstyle.serve")
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
VERSION = re.compile(r"[0-9]{1,18}")


class Servable:
    """One loaded version: ``signatures`` ({name: concrete function}), ``inputs`` ({sig: {input: InputSpec}}),
    ``signature_defs`` (TF Serving's metadata JSON for them), ``style_names`` (of a multi-style model, or [])."""

    def __init__(self, name, version, path):
        import tensorflow as tf

        self.name, self.version, self.path = name, version, path
        self.signature_defs = read_signature_defs(path)
        self.loaded = tf.saved_model.load(path)
        self.signatures = dict(self.loaded.signatures)
        self.style_names = read_style_names(self.loaded)
        self.inputs = {}
        for sig, fn in self.signatures.items():
            specs = fn.structured_input_signature[1]
            self.inputs[sig] = {
                key: InputSpec("string" if spec.dtype == tf.string else spec.dtype.name, spec.shape.as_list())
                for key, spec in specs.items()
            }

    def run(self, signature, arrays):
        """{output: numpy array}; TF errors (e.g. a damaged image) propagate as ``tf.errors.OpError``."""
        import tensorflow as tf

        fn = self.signatures[signature]
        specs = fn.structured_input_signature[1]
        tensors = {k: tf.constant(v.tolist() if v.dtype == object else v, dtype=specs[k].dtype) for k, v in arrays.items()}
        return {k: v.numpy() for k, v in fn(**tensors).items()}


class TFLiteServable:
    """One version served from its ``model.tflite`` (``tfstyle.export.serving_tflite``): the same
    ``serving_default`` contract as the SavedModel, and ``stylize_bytes`` with the images decoded
    (PIL, the first frame of an animation) and the results encoded as PNG here, since TFLite has no
    image codecs. Calls are serialized: one interpreter per version."""

    SIGNATURE, BYTES_SIGNATURE = "serving_default", "stylize_bytes"

    def __init__(self, name, version, path, num_threads=None):
        from tfstyle import export, litert

        self.name, self.version, self.path = name, version, path
        self.interpreter = litert.interpreter(model_path=os.path.join(path, export.SERVING_TFLITE),
                                              num_threads=num_threads)
        self.runner = self.interpreter.get_signature_runner(self.SIGNATURE)
        self.lock = threading.Lock()
        self.style_names = []
        inputs, outputs = _specs(self.runner.get_input_details()), _specs(self.runner.get_output_details())
        strings = {"image_bytes": InputSpec("string", [None])}, {"stylized_bytes": InputSpec("string", [None])}
        self.inputs = {self.SIGNATURE: inputs, self.BYTES_SIGNATURE: strings[0]}
        self.signature_defs = {self.SIGNATURE: _signature_def(inputs, outputs),
                               self.BYTES_SIGNATURE: _signature_def(*strings)}

    def run(self, signature, arrays):
        """{output: numpy array}; an undecodable image raises ``RequestError`` 400."""
        if signature == self.BYTES_SIGNATURE:
            return {"stylized_bytes": np.array([self._stylize_bytes(data, i) for i, data in
                                                enumerate(arrays["image_bytes"].reshape(-1))], dtype=object)}
        with self.lock:
            return {k: np.array(v) for k, v in self.runner(**arrays).items()}

    def _stylize_bytes(self, data, index):
        import io

        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(bytes(data))) as image:
                pixels = np.asarray(image.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise RequestError(400, f"image_bytes[{index}]: not a readable JPEG, PNG, GIF or BMP image ({e})") from None
        with self.lock:
            stylized = self.runner(images=pixels[None])["stylized"][0]
        out = io.BytesIO()
        Image.fromarray(stylized).save(out, format="PNG")
        return out.getvalue()


def _specs(details):
    """{name: InputSpec} of a LiteRT signature runner's input or output details (-1: any size)."""
    return {name: InputSpec(np.dtype(d["dtype"]).name, [None if n < 0 else int(n) for n in d["shape_signature"]])
            for name, d in details.items()}


def _signature_def(inputs, outputs):
    """TF Serving's SignatureDef JSON for {name: InputSpec} inputs and outputs."""
    import tensorflow as tf
    from tensorflow.core.framework import types_pb2

    def tensor(name, spec):
        dtype = types_pb2.DataType.Name(tf.as_dtype(spec.dtype).as_datatype_enum)  # e.g. DT_UINT8, DT_FLOAT
        return {"name": name, "dtype": dtype, "tensor_shape": {
            "dim": [{"size": str(-1 if d is None else d), "name": ""} for d in spec.shape], "unknown_rank": False}}

    return {"inputs": {k: tensor(k, v) for k, v in inputs.items()},
            "outputs": {k: tensor(k, v) for k, v in outputs.items()},
            "method_name": "tensorflow/serving/predict", "defaults": {}}


def servable_loader(prefer_tflite_model=False):
    """``loader(name, version, path)`` for ``ModelRegistry``: ``TFLiteServable`` where asked for and
    the folder holds ``model.tflite``, else ``Servable`` (the SavedModel)."""
    def load(name, version, path):
        from tfstyle import export

        if prefer_tflite_model and os.path.isfile(os.path.join(path, export.SERVING_TFLITE)):
            return TFLiteServable(name, version, path)
        return Servable(name, version, path)

    return load


def read_style_names(loaded):
    """The SavedModel's ``style_names`` attribute (a string tensor or variable), if it has one; else []."""
    import tensorflow as tf

    names = getattr(loaded, "style_names", None)
    try:
        return [n.decode("utf-8") for n in tf.reshape(tf.convert_to_tensor(names), [-1]).numpy().tolist()]
    except Exception:  # absent or not strings: the page numbers the styles instead
        return []


def read_signature_defs(path):
    """The ``serve`` MetaGraph's SignatureDefs as JSON (proto field names, defaults printed, as TF Serving)."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    graphs = [g for g in proto.meta_graphs if "serve" in g.meta_info_def.tags]
    if not graphs:
        raise ValueError(f"{path}: no MetaGraph tagged 'serve'")
    return {
        name: json_format.MessageToDict(sig, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
        for name, sig in graphs[0].signature_def.items()
    }


def fingerprint(path):
    """Changes when a version folder is rewritten: a failed load is retried then."""
    marks = [os.stat(path).st_mtime_ns]
    pb = os.path.join(path, "saved_model.pb")
    if os.path.exists(pb):
        marks += [os.stat(pb).st_mtime_ns, os.stat(pb).st_size]
    return tuple(marks)


class ModelRegistry:
    """Models under ``base_path`` (every model folder, or just ``model_name`` whose versions are in base_path).

    ``poll`` only looks at folders; loads run on ``load_threads`` threads (TF Serving's
    ``--num_load_threads``), one version per model at a time, so a server answers while its
    models load: their state is ``LOADING`` until ``AVAILABLE``. One thread by default: loading a
    SavedModel is mostly Python, and two loads on a busy 2-core machine held each other up (the GIL).
    Thread-safe: ``poll`` and loads change the registry, lookups run in other threads.
    ``loader(name, version, path)`` builds a servable (``Servable`` by default).
    """

    def __init__(self, base_path, model_name=None, loader=Servable, load_threads=1):
        from concurrent.futures import ThreadPoolExecutor

        self.base_path = os.path.abspath(base_path)
        self.model_name = model_name
        self.loader = loader
        self.lock = threading.Lock()
        self.serving = {}  # name -> Servable (the served version)
        self.loading = {}  # name -> the version being loaded
        self.states = {}  # name -> {version: (state, error_code, message)}
        self.failed = {}  # (name, version) -> fingerprint of the folder that failed to load
        self.load_pool = ThreadPoolExecutor(load_threads, thread_name_prefix="load")

    def model_dirs(self):
        if self.model_name:
            return {self.model_name: self.base_path} if os.path.isdir(self.base_path) else {}
        try:
            names = os.listdir(self.base_path)
        except OSError:
            return {}
        return {n: os.path.join(self.base_path, n) for n in names
                if MODEL_NAME.fullmatch(n) and os.path.isdir(os.path.join(self.base_path, n))}

    def poll(self):
        """One scan: start loading new versions, unload superseded or deleted ones. Never raises for a
        bad folder, never waits for a load."""
        found = self.model_dirs()
        for name, model_dir in found.items():
            self.update_model(name, model_dir)
        with self.lock:
            for name in set(self.states) - set(found):
                if name in self.serving:
                    log.info("model %s: folder removed, unloaded", name)
                self.serving.pop(name, None)
                self.states.pop(name, None)

    def update_model(self, name, model_dir):
        """Starts loading the model's highest version that is not served and has not failed to load
        as it is now (a newer one that fails leaves the served one in place). A model whose folders
        are all gone stops being served."""
        try:
            versions = sorted((int(v) for v in os.listdir(model_dir) if VERSION.fullmatch(v)), reverse=True)
        except OSError:
            versions = []
        with self.lock:
            if name in self.loading:
                return  # one load per model at a time; it looks again when done
            current = self.serving.get(name)
            for version in versions:
                if current is not None and current.version == version:
                    return
                path = os.path.join(model_dir, str(version))
                try:
                    mark = fingerprint(path)
                except OSError:
                    continue
                if self.failed.get((name, version)) != mark:
                    self.loading[name] = version
                    self.states.setdefault(name, {})[version] = ("LOADING", "OK", "")
                    break
            else:
                if current is not None:
                    log.info("model %s version %d: folder removed, unloaded", name, current.version)
                    self.states[name][current.version] = ("END", "OK", "")
                    del self.serving[name]
                return
        self.load_pool.submit(self.load, name, model_dir, version, path, mark)

    def load(self, name, model_dir, version, path, mark):
        """On a load thread: loads one version; it replaces the served one, or its failure is reported."""
        try:
            servable = self.loader(name, version, path)
        except Exception as e:  # any load failure: report it, keep serving what we have
            message = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            log.warning("model %s version %d: load failed: %s", name, version, message)
            with self.lock:
                self.failed[(name, version)] = mark
                self.states.setdefault(name, {})[version] = ("END", "UNKNOWN", f"failed to load {path}: {message}")
                del self.loading[name]
            self.update_model(name, model_dir)  # the next version down, if any, at once
            return
        log.info("model %s version %d: loaded from %s", name, version, path)
        with self.lock:
            states = self.states.setdefault(name, {})
            previous = self.serving.get(name)
            if previous is not None:
                states[previous.version] = ("END", "OK", "")
            states[version] = ("AVAILABLE", "OK", "")
            self.serving[name] = servable
            self.failed.pop((name, version), None)
            del self.loading[name]

    def is_loading(self, name, version=None):
        """Whether ``name`` (``version`` of it, if given) is being loaded now."""
        with self.lock:
            loading = self.loading.get(name)
        return loading is not None and version in (None, loading)

    def served(self):
        """The servables in service now, by model name."""
        with self.lock:
            return [self.serving[n] for n in sorted(self.serving)]

    def get(self, name, version=None):
        """The servable for a predict request, or RequestError 404 worded as TF Serving's."""
        with self.lock:
            servable = self.serving.get(name)
        if servable is None or (version is not None and servable.version != version):
            what = f"Latest({name})" if version is None else f"Specific({name}, {version})"
            raise RequestError(404, f"Servable not found for request: {what}")
        return servable

    def status(self, name, version=None):
        """TF Serving's GetModelStatus JSON for the model (or one version), or RequestError 404."""
        with self.lock:
            states = dict(self.states.get(name, {}))
        if version is not None:
            if version not in states:
                raise RequestError(404, f"Could not find version {version} of model {name}")
            states = {version: states[version]}
        if not states:
            raise RequestError(404, f"Could not find any versions of model {name}")
        return {"model_version_status": [
            {"version": str(v), "state": state, "status": {"error_code": code, "error_message": message}}
            for v, (state, code, message) in sorted(states.items(), reverse=True)
        ]}
