"""The warp error of synthetic clips: ~0 for a clip that moves exactly, positive for flicker."""

import numpy as np
import pytest

from conftest import EVAL_DIR
from tfstyle import flicker
from tfstyle.images import list_images, load_image


@pytest.fixture(scope="module")
def photo():
    return flicker.landscape(load_image(list_images(EVAL_DIR)[0]))[:200, :300]


WINDOW = (160, 120)


@pytest.mark.parametrize("motion", flicker.MOTIONS)
def test_a_noiseless_clip_warps_onto_itself(photo, motion):
    clip, warps = flicker.synthetic_clip(photo, motion, frames=5, window=WINDOW, noise=0)
    assert clip.shape == (5, 120, 160, 3)
    error = flicker.warp_error(clip, warps)
    assert error < (0.01 if motion == "pan" else 0.6)  # pan: integer shifts; others: two spline resamplings
    wrong = [np.linalg.inv(m) for m in warps]  # the motion backwards
    assert error < 0.7 * flicker.warp_error(clip, wrong), flicker.warp_error(clip, wrong)


def test_pan_warp_error_is_the_shifted_difference(photo):
    clip, warps = flicker.synthetic_clip(photo, "pan", frames=6, window=WINDOW, noise=2)
    assert flicker.warp_error(clip, warps) == pytest.approx(flicker.pan_warp_error(clip), rel=1e-5)
    assert 1.5 < flicker.pan_warp_error(clip) < 3.5  # |difference| of two sigma-2 noises: 2 * 2 / sqrt(pi) = 2.26


def test_flicker_is_measured_relative_to_the_input(photo):
    rng = np.random.default_rng(0)

    def steady(clip):  # a per-pixel colour map commutes with any warp
        return 255 - clip

    def flickering(clip):  # each frame gets its own brightness and texture
        noise = rng.normal(0, 8, clip.shape) + rng.normal(0, 10, (len(clip), 1, 1, 1))
        return np.clip(clip + noise, 0, 255).astype(np.uint8)

    kwargs = dict(motions=("pan", "rotate"), frames=4, window=WINDOW)
    steady_rows = flicker.measure(steady, [("p", photo)], **kwargs)
    flicker_rows = flicker.measure(flickering, [("p", photo)], **kwargs)
    assert [r["motion"] for r in steady_rows] == ["pan", "rotate", "all"]
    for s, f in zip(steady_rows, flicker_rows):
        assert s["ratio"] == pytest.approx(1.0, abs=0.02)
        assert f["ratio"] > 2.5
    assert "| pan | 1 |" in flicker.format_table(steady_rows)


def test_a_window_larger_than_the_photo_is_refused(photo):
    with pytest.raises(ValueError, match="larger than the window"):
        flicker.synthetic_clip(photo[:100, :100], "pan", window=WINDOW)
