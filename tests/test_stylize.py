"""``tfstyle stylize``: sizes, EXIF, tiling without seams, colour preservation, folders, errors.

Weights are a freshly initialized transformer (not a trained style): these tests
check the command's behaviour, not artistic quality.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from conftest import EVAL_DIR, REPO, TRAIN_DIR
from images_zoo import make_zoo
from tfstyle import export, models, stylize, tflite, tiling
from tfstyle.export import psnr
from tfstyle.images import list_images, load_image
from tfstyle.transformer import build_transformer


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(4)
    return build_transformer()


@pytest.fixture(scope="module")
def weights(model, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("runs") / "mosaic" / "transformer.weights.h5")
    os.makedirs(os.path.dirname(path))
    model.save_weights(path)
    return path


@pytest.fixture(scope="module")
def stylizer(model):
    return stylize.KerasStylizer(model)


def eval_photo(h, w):
    return load_image(list_images(EVAL_DIR)[4])[:h, :w]


def test_tiled_output_matches_whole_image_output(stylizer):
    image = eval_photo(384, 510)  # 510: not a multiple of the net's stride
    whole = stylize.stylize_image(stylizer, image, tile_size=0)
    tiled = stylize.stylize_image(stylizer, image, tile_size=256, tile_overlap=128)
    assert len(tiling.tile_grid(384, 510, 256, 128)) == 6
    assert psnr(tiled, whole) >= 35  # measured about 70 dB


def test_tiles_without_shared_statistics_would_show(stylizer):
    """Why tiles share whole-photo statistics: normalizing per tile changes colours tile by tile."""
    image = eval_photo(384, 512)
    whole = stylize.stylize_image(stylizer, image, tile_size=0).astype(np.float32)
    grid = tiling.tile_grid(384, 512, 256, 128)
    per_tile = np.round(tiling.stylize_tiled(image, stylizer, grid))  # the stylizer itself normalizes per call
    shared = stylize.stylize_image(stylizer, image, tile_size=256, tile_overlap=128)
    assert psnr(per_tile, whole) + 10 < psnr(shared, whole)


def test_tile_grid_covers_the_image_on_the_stride_grid():
    for h, w in [(1000, 1501), (257, 256), (4000, 6000)]:
        grid = tiling.tile_grid(h, w, 1024, 128)
        owned = np.zeros((h, w), np.int32)
        weight = np.zeros((h, w), np.float32)
        for tile in grid:
            y0, y1, x0, x1 = tile["box"]
            assert y0 % 4 == 0 and x0 % 4 == 0 and y1 - y0 <= 1024 + 3 and x1 - x0 <= 1024 + 3
            oy0, oy1, ox0, ox1 = tile["owned"]
            owned[oy0:oy1, ox0:ox1] += 1
            wy, wx = tile["weight"]
            weight[y0:y1, x0:x1] += wy[:, None] * wx[None, :]
        assert (owned == 1).all()
        assert weight.min() > 0.5


@pytest.mark.parametrize("shape", [(33, 47), (64, 40)])
def test_output_has_the_input_size(stylizer, shape):
    image = eval_photo(*shape)
    out = stylize.stylize_image(stylizer, image)
    assert out.shape == image.shape and out.dtype == np.uint8


def test_preserve_color_keeps_chroma_and_takes_stylized_luminance(stylizer):
    # Mid-range pixels (40..214): no channel clips in YCbCr, on real and on synthetic photos alike.
    image = (40 + 0.68 * eval_photo(48, 64)).astype(np.uint8)
    stylized = stylize.stylize_image(stylizer, image)
    kept = stylize.stylize_image(stylizer, image, keep_color=True)
    ycc = lambda a: np.asarray(Image.fromarray(a).convert("YCbCr"), np.float32)  # noqa: E731
    inside = (stylized > 20).all(-1) & (stylized < 235).all(-1) & (image > 20).all(-1) & (image < 235).all(-1)
    assert inside.mean() > 0.2
    assert np.abs(ycc(kept)[..., 0] - ycc(stylized)[..., 0])[inside].mean() < 2
    assert np.abs(ycc(kept)[..., 1:] - ycc(image)[..., 1:])[inside].mean() < 2
    assert np.abs(ycc(stylized)[..., 1:] - ycc(image)[..., 1:])[inside].mean() > 5  # without it, colours change


def test_exif_orientation_max_size_and_folders(weights, tmp_path, capsys):
    photos = tmp_path / "photos"
    make_zoo(str(photos), list_images(TRAIN_DIR)[0])
    out = tmp_path / "out"
    failures = stylize.run([str(photos), str(out)], model=weights, max_size=200)
    assert failures == 4  # empty.jpg, garbage.jpg, truncated.jpg, one_pixel.png
    err = capsys.readouterr().err
    for bad in ("empty.jpg", "garbage.jpg", "truncated.jpg"):
        assert f"error: {photos / bad}: " in err
    assert f"error: {photos / 'one_pixel.png'}: 1x1 pixels is too small: the network needs at least 5 on each side" in err
    assert "14/14" in err and "img/s" in err  # the progress bar
    assert f"stylized 10 of 14 images into {out}" in err
    assert Image.open(out / "animated.gif").size == (32, 24)  # its first frame
    assert Image.open(out / "rotated.jpg").size == (20, 60)  # stored 60x20 with EXIF "rotate 90"
    assert max(Image.open(out / "photo.jpg").size) == 200  # 481x321 downscaled by --max_size
    assert Image.open(out / "tiny.png").size == (12, 8)
    assert (out / "nested" / "deeper.webp").is_file()


def test_style_name_finds_trained_weights_then_exports(model, weights, tmp_path):
    runs_dir = os.path.dirname(os.path.dirname(weights))
    found, source = stylize.load_stylizer("mosaic", runs_dir=runs_dir)
    assert source == weights
    saved = export.export_savedmodel(model, str(tmp_path / "sm"), "mosaic")
    found, source = stylize.load_stylizer("mosaic", runs_dir=str(tmp_path), saved_models=str(tmp_path / "sm"))
    assert source == saved
    style = tmp_path / "my_painting.jpg"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(style)
    found, source = stylize.load_stylizer(str(style), runs_dir=str(tmp_path), saved_models=str(tmp_path / "sm"))
    assert source == f"{style} (any-painting network)"  # a painting with no network: no training needed
    with pytest.raises(stylize.StylizeError, match="runs in float only"):
        stylize.load_stylizer(str(style), runs_dir=str(tmp_path), precision="int8")


def test_savedmodel_and_tflite_paths_work_as_models(model, tmp_path):
    image = eval_photo(40, 52)
    reference = np.clip(np.round(model(image[None].astype(np.float32))[0].numpy()), 0, 255)
    saved = export.export_savedmodel(model, str(tmp_path), "mosaic")
    from_saved, _ = stylize.load_stylizer(model=saved)
    assert np.abs(stylize.stylize_image(from_saved, image) - reference).max() <= 1
    path = str(tmp_path / "m.tflite")
    tflite.write_atomic(path, tflite.convert(model, "int8", tflite.representative_crops(TRAIN_DIR, 8, 32)))
    from_tflite, _ = stylize.load_stylizer(style=path)
    out = stylize.stylize_image(from_tflite, image)
    assert out.shape == image.shape and out.dtype == np.uint8


def run_cli(*args):
    command = [sys.executable, "-m", "tfstyle.cli", "stylize"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=REPO, env=env)


def test_cli_stylizes_one_photo_with_flags_after_the_paths(weights, tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(eval_photo(30, 44)).save(src)
    result = run_cli(str(src), str(tmp_path / "out.jpg"), f"--model={weights}")
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "out.jpg").size == (44, 30)
    assert result.stdout.strip() == f"wrote {tmp_path / 'out.jpg'}"


def test_cli_corrupt_file_is_a_one_line_error(weights, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    result = run_cli(f"--model={weights}", str(bad), str(tmp_path / "out.jpg"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {bad}: ")
    assert not (tmp_path / "out.jpg").exists()


def test_cli_image_smaller_than_the_network_accepts_is_a_one_line_error(weights, tmp_path):
    tiny = tmp_path / "one_pixel.png"
    Image.new("RGB", (1, 1), (10, 200, 30)).save(tiny)
    result = run_cli(f"--model={weights}", str(tiny), str(tmp_path / "out.png"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {tiny}: 1x1 pixels is too small: the network needs at least 5 on each side")
    assert not (tmp_path / "out.png").exists()
