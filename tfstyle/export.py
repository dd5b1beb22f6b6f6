"""SavedModel export in TF Serving's layout, ``<out>/<style>/<version>/``.

Two signatures, so clients can send either tensors or files:

* ``serving_default``: ``images`` uint8 [batch, H, W, 3] -> ``stylized`` uint8, same size;
* ``stylize_bytes``: ``image_bytes`` string [batch] (JPEG / PNG / GIF / BMP files;
  what TF Serving REST decodes from ``{"b64": ...}``) -> ``stylized_bytes`` string
  [batch], PNG files. The ``_bytes`` suffixes make TF Serving's REST API base64
  the values both ways.

A multi-style network (``tfstyle.multistyle``) takes two more inputs in both signatures:
``style_weights`` float32 [num_styles] (one weight per style, normalized; one blend for
the whole batch) and ``strength`` float32 [] (0: the photo, 1: the full style; towards the
identity style in norm space when the network has one, else a pixel fade). The names of
its styles, in order, are the SavedModel's string variable ``style_names`` (all style rows,
the identity row included: ``row_names``). Bad values (a wrong count, a negative, NaN or
infinite weight, all weights zero, a strength outside 0..1) fail inside the graph with an
``InvalidArgument`` error that says which (TF Serving answers HTTP 400).

Each single-style version also holds ``model.tflite``: ``serving_default`` (same names, uint8
in and out) as a TFLite file with float16 weights that computes in float32, the file
``tensorflow_model_server --prefer_tflite_model=true`` (and ``tfstyle serve
--prefer_tflite_model``) serves instead of the TensorFlow graph: LiteRT's XNNPACK kernels run
the network about twice as fast as TensorFlow's own CPU kernels. It has no ``stylize_bytes``
(TFLite cannot decode images; ``tfstyle serve`` decodes them itself).

A version is written under a hidden temporary name next to its final place and
renamed when complete: TF Serving only loads numeric folder names, so it never
sees a half-written export, and a failed export leaves earlier versions alone.
"""

import json
import os
import shutil
import time
import uuid

import numpy as np
import tensorflow as tf
from absl import logging

from tfstyle import litert, models, multistyle, styles, tflite
from tfstyle.images import list_images, load_image
from tfstyle.models import version_dirs
from tfstyle.transformer import style_count, tflite_forms

BYTES_SIGNATURE = "stylize_bytes"
DEFAULT_SIGNATURE = "serving_default"
IMAGES_KEY = "images"
STYLIZED_KEY = "stylized"
IMAGE_BYTES_KEY = "image_bytes"
STYLIZED_BYTES_KEY = "stylized_bytes"
STYLE_WEIGHTS_KEY = "style_weights"
STRENGTH_KEY = "strength"
SERVING_TFLITE = "model.tflite"  # the name TF Serving's --prefer_tflite_model looks for in a version folder


class ExportError(RuntimeError):
    """The export destination is not writable as asked (an existing version, a bad version number)."""


def to_uint8(images):
    """Float 0..255 -> uint8, rounded (not truncated) and clipped."""
    return tf.cast(tf.clip_by_value(tf.round(images), 0.0, 255.0), tf.uint8)


class ServingModule(tf.Module):
    """The transformer wrapped with uint8 and encoded-bytes entry points."""

    def __init__(self, model):
        super().__init__(name="tfstyle_serving")
        self.model = model
        # In build order, so ``models.weights_from_savedmodel`` can put them back into a fresh net.
        self.transformer_weights = [w.value for w in model.weights]

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name=IMAGES_KEY)])
    def serve_images(self, images):
        stylized = self.model(tf.cast(images, tf.float32), training=False)
        return {STYLIZED_KEY: to_uint8(stylized)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE_BYTES_KEY)])
    def serve_bytes(self, image_bytes):
        def one(data):
            stylized = self.model(tf.cast(decode_checked(data), tf.float32)[None], training=False)[0]
            return tf.io.encode_png(to_uint8(stylized))

        return {STYLIZED_BYTES_KEY: tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec([], tf.string))}


def decode_checked(data):
    """One encoded image -> uint8 [H, W, 3], with an InvalidArgument that says what is wrong with bad bytes."""
    tf.debugging.assert_greater(
        tf.strings.length(data), 0, message="image_bytes: empty string, expected an encoded JPEG or PNG image"
    )
    is_image = tf.logical_or(
        tf.logical_or(tf.strings.substr(data, 0, 3) == b"\xff\xd8\xff", tf.strings.substr(data, 0, 8) == b"\x89PNG\r\n\x1a\n"),
        tf.logical_or(tf.strings.substr(data, 0, 3) == b"GIF", tf.strings.substr(data, 0, 2) == b"BM"),
    )
    tf.debugging.Assert(is_image, ["image_bytes: not a JPEG, PNG, GIF or BMP image (unknown header)"])
    return tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)


class MultiStyleServingModule(ServingModule):
    """A multi-style transformer: both entry points also take ``style_weights`` and ``strength``."""

    def __init__(self, model):
        super().__init__(model)
        rows = list(getattr(model, "row_names", None) or [f"style{i + 1}" for i in range(style_count(model))])
        self.row_names = tf.Variable(rows, trainable=False, name="row_names")
        self.style_names = tf.Variable(multistyle.style_names(rows), trainable=False, name="style_names")
        self._names = multistyle.style_names(rows)
        self._photo = multistyle.has_photo(rows)

    def _row(self, style_weights, strength):
        """The checked network row for (style_weights, strength), the pixel fade (1: none) and the
        identity row's error to add back (``multistyle.identity_correction``; 0: none)."""
        n, names = len(self._names), ", ".join(self._names)
        checks = [
            tf.debugging.assert_equal(tf.size(style_weights), n, message=(
                f"style_weights: expected {n} values, one per style ({names})")),
            tf.debugging.assert_equal(tf.reduce_all(tf.math.is_finite(style_weights)), True, message=(
                "style_weights: NaN or infinite weight; weights must be finite numbers >= 0")),
            tf.debugging.assert_greater_equal(tf.reduce_min(style_weights), 0.0, message=(
                "style_weights: negative weight; weights must be >= 0")),
            tf.debugging.assert_greater(tf.reduce_sum(style_weights), 0.0, message=(
                "style_weights: all weights are zero; give at least one style a positive weight")),
            tf.debugging.assert_equal(tf.logical_and(strength >= 0.0, strength <= 1.0), True, message=(
                "strength: must be between 0 (the photo) and 1 (the full style)")),
        ]
        with tf.control_dependencies(checks):
            weights = style_weights / tf.reduce_sum(style_weights)
            if self._photo:  # towards the identity row, in norm space
                return tf.concat([strength * weights, [1.0 - strength]], 0), tf.constant(1.0), 1.0 - strength
            return tf.identity(weights), tf.identity(strength), tf.constant(0.0)

    def _stylize(self, images, row, fade, correction):
        """float32 [B, H, W, 3] -> float32 stylized, plus ``correction`` times (photo - the identity row's
        output) where the network has one, faded in pixels by ``fade``."""
        batch = tf.shape(images)[0]
        stylized = self.model([images, tf.tile(row[None], [batch, 1])], training=False)
        if self._photo:
            photo_row = tf.one_hot(tf.size(row) - 1, tf.size(row))  # the identity row is the last
            identity = tf.cond(correction > 0.0,
                               lambda: self.model([images, tf.tile(photo_row[None], [batch, 1])], training=False),
                               lambda: images)
            stylized = stylized + correction * (images - identity)
        return fade * stylized + (1.0 - fade) * images

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name=IMAGES_KEY),
                                  tf.TensorSpec([None], tf.float32, name=STYLE_WEIGHTS_KEY),
                                  tf.TensorSpec([], tf.float32, name=STRENGTH_KEY)])
    def serve_images(self, images, style_weights, strength):
        row, fade, correction = self._row(style_weights, strength)
        return {STYLIZED_KEY: to_uint8(self._stylize(tf.cast(images, tf.float32), row, fade, correction))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE_BYTES_KEY),
                                  tf.TensorSpec([None], tf.float32, name=STYLE_WEIGHTS_KEY),
                                  tf.TensorSpec([], tf.float32, name=STRENGTH_KEY)])
    def serve_bytes(self, image_bytes, style_weights, strength):
        row, fade, correction = self._row(style_weights, strength)

        def one(data):
            stylized = self._stylize(tf.cast(decode_checked(data), tf.float32)[None], row, fade, correction)[0]
            return tf.io.encode_png(to_uint8(stylized))

        return {STYLIZED_BYTES_KEY: tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec([], tf.string))}


def serving_module(model):
    """The serving module for ``model``: multi-style when it has style rows."""
    return ServingModule(model) if style_count(model) is None else MultiStyleServingModule(model)


def signatures(module):
    return {
        DEFAULT_SIGNATURE: module.serve_images.get_concrete_function(),
        BYTES_SIGNATURE: module.serve_bytes.get_concrete_function(),
    }


def serving_tflite(model):
    """``serving_default`` of a single-style ``model`` as TFLite bytes (float16 weights, float32 compute,
    uint8 ``images`` in, uint8 ``stylized`` out, any batch and size): ``model.tflite`` of a version folder."""
    module = ServingModule(model)  # a fresh module: its function is traced here, in the LiteRT forms
    with tflite_forms():
        converter = tf.lite.TFLiteConverter.from_concrete_functions([module.serve_images.get_concrete_function()], module)
        return tflite.run_converter(converter, "fp16")


def next_version(base):
    versions = version_dirs(base)
    return max(versions) + 1 if versions else 1


def export_savedmodel(model, out_dir, style, version=None, overwrite=False, with_tflite=False):
    """Writes ``model`` to ``<out_dir>/<style>/<version>/`` atomically (``write_version``); returns that path.
    ``with_tflite``: also ``model.tflite`` (``serving_tflite``) for a single-style network."""
    def save(tmp):
        module = serving_module(model)
        with tflite.quiet_tensorflow():
            tf.saved_model.save(module, tmp, signatures=signatures(module))
        if with_tflite and style_count(model) is None:
            with open(os.path.join(tmp, SERVING_TFLITE), "wb") as f:
                f.write(serving_tflite(model))

    return write_version(os.path.join(out_dir, styles.style_name(style)), version, overwrite, save)


def write_version(base, version, overwrite, save):
    """Calls ``save(folder)`` on a hidden folder and renames it ``<base>/<version>``; returns that path.

    ``version`` None: one more than the highest existing version (1 for the first).
    An existing version is replaced only with ``overwrite``, and only once the new one is complete.
    """
    os.makedirs(base, exist_ok=True)
    version = next_version(base) if version is None else int(version)
    if version < 1:
        raise ExportError(f"--version must be a positive integer, got {version}")
    final = os.path.join(base, str(version))
    if os.path.exists(final) and not overwrite:
        raise ExportError(f"{final} already exists: pass another --version, or --overwrite to replace it")
    # Hidden and non-numeric: TF Serving's file system poller ignores it while it is written.
    tmp = os.path.join(base, f".tmp-{version}-{uuid.uuid4().hex[:8]}")
    try:
        save(tmp)
        if os.path.exists(final):
            # Swap: the old version disappears only once the new one is complete.
            old = os.path.join(base, f".old-{version}-{uuid.uuid4().hex[:8]}")
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def export_any_painting(out_dir, version=None, overwrite=False, decoders_path=None, vgg_weights="auto"):
    """Writes the any-painting network: the SavedModel (``arbitrary.AnyPaintingServingModule``) to
    ``<out_dir>/any_painting/<version>/`` atomically, and the part TFLite runs
    (``any_painting_tflite``) to ``<out_dir>/any_painting.tflite``; returns both paths."""
    from tfstyle import any_painting_tflite, arbitrary, decoders

    encoder = decoders.build_encoder(vgg_weights)
    nets = decoders.load_decoders(decoders_path or decoders.PACKAGED)
    module = arbitrary.AnyPaintingServingModule(encoder, nets)

    def save(tmp):
        with tflite.quiet_tensorflow():
            tf.saved_model.save(module, tmp, signatures=module.signatures())

    savedmodel = write_version(os.path.join(out_dir, arbitrary.SERVING_NAME), version, overwrite, save)
    return savedmodel, any_painting_tflite.write(out_dir, encoder, nets)


def dir_size(path):
    """Total bytes of the files below ``path``."""
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, files in os.walk(path) for f in files)



def psnr(a, b):
    """PSNR in dB between two uint8 images (inf when identical)."""
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def score_tflite(runners, photos, reference_of, row=None):
    """PSNR and max error of each runner's uint8 output against ``reference_of(image)`` (uint8).

    ``runners``: {key: litert.TFLiteStylizer}; ``photos``: iterable of (name, uint8 image), read
    one at a time; ``row``: the style row a multi-style runner is given. Returns {key: {"psnr_mean",
    "psnr_min", "max_abs_error", "per_image": [...]}}: the one scoring rule of the export report
    and of the range-quantile choice.
    """
    per_image = {key: [] for key in runners}
    for name, image in photos:
        reference = reference_of(image)
        for key, run in runners.items():
            out = np.clip(np.round(run(image, row)), 0, 255).astype(np.uint8)
            per_image[key].append({
                "image": name,
                "size": f"{image.shape[1]}x{image.shape[0]}",
                "psnr": round(psnr(out, reference), 2),
                "max_abs_error": int(np.abs(out.astype(np.int16) - reference.astype(np.int16)).max()),
            })
    summary = {}
    for key, rows in per_image.items():
        values = [r["psnr"] for r in rows]
        summary[key] = {
            "psnr_mean": round(float(np.mean(values)), 2) if values else None,
            "psnr_min": round(float(np.min(values)), 2) if values else None,
            "max_abs_error": max((r["max_abs_error"] for r in rows), default=None),
            "per_image": rows,
        }
    return summary


def compare_tflite(savedmodel_path, tflite_models, image_paths):
    """``score_tflite`` of each TFLite model against the float SavedModel, on the full-size images.

    ``tflite_models``: {mode: flatbuffer bytes}. A multi-style model is compared on its first style.
    """
    loaded = tf.saved_model.load(savedmodel_path)
    serve = loaded.signatures[DEFAULT_SIGNATURE]
    extra, row = {}, None
    if getattr(loaded, "style_names", None) is not None:
        n, rows = int(tf.size(loaded.style_names)), int(tf.size(loaded.row_names))
        extra = {STYLE_WEIGHTS_KEY: tf.one_hot(0, n), STRENGTH_KEY: tf.constant(1.0)}
        row = np.eye(rows, dtype=np.float32)[0]

    def reference_of(image):
        return serve(images=tf.constant(image[None]), **extra)[STYLIZED_KEY][0].numpy()

    runners = {mode: litert.TFLiteStylizer(content) for mode, content in tflite_models.items()}
    photos = ((os.path.basename(path), load_image(path)) for path in image_paths)
    return score_tflite(runners, photos, reference_of, row)


# The quantiles ``choose_range_quantile`` tries: on training photos outside the calibration crops the
# best one lay between 0.6 and 0.9 for every shipped network (docs/RESULTS.md).
AUTO_RANGE_QUANTILES = (0.6, 0.75, 0.9)
WORST_PHOTO_TOLERANCE_DB = 1.0
# The choice is scored on this many held-out photos at this longer side: enough to rank the candidates,
# a fraction of the time of full-size photos (the report's accuracy is measured at full size on --eval_dir).
CHOICE_PHOTOS = 16
CHOICE_SIDE = 256


def choose_range_quantile(model, candidates, photos):
    """The entry of ``candidates`` ({quantile: INT8 flatbuffer}) closest to ``model`` in float on
    ``photos`` ([(path, uint8 image)]): the highest mean PSNR among the candidates whose worst photo
    is within ``WORST_PHOTO_TOLERANCE_DB`` of the best worst photo. Narrower ranges raised the mean
    on every shipped network but cost some networks their worst photo (docs/RESULTS.md).
    Returns (quantile, {quantile: {"psnr_mean", "psnr_min"}}); a multi-style model is compared
    on its first row.
    """
    rows = style_count(model)
    row = None if rows is None else np.eye(rows, dtype=np.float32)[0]

    def reference_of(image):
        x = image[None].astype(np.float32)
        out = model(x if row is None else [x, row[None]], training=False)
        return np.clip(np.round(np.asarray(out)[0]), 0, 255).astype(np.uint8)

    runners = {q: litert.TFLiteStylizer(content) for q, content in candidates.items()}
    scores = score_tflite(runners, ((os.path.basename(p), image) for p, image in photos), reference_of, row)
    summary = {q: {"psnr_mean": s["psnr_mean"], "psnr_min": s["psnr_min"]} for q, s in scores.items()}
    return pick_range_quantile(summary), summary


def pick_range_quantile(summary):
    """``choose_range_quantile``'s rule on {quantile: {"psnr_mean", "psnr_min"}}."""
    best_worst = max(v["psnr_min"] for v in summary.values())
    safe = [q for q, v in summary.items() if v["psnr_min"] >= best_worst - WORST_PHOTO_TOLERANCE_DB]
    return max(safe, key=lambda q: summary[q]["psnr_mean"])


def _int8_with_range_quantile(model, crops, range_quantile, calibration_dir, num_crops):
    """(INT8 flatbuffer, report entry) for ``export_style``'s ``range_quantile``.

    "auto": one calibration pass gives every candidate (``tflite.convert`` with a list of quantiles),
    scored on ``CHOICE_PHOTOS`` held-out photos scaled to ``CHOICE_SIDE``.
    """
    from tfstyle.images import resize_longer_side

    held_out = tflite.held_out_photos(calibration_dir, num_crops, count=CHOICE_PHOTOS) if range_quantile == "auto" else []
    held_out = [(p, resize_longer_side(image, CHOICE_SIDE)) for p, image in held_out]
    if not held_out:
        if range_quantile == "auto":
            logging.info("no photos of %s beyond the calibration crops' to choose a range quantile on: %s",
                         calibration_dir, tflite.RANGE_QUANTILE)
        quantile = tflite.RANGE_QUANTILE if range_quantile == "auto" else float(range_quantile)
        return tflite.convert(model, "int8", crops, range_quantile=quantile), {"chosen": quantile}
    contents = dict(zip(AUTO_RANGE_QUANTILES, tflite.convert(model, "int8", crops, list(AUTO_RANGE_QUANTILES))))
    logging.info("choosing the range quantile among %s on %d held-out photos at %d px",
                 ", ".join(map(str, AUTO_RANGE_QUANTILES)), len(held_out), CHOICE_SIDE)
    quantile, scores = choose_range_quantile(model, contents, held_out)
    logging.info("INT8 range quantile %s; INT8 vs float on %d photos that gave no crop (%d px), mean / worst dB: %s",
                 quantile, len(held_out), CHOICE_SIDE,
                 ", ".join(f"{q}: {s['psnr_mean']} / {s['psnr_min']}" for q, s in scores.items()))
    return contents[quantile], {"chosen": quantile, "held_out_photos": [os.path.basename(p) for p, _ in held_out],
                                "held_out_psnr": {str(q): s for q, s in scores.items()}}


def report_path(out_dir, style):
    return os.path.join(out_dir, f"{styles.style_name(style)}_export_report.json")


def tflite_path(out_dir, style, mode):
    return os.path.join(out_dir, f"{styles.style_name(style)}_{mode}.tflite")


def export_style(
    style,
    weights,
    out_dir="saved_models",
    version=None,
    overwrite=False,
    tflite_modes=("int8", "fp16"),
    calibration_dir=None,
    num_crops=100,
    crop_size=256,
    eval_dir=None,
    eval_max_images=None,
    range_quantile="auto",
):
    """The whole export: SavedModel version, TFLite files, and the report (returned and saved).

    ``range_quantile``: the INT8 activation ranges' quantile (``tflite.calibrated_ranges``), or
    ``"auto"``: each of ``AUTO_RANGE_QUANTILES``, scored against the float network on photos of
    ``calibration_dir`` that gave no crop (``tflite.held_out_photos``), one kept by ``pick_range_quantile``.

    Conversions run before anything is written, so a failure leaves the previous
    export untouched; every file is written under a temporary name and renamed.
    """
    start = time.perf_counter()
    step = lambda message, *args: logging.info("[%3.0f s] " + message, time.perf_counter() - start, *args)  # noqa: E731
    model, _ = models.load_network(weights)  # weights file or SavedModel (models.find_network)
    rows = list(getattr(model, "row_names", None) or []) if style_count(model) is not None else None
    converted = {}
    calibration_info = None
    for mode in tflite_modes:
        if mode == "int8":
            if not calibration_dir:
                raise ExportError("int8 export needs --calibration_dir (a folder of photos)")
            crops = tflite.representative_crops(calibration_dir, num_crops, crop_size)
            calibration_info = {"dir": calibration_dir, "crops": len(crops), "crop_size": crop_size}
            step("converting to INT8 TFLite, calibrated on %d crops of %s", len(crops), calibration_dir)
            content, calibration_info["range_quantile"] = _int8_with_range_quantile(
                model, crops, range_quantile, calibration_dir, num_crops)
            tflite.check_integer_only(content)
        else:
            step("converting to %s TFLite", mode)
            content = tflite.convert(model, mode)
        if rows:
            content = multistyle.add_tflite_row_names(content, rows)
        converted[mode] = content

    step("writing the SavedModel (and its model.tflite)")
    saved = export_savedmodel(model, out_dir, style, version=version, overwrite=overwrite, with_tflite=True)
    serving_tflite_path = os.path.join(saved, SERVING_TFLITE)
    report = {
        "style": styles.style_name(style),
        # Shipped weights are recorded inside the package, without this machine's path.
        "weights": os.path.relpath(weights, os.path.dirname(os.path.dirname(models.PRETRAINED_DIR)))
        if os.path.dirname(os.path.abspath(weights)) == models.PRETRAINED_DIR else weights,
        "savedmodel": {"path": saved, "version": int(os.path.basename(saved)), "bytes": dir_size(saved),
                       "model_tflite_bytes": (os.path.getsize(serving_tflite_path)
                                              if os.path.exists(serving_tflite_path) else None)},
        "tflite": {},
    }
    if rows is not None:
        report["style_names"] = multistyle.style_names(rows)
        report["row_names"] = rows
    for mode, content in converted.items():
        path = tflite_path(out_dir, style, mode)
        tflite.write_atomic(path, content)
        runner = litert.TFLiteStylizer(content)
        ops = tflite.op_report(content)
        report["tflite"][mode] = {
            "path": path,
            "bytes": os.path.getsize(path),
            "ops": ops["ops"],
            "float_ops": ops["float_ops"],
            "io_types": ops["io_types"],
            "input_quantization": [float(v) for v in runner.input["quantization"]],
            "output_quantization": [float(v) for v in runner.output["quantization"]],
        }
        if mode == "int8":
            report["tflite"][mode]["calibration"] = calibration_info
    if eval_dir and converted:
        paths = list_images(eval_dir)[:eval_max_images]
        step("measuring %s against the float model on %d photos of %s", ", ".join(converted), len(paths), eval_dir)
        report["eval"] = {"dir": eval_dir, "images": len(paths), "reference": "float SavedModel serving_default"}
        report["eval"].update(compare_tflite(saved, converted, paths))
    path = report_path(out_dir, style)
    tflite.write_atomic(path, (json.dumps(report, indent=2) + "\n").encode())
    report["report_path"] = path
    step("done")
    return report
