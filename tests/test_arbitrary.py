"""The any-painting network: the whitening-colouring transform, the decoders, the stylizer, its CLI and SavedModel."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import REPO, TRAIN_DIR, run_tfstyle
from tfstyle import arbitrary, decoders, feature_transforms, images

SAMPLE = os.path.join(REPO, "tfstyle", "samples", "kodim05.jpg")
PAINTING = os.path.join(REPO, "tfstyle", "styles", "candy.jpg")


def correlated(rng, shape, channels, shift):
    """Features with full-rank, non-diagonal covariance and a non-zero mean."""
    mixing = rng.normal(size=(channels, channels))
    return tf.constant(rng.normal(size=(*shape, channels)) @ mixing + shift, tf.float32)


def test_whiten_colour_gives_the_style_mean_and_covariance():
    rng = np.random.default_rng(0)
    content, style = correlated(rng, (20, 30), 8, 1.0), correlated(rng, (25, 25), 8, 5.0)
    out = feature_transforms.whiten_colour(content, style)
    assert out.shape == content.shape
    mean, cov = feature_transforms.mean_and_covariance(tf.reshape(out, [-1, 8]))
    style_mean, style_cov = feature_transforms.mean_and_covariance(tf.reshape(style, [-1, 8]))
    np.testing.assert_allclose(mean.numpy(), style_mean.numpy(), atol=1e-3)
    np.testing.assert_allclose(cov.numpy(), style_cov.numpy(), atol=1e-3 * np.abs(style_cov.numpy()).max())
    # The photo's own statistics are not the painting's: the transform did something.
    content_mean, _ = feature_transforms.mean_and_covariance(tf.reshape(content, [-1, 8]))
    assert np.abs(content_mean.numpy() - style_mean.numpy()).max() > 1.0


def test_whiten_colour_strength_zero_is_the_photo_and_half_is_between():
    rng = np.random.default_rng(1)
    content, style = correlated(rng, (10, 12), 4, 0.0), correlated(rng, (9, 9), 4, 3.0)
    np.testing.assert_array_equal(feature_transforms.whiten_colour(content, style, 0.0).numpy(), content.numpy())
    full = feature_transforms.whiten_colour(content, style, 1.0)
    half = feature_transforms.whiten_colour(content, style, 0.5)
    np.testing.assert_allclose(half.numpy(), 0.5 * (full.numpy() + content.numpy()), atol=1e-4)


def test_whiten_colour_ignores_dead_channels():
    """ReLU features have channels that are always zero: no NaN, and they stay at the painting's (zero) value."""
    rng = np.random.default_rng(2)
    content = np.maximum(correlated(rng, (16, 16), 6, 0.0).numpy(), 0.0)
    style = np.maximum(correlated(rng, (16, 16), 6, 0.5).numpy(), 0.0)
    content[..., 2] = 0.0
    style[..., 2] = 0.0
    out = feature_transforms.whiten_colour(tf.constant(content), tf.constant(style)).numpy()
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[..., 2], 0.0, atol=1e-3)


@pytest.mark.parametrize("level", decoders.LEVELS)
def test_decoder_gives_an_image_of_the_photo_size(level):
    encoder = decoders.build_encoder("random")
    photo = tf.random.uniform([1, 36, 52, 3], 0, 255)
    out = decoders.build_decoder(level)(encoder(photo)[str(level)])
    assert out.shape == (1, 36, 52, 3)


def test_decoders_round_trip_through_float16_files(tmp_path):
    nets = decoders.build_decoders()
    path = str(tmp_path / "d.npz")
    decoders.save_decoders(path, nets, {"steps": 0})
    loaded = decoders.load_decoders(path)
    features = tf.random.uniform([1, 8, 8, 256], 0, 300)
    np.testing.assert_allclose(loaded[3](features).numpy(), nets[3](features).numpy(), atol=0.5)
    assert os.path.isfile(str(tmp_path / "d.json"))


def test_bad_decoder_files_are_one_line_errors(tmp_path):
    with pytest.raises(decoders.DecoderError, match="no such decoder weights file"):
        decoders.load_decoders(str(tmp_path / "missing.npz"))
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(decoders.DecoderError, match="cannot read decoder weights"):
        decoders.load_decoders(str(corrupt))
    other = tmp_path / "other.npz"
    np.savez(other, something=np.zeros(3))
    with pytest.raises(decoders.DecoderError, match="not a tfstyle decoder file"):
        decoders.load_decoders(str(other))


@pytest.fixture(scope="module")
def random_stylizer():
    """A stylizer on the random encoder and untrained decoders: for shapes and plumbing, not for looks."""
    painting = images.resize_longer_side(images.load_image(PAINTING), 96)
    return arbitrary.ArbitraryStylizer(painting, decoders.build_encoder("random"), decoders.build_decoders(),
                                       coarse_size=48, style_size=64)


def test_stylizer_keeps_odd_photo_sizes(random_stylizer):
    photo = np.random.default_rng(3).integers(0, 255, (37, 53, 3)).astype(np.uint8)
    out = random_stylizer(photo)
    assert out.shape == photo.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 255


def test_fine_level_in_bands_equals_the_whole_image(random_stylizer, monkeypatch):
    """The relu1_1 level runs band by band with summed statistics: the same result as one piece."""
    photo = images.resize_longer_side(images.load_image(SAMPLE), 120).astype(np.float32)
    whole = arbitrary.stylize_whole(random_stylizer.encoders, random_stylizer.decoders, tf.constant(photo[None]),
                                    tf.constant(images.resize_longer_side(images.load_image(PAINTING), 96)[None],
                                                tf.float32), 1.0, 48, 64)[0].numpy()
    monkeypatch.setattr(arbitrary, "BAND_ROWS", 16)
    banded = random_stylizer(photo)
    np.testing.assert_allclose(banded, whole, atol=0.5)


def test_tiny_paintings_are_refused():
    with pytest.raises(arbitrary.ArbitraryStyleError, match="too small to be a style"):
        arbitrary.ArbitraryStylizer(np.zeros((1, 1, 3), np.uint8), decoders.build_encoder("random"),
                                    decoders.build_decoders(), name="dot.png")


# ----------------------------------------------------------------------------- the packaged decoders


@pytest.fixture(scope="module")
def packaged():
    """The shipped decoders with the packaged genuine VGG19 blocks 1-3."""
    return decoders.build_encoder("auto"), decoders.load_decoders()


@pytest.mark.parametrize("level, min_psnr", [(1, 21.5), (2, 22.5), (3, 18.0)])
def test_packaged_decoders_reconstruct_a_photo(packaged, level, min_psnr):
    """Each decoder inverts its encoder level on a photo no decoder trained on (measured 23.5, 24.8 and
    20.2 dB at 96 px; 28.6, 29.9 and 25.3 dB on average over the 18 eval photos at 384 px)."""
    encoder, nets = packaged
    photo = images.resize_longer_side(images.load_image(SAMPLE), 96).astype(np.float32)
    out = np.clip(nets[level](encoder(photo[None])[str(level)])[0].numpy(), 0, 255)
    mse = np.mean((out - photo) ** 2)
    assert 10 * np.log10(255.0**2 / mse) > min_psnr


def test_cli_any_painting_and_its_bad_paintings(tmp_path):
    """An image file with no trained network is a style at once; a 1x1 or corrupt painting is one line."""
    photo = tmp_path / "photo.png"
    Image.fromarray(images.resize_longer_side(images.load_image(SAMPLE), 80)).save(photo)
    result = run_tfstyle("stylize", f"--style={PAINTING}", f"--runs_dir={tmp_path}", "--strength=0.7",
                         str(photo), str(tmp_path / "out.png"), cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == np.asarray(Image.open(photo)).shape
    assert np.abs(out.astype(float) - np.asarray(Image.open(photo)).astype(float)).mean() > 5  # a style, not a copy
    dot = tmp_path / "dot.png"
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(dot)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    for painting, problem in ((dot, "too small to be a style"), (corrupt, "corrupt or truncated")):
        result = run_tfstyle("stylize", f"--style={painting}", f"--runs_dir={tmp_path}", str(photo),
                             str(tmp_path / "bad.png"), cwd=str(tmp_path))
        assert result.returncode == 1 and "Traceback" not in result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: {painting}") and problem in last, last
        assert not (tmp_path / "bad.png").exists()


@pytest.mark.slow
def test_savedmodel_signature_and_served_painting(tmp_path):
    """`tfstyle export --any_painting`: the signature stylizes with a painting sent beside the photo, in-process
    and through `tfstyle serve` (the page's path: stylize_bytes); a too-small painting is a 400."""
    from serve_support import b64, decode_png, encode, request, running_server

    from tfstyle import any_painting_tflite

    result = run_tfstyle("export", "--any_painting", f"--out={tmp_path / 'sm'}", cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    path = str(tmp_path / "sm" / arbitrary.SERVING_NAME / "1")
    photo = images.resize_longer_side(images.load_image(SAMPLE), 64)
    painting = images.resize_longer_side(images.load_image(PAINTING), 64)
    signature = tf.saved_model.load(path).signatures[arbitrary.SIGNATURE]
    out = signature(images=tf.constant(photo[None]), style_images=tf.constant(painting[None]), strength=tf.constant(1.0))
    assert out["stylized"].shape == (1, *photo.shape) and out["stylized"].dtype == tf.uint8
    # The TFLite part plus numpy's transform, as an app runs them: the SavedModel's picture within 2 levels.
    lite = any_painting_tflite.LiteRTAnyPainting(str(tmp_path / "sm" / any_painting_tflite.FILE_NAME), painting)
    difference = np.abs(lite(photo) - out["stylized"][0].numpy().astype(np.float32))
    assert difference.mean() < 1.0 and np.percentile(difference, 99) < 2.5
    with pytest.raises(tf.errors.InvalidArgumentError):
        signature(images=tf.constant(photo[None]), style_images=tf.constant(painting[None, :8, :8]),
                  strength=tf.constant(1.0))
    with running_server(str(tmp_path / "sm"), str(tmp_path / "serve.log")) as port:
        body = {"signature_name": "stylize_bytes", "inputs": {"image_bytes": [b64(encode(photo))],
                                                              "style_image_bytes": [b64(encode(painting))],
                                                              "strength": 1.0}}
        status, reply = request(port, "POST", f"/v1/models/{arbitrary.SERVING_NAME}:predict", body,
                                {"Content-Type": "application/json"})
        assert status == 200, reply
        outputs = reply["outputs"] if isinstance(reply["outputs"], list) else list(reply["outputs"].values())[0]
        assert decode_png(outputs[0]).shape == photo.shape
        body["inputs"]["style_image_bytes"] = [b64(encode(painting[:8, :8]))]
        status, reply = request(port, "POST", f"/v1/models/{arbitrary.SERVING_NAME}:predict", body,
                                {"Content-Type": "application/json"})
        assert status == 400 and "16 px" in reply["error"], reply


@pytest.mark.slow
def test_train_decoders_writes_float16_decoders_and_their_card(tmp_path):
    out = tmp_path / "d.npz"
    result = run_tfstyle("train-decoders", f"--data_dir={TRAIN_DIR}", "--vgg_weights=random", "--steps=3",
                         "--image_size=32", "--batch_size=2", "--checkpoint_every=2", "--log_every=1", f"--out={out}",
                         cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "step 3/3" in result.stderr and "level3" in result.stderr
    with np.load(out) as arrays:
        assert {a.dtype for a in arrays.values()} == {np.dtype(np.float16)}
    card = json.loads((tmp_path / "d.json").read_text())
    assert card["steps"] == 3 and set(card["losses"]) == {"level1", "level2", "level3"}
    assert all(np.isfinite(v) for v in card["losses"].values())
    decoders.load_decoders(str(out))  # loads back into the decoders


def test_train_decoders_needs_photos():
    result = run_tfstyle("train-decoders")
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith("error: --data_dir is required")
