"""``tfstyle stylize``: which runtime runs a style (--precision), the input-overwrite refusal, and the
answer for a .tflite file on a photo that needs tiles. A tiny random network: behaviour, not quality."""

import os

import keras
import numpy as np
import pytest
from absl import logging
from PIL import Image

from conftest import EVAL_DIR
from tfstyle import export, stylize, tiling
from tfstyle.images import list_images, load_image
from tfstyle.transformer import build_transformer


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """<saved_models>/tiny/1 with its model.tflite (float16 weights), and the network."""
    keras.utils.set_random_seed(7)
    net = build_transformer(width=0.25, residual_blocks=1)
    base = str(tmp_path_factory.mktemp("saved_models"))
    return base, export.export_savedmodel(net, base, "tiny", with_tflite=True), net


def photo(h=64, w=96):
    return load_image(list_images(EVAL_DIR)[1])[:h, :w]


def test_default_runs_litert_on_the_exports_float16_file_and_keeps_the_float_picture(exported, tmp_path):
    base, version, net = exported
    fast, source = stylize.load_stylizer("tiny", runs_dir=str(tmp_path), saved_models=base)
    assert isinstance(fast, stylize.TFLiteTileStylizer) and source.startswith(os.path.join(version, "model.tflite"))
    exact, source = stylize.load_stylizer("tiny", runs_dir=str(tmp_path), saved_models=base, precision="float")
    assert isinstance(exact, stylize.KerasStylizer) and source == version
    image = photo()
    a, b = stylize.stylize_image(fast, image), stylize.stylize_image(exact, image)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2  # float16 weights: within a level or two


def test_int8_without_its_file_says_how_to_write_it(exported, tmp_path):
    base, version, _ = exported
    with pytest.raises(stylize.StylizeError, match="no int8 TFLite file beside .*tfstyle export --style=tiny"):
        stylize.load_stylizer("tiny", runs_dir=str(tmp_path), saved_models=base, precision="int8")


def test_a_photo_that_needs_tiles_goes_to_the_float_network_with_shared_statistics(exported, tmp_path):
    base, _, net = exported
    fast, _ = stylize.load_stylizer("tiny", runs_dir=str(tmp_path), saved_models=base)
    image = photo(128, 192)
    tiled = stylize.stylize_image(fast, image, tile_size=96, tile_overlap=32)
    whole = stylize.stylize_image(stylize.KerasStylizer(net), image, tile_size=0)
    assert export.psnr(tiled, whole) > 35  # shared statistics: no patchwork


def test_a_tflite_file_alone_refuses_to_tile_in_one_line(exported, tmp_path):
    _, version, _ = exported
    src = tmp_path / "big.png"
    Image.fromarray(photo(128, 192)).save(src)
    failures = stylize.run([str(src), str(tmp_path / "out.png")], model=os.path.join(version, "model.tflite"),
                           tile_size=96, tile_overlap=32)
    assert failures == 1 and not (tmp_path / "out.png").exists()
    with pytest.raises(tiling.TilingError, match="192x128 .* a .tflite file cannot share normalization statistics"):
        stylize.stylize_image(stylize.load_stylizer(model=os.path.join(version, "model.tflite"))[0],
                              photo(128, 192), tile_size=96, tile_overlap=32)


def test_refuses_to_overwrite_the_input_photo_unless_asked(tmp_path):
    src = tmp_path / "photo.jpg"
    Image.fromarray(photo()).save(src)
    with pytest.raises(stylize.StylizeError, match="is the input photo; refusing to overwrite it .*--overwrite"):
        stylize.plan_jobs([str(src), str(src)])
    os.symlink(src, tmp_path / "link.jpg")
    with pytest.raises(stylize.StylizeError, match="refusing to overwrite"):
        stylize.plan_jobs([str(src), str(tmp_path / "link.jpg")])
    assert stylize.plan_jobs([str(src), str(src)], overwrite=True) == [(str(src), str(src))]


def test_log_lines_go_above_the_progress_bar():
    written = []

    class Bar:
        def write(self, text, file=None):
            written.append(text)

    logging.use_absl_handler()  # as under `tfstyle` (absl's app.run installs it)
    with stylize.logs_above(Bar()):
        logging.warning("a line from inside the loop")
    assert any("a line from inside the loop" in line for line in written)


def test_litert_keeps_an_interpreter_per_photo_size(exported):
    from tfstyle import litert

    _, version, _ = exported
    runner = litert.TFLiteStylizer(model_path=os.path.join(version, "model.tflite"), sizes_kept=2)
    first = runner(photo(48, 64))
    small = runner.interp
    runner(photo(64, 48))
    again = runner(photo(48, 64))
    assert runner.interp is small and np.array_equal(first, again)  # reused, not rebuilt
    runner(photo(32, 32))
    assert len(runner._by_size) == 2 and (64, 48) not in runner._by_size  # the least recent size left
