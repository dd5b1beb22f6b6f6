"""SavedModel export: signatures, TF Serving request formats, errors, atomic versions.

The weights are a freshly initialized transformer: these tests check the
export contract, not the quality of a style.
"""

import base64
import io
import json
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import EVAL_DIR, REPO, TRAIN_DIR, run_python
from tfstyle import export, models, tflite
from tfstyle.images import list_images, load_image
from tfstyle.transformer import build_transformer

sys.path.insert(0, os.path.join(REPO, "examples"))
import rest_client  # noqa: E402

pytestmark = pytest.mark.slow  # subprocesses, conversions or servers: the quick tier skips them


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(1)
    return build_transformer()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("saved_models")
    return export.export_savedmodel(model, str(out), "mosaic")


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported)


@pytest.fixture(scope="module")
def photo():
    return load_image(list_images(EVAL_DIR)[0])[200:248, 300:364]  # 48 x 64


def keras_uint8(model, images):
    return np.clip(np.round(model(np.asarray(images, np.float32)).numpy()), 0, 255).astype(np.uint8)


def max_diff(a, b):
    return int(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max())


def test_layout_is_tf_serving_base_path_with_numeric_version(exported):
    assert os.path.basename(exported) == "1"
    assert os.path.basename(os.path.dirname(exported)) == "mosaic"
    assert os.path.isfile(os.path.join(exported, "saved_model.pb"))
    assert sorted(os.listdir(os.path.dirname(exported))) == ["1"]  # no temporary leftovers


def test_signatures_have_the_documented_inputs_and_outputs(loaded):
    assert set(loaded.signatures) == {"serving_default", "stylize_bytes"}
    default = loaded.signatures["serving_default"]
    (spec,) = default.structured_input_signature[1].values()
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, None, None, 3]
    assert list(default.structured_outputs) == ["stylized"]
    assert default.structured_outputs["stylized"].dtype == tf.uint8
    by_bytes = loaded.signatures["stylize_bytes"]
    (name, spec), = by_bytes.structured_input_signature[1].items()
    assert name == "image_bytes" and spec.dtype == tf.string and spec.shape.as_list() == [None]
    assert list(by_bytes.structured_outputs) == ["stylized_bytes"]


@pytest.mark.parametrize("shape", [(2, 48, 64), (1, 37, 29)])
def test_reloaded_savedmodel_matches_keras_model(model, loaded, photo, shape):
    n, h, w = shape
    images = np.stack([photo[:h, :w], photo[::-1, ::-1][:h, :w]])[:n]
    out = loaded.signatures["serving_default"](images=tf.constant(images))["stylized"].numpy()
    assert out.dtype == np.uint8 and out.shape == images.shape
    assert max_diff(out, keras_uint8(model, images)) <= 1


def encode(array, fmt):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def test_bytes_signature_round_trips_jpeg_and_png(model, loaded, photo):
    png_in = encode(photo, "PNG")
    jpeg_in = encode(photo[:40, :52], "JPEG")  # a different size in the same batch
    out = loaded.signatures["stylize_bytes"](image_bytes=tf.constant([png_in, jpeg_in]))["stylized_bytes"].numpy()
    assert out.shape == (2,)
    png_out, jpeg_out = (np.asarray(Image.open(io.BytesIO(b))) for b in out)
    assert all(Image.open(io.BytesIO(b)).format == "PNG" for b in out)
    assert png_out.shape == photo.shape and jpeg_out.shape == (40, 52, 3)
    assert max_diff(png_out, keras_uint8(model, photo[None])[0]) <= 1  # PNG is lossless: same pixels in
    decoded = tf.io.decode_jpeg(jpeg_in).numpy()  # the server's JPEG decoder, not Pillow's
    assert max_diff(jpeg_out, keras_uint8(model, decoded[None])[0]) <= 1


def test_predict_request_protos_feed_both_signatures(loaded, photo):
    """Builds tensorflow-serving-api PredictRequests and feeds their tensors as the server would."""
    from tensorflow_serving.apis import predict_pb2

    def serve(request):
        signature = loaded.signatures[request.model_spec.signature_name or "serving_default"]
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        return signature(**inputs)

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mosaic"
    request.model_spec.signature_name = "serving_default"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(photo[None]))
    out = serve(predict_pb2.PredictRequest.FromString(request.SerializeToString()))["stylized"]
    assert out.shape == (1, 48, 64, 3) and out.dtype == tf.uint8

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mosaic"
    request.model_spec.signature_name = "stylize_bytes"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([encode(photo, "PNG")], dtype=tf.string))
    (png,) = serve(predict_pb2.PredictRequest.FromString(request.SerializeToString()))["stylized_bytes"].numpy()
    assert Image.open(io.BytesIO(png)).size == (64, 48)


def tf_serving_rest_predict(loaded, body_json):
    """Decodes a REST predict body the way TF Serving does (row format, b64) and encodes the reply."""
    body = json.loads(body_json)
    signature = loaded.signatures[body.get("signature_name", "serving_default")]
    (input_name,) = signature.structured_input_signature[1]
    values = []
    for instance in body["instances"]:
        value = instance[input_name] if isinstance(instance, dict) and input_name in instance else instance
        values.append(base64.b64decode(value["b64"]) if isinstance(value, dict) and "b64" in value else value)
    outputs = signature(**{input_name: tf.constant(tf.make_ndarray(tf.make_tensor_proto(values, dtype=tf.string)))})
    (output_name, tensor), = outputs.items()
    encode_b64 = output_name.endswith("_bytes")  # TF Serving base64-encodes outputs named *_bytes
    predictions = [{"b64": base64.b64encode(v).decode()} if encode_b64 else v.tolist() for v in tensor.numpy()]
    return json.loads(json.dumps({"predictions": predictions}))


def test_rest_client_request_body_is_accepted_by_bytes_signature(loaded, photo, tmp_path):
    path = tmp_path / "photo.jpg"
    Image.fromarray(photo).save(path, quality=92)
    body = json.dumps(rest_client.request_body([rest_client.upright_bytes(str(path))]))
    assert json.loads(body)["signature_name"] == "stylize_bytes"
    (png,) = rest_client.stylized_pngs(tf_serving_rest_predict(loaded, body))
    assert np.asarray(Image.open(io.BytesIO(png))).shape == photo.shape


def test_rest_client_turns_exif_rotated_photos_upright(photo, tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    Image.fromarray(photo).save(path, exif=exif)
    assert Image.open(io.BytesIO(rest_client.upright_bytes(str(path)))).size == (48, 64)


@pytest.mark.parametrize("data", [b"this is not an image at all", b"", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_corrupt_bytes_give_a_clear_error(loaded, data):
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        loaded.signatures["stylize_bytes"](image_bytes=tf.constant([data]))
    message = str(info.value)
    # A known header with a broken body fails in the decoder (which names the format); anything else
    # fails the signature's own checks, which name the input.
    assert ("PNG" if data.startswith(b"\x89PNG") else "image_bytes:") in message


def test_failed_export_leaves_previous_version_intact(model, tmp_path, monkeypatch, photo):
    first = export.export_savedmodel(model, str(tmp_path), "mosaic")
    before = tf.saved_model.load(first).signatures["serving_default"](images=tf.constant(photo[None]))["stylized"].numpy()
    real_save = tf.saved_model.save

    def save_then_crash(obj, path, **kwargs):
        real_save(obj, path, **kwargs)  # a complete-looking SavedModel...
        raise OSError("disk full")  # ...and then the export dies

    monkeypatch.setattr(tf.saved_model, "save", save_then_crash)
    with pytest.raises(OSError, match="disk full"):
        export.export_savedmodel(model, str(tmp_path), "mosaic")
    with pytest.raises(OSError, match="disk full"):
        export.export_savedmodel(model, str(tmp_path), "mosaic", version=1, overwrite=True)
    assert sorted(os.listdir(tmp_path / "mosaic")) == ["1"]
    after = tf.saved_model.load(first).signatures["serving_default"](images=tf.constant(photo[None]))["stylized"].numpy()
    np.testing.assert_array_equal(before, after)


def test_versions_increase_and_existing_versions_are_not_replaced_silently(model, tmp_path):
    assert export.export_savedmodel(model, str(tmp_path), "mosaic").endswith(os.path.join("mosaic", "1"))
    assert export.export_savedmodel(model, str(tmp_path), "mosaic").endswith(os.path.join("mosaic", "2"))
    with pytest.raises(export.ExportError, match="already exists"):
        export.export_savedmodel(model, str(tmp_path), "mosaic", version=2)
    assert export.export_savedmodel(model, str(tmp_path), "mosaic", version=2, overwrite=True).endswith("2")
    assert sorted(os.listdir(tmp_path / "mosaic")) == ["1", "2"]


def test_savedmodel_carries_weights_to_rebuild_the_keras_net(model, exported, photo):
    rebuilt = models.weights_from_savedmodel(exported)
    np.testing.assert_allclose(rebuilt(photo[None].astype("float32")), model(photo[None].astype("float32")), atol=1e-3)


def run_export_cli(*args):
    return run_python(os.path.join(REPO, "export.py"), *args, timeout=600)


def test_export_cli_without_trained_weights_says_to_train_first(tmp_path):
    style = tmp_path / "my_painting.jpg"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(style)
    result = run_export_cli(f"--style={style}", f"--runs_dir={tmp_path}", f"--out={tmp_path / 'out'}")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no trained network for my_painting") and f"tfstyle train --style={style} " in last
    assert not (tmp_path / "out").exists()


def test_export_cli_points_to_the_checkpoints_of_a_stopped_run(tmp_path, model):
    checkpoint = tmp_path / "my_painting" / "checkpoints" / "transformer_step0000300.weights.h5"
    checkpoint.parent.mkdir(parents=True)
    model.save_weights(str(checkpoint))
    style = tmp_path / "my_painting.jpg"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(style)
    result = run_export_cli(f"--style={style}", f"--runs_dir={tmp_path}", f"--out={tmp_path / 'out'}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"--weights={checkpoint}" in result.stderr.strip().splitlines()[-1]


def test_export_cli_unknown_style_lists_the_valid_ones(tmp_path):
    result = run_export_cli("--style=monet", f"--runs_dir={tmp_path}", f"--out={tmp_path / 'out'}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: unknown style 'monet': trained styles here: candy, ") and "la_muse" in last


def test_export_cli_rejects_a_corrupt_weights_file(tmp_path):
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(b"not hdf5")
    result = run_export_cli(f"--weights={bad}", f"--out={tmp_path / 'out'}", "--tflite=")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {bad}: not transformer weights")


def test_export_style_writes_every_artifact_and_a_report(model, tmp_path):
    weights = str(tmp_path / "t.weights.h5")
    model.save_weights(weights)
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    for i, path in enumerate(list_images(TRAIN_DIR)[:2]):
        Image.fromarray(load_image(path)[:40, :56]).save(eval_dir / f"e{i}.png")
    report = export.export_style(
        "mosaic", weights, out_dir=str(tmp_path / "out"), tflite_modes=("int8",),
        calibration_dir=TRAIN_DIR, num_crops=8, crop_size=32, eval_dir=str(eval_dir), range_quantile=0.75,
    )
    saved = json.load(open(report["report_path"]))
    assert saved["savedmodel"]["bytes"] > 1_000_000 and saved["savedmodel"]["version"] == 1
    int8 = saved["tflite"]["int8"]
    assert int8["bytes"] == os.path.getsize(tmp_path / "out" / "mosaic_int8.tflite")
    assert int8["float_ops"] == [] and int8["io_types"] == ["uint8"] and int8["calibration"]["crops"] == 8
    assert int8["calibration"]["range_quantile"] == {"chosen": 0.75}
    rows = saved["eval"]["int8"]["per_image"]
    assert [r["image"] for r in rows] == ["e0.png", "e1.png"]
    assert all(np.isfinite(r["psnr"]) and 0 <= r["max_abs_error"] <= 255 for r in rows)


def test_export_chooses_the_range_quantile_on_photos_that_gave_no_crop(tmp_path):
    keras.utils.set_random_seed(4)
    weights = str(tmp_path / "slim.weights.h5")
    build_transformer(width=0.25, residual_blocks=1).save_weights(weights)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, path in enumerate(list_images(TRAIN_DIR)[:6]):
        Image.fromarray(load_image(path)[:48, :64]).save(photos / f"p{i}.png")
    report = export.export_style("mosaic", weights, out_dir=str(tmp_path / "out"), tflite_modes=("int8",),
                                 calibration_dir=str(photos), num_crops=4, crop_size=32)
    chosen = report["tflite"]["int8"]["calibration"]["range_quantile"]
    assert len(chosen["held_out_photos"]) == 2  # 6 photos, 4 of them cropped
    assert [p for p, _ in tflite.held_out_photos(str(photos), 4)] == [str(photos / n) for n in chosen["held_out_photos"]]
    scores = chosen["held_out_psnr"]
    assert sorted(float(q) for q in scores) == sorted(export.AUTO_RANGE_QUANTILES)
    assert chosen["chosen"] in export.AUTO_RANGE_QUANTILES
    assert chosen["chosen"] == export.pick_range_quantile({float(q): s for q, s in scores.items()})


def test_pick_range_quantile_trades_at_most_a_decibel_of_the_worst_photo_for_the_mean():
    scores = lambda *rows: {q: {"psnr_mean": m, "psnr_min": w} for q, m, w in rows}  # noqa: E731
    # mosaic's held-out photos: 0.6 costs 0.6 dB of the worst photo and gains 1.7 dB of the mean
    assert export.pick_range_quantile(scores((0.6, 34.45, 28.94), (0.75, 33.87, 29.15), (0.9, 32.78, 29.56))) == 0.6
    # candy_slim's: the narrower ranges cost 1.4 dB and more of the worst photo
    assert export.pick_range_quantile(scores((0.6, 36.44, 30.48), (0.75, 35.65, 29.6), (0.9, 34.72, 31.83))) == 0.9


@pytest.mark.parametrize("value", ["0.4", "high"])
def test_export_cli_rejects_a_bad_range_quantile(tmp_path, value):
    result = run_export_cli(f"--range_quantile={value}", f"--out={tmp_path / 'out'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --range_quantile: '{value}' is neither auto nor a number in (0.5, 1]")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_export_cli_without_photo_folders_calibrates_on_the_sample_photos_and_says_so(tmp_path):
    keras.utils.set_random_seed(5)
    weights = str(tmp_path / "tiny.weights.h5")
    build_transformer(width=0.25, residual_blocks=1).save_weights(weights)
    out = tmp_path / "out"
    # cwd: a folder with no ../shared beside it, as on a user's clone.
    result = run_python(os.path.join(REPO, "export.py"), "--style=tiny", f"--weights={weights}", f"--out={out}",
                        "--tflite=int8", "--calibration_crops=2", "--calibration_size=32", cwd=str(tmp_path), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sample photos" in result.stderr and "--calibration_dir" in result.stderr
    report = json.load(open(out / "tiny_export_report.json"))
    assert report["tflite"]["int8"]["calibration"]["dir"].endswith(os.path.join("tfstyle", "samples"))


def test_export_cli_missing_photo_folder_names_its_flag(tmp_path):
    result = run_export_cli("--style=mosaic", f"--calibration_dir={tmp_path}/nowhere", f"--out={tmp_path / 'out'}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (f"error: {tmp_path}/nowhere: no such directory "
                                                      "(--calibration_dir takes a folder of photos)")
