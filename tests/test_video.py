"""Clips through ``tfstyle stylize``: frame count, size, frame rate and sound kept; bad input gets one
line and leaves no file under the output's name. Tiny generated clips (64x48, a few frames) and a
freshly initialized network: these tests check the plumbing, not the style."""

import fractions
import json
import os

import keras
import numpy as np
import pytest

from clips import av, make_clip, probe
from conftest import REPO, run_tfstyle
from tfstyle import stylize, video
from tfstyle.images import load_image
from tfstyle.transformer import build_transformer


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    keras.utils.set_random_seed(3)
    path = str(tmp_path_factory.mktemp("net") / "net.weights.h5")
    build_transformer().save_weights(path)
    return path


@pytest.fixture(scope="module")
def stylizer():
    keras.utils.set_random_seed(3)
    return stylize.KerasStylizer(build_transformer())


def leftovers(directory):
    return [name for name in os.listdir(directory) if name.startswith(".")]


@pytest.mark.slow
def test_cli_round_trip_keeps_frames_size_fps_and_sound(tmp_path, weights):
    clip = make_clip(tmp_path / "in.mp4", frames=5, fps=10)
    out = tmp_path / "out.mp4"
    result = run_tfstyle("stylize", f"--model={weights}", clip, str(out), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["frames"] == 5 and (summary["width"], summary["height"]) == (64, 48)
    assert summary["audio"] == "copied"
    assert probe(out) == (5, (64, 48), fractions.Fraction(10), "aac")
    assert leftovers(tmp_path) == []


def test_frames_are_stylized_in_order_with_their_timestamps(tmp_path, stylizer):
    clip = make_clip(tmp_path / "in.mkv", frames=4, fps=8, audio=False)
    out = tmp_path / "out.mkv"
    summary = video.run([clip, str(out)], stylizer, max_pixels=video.MAX_PIXELS)
    assert (summary["frames"], summary["audio"]) == (4, "none")
    with av.open(clip) as a, av.open(str(out)) as b:
        sources = [f.to_ndarray(format="rgb24") for f in a.decode(video=0)]
        times = [f.time for f in b.decode(video=0)]
    assert times == pytest.approx([i / 8 for i in range(4)])
    expected = [stylize.stylize_image(stylizer, image, tile_size=0).astype(np.float32) for image in sources]
    with av.open(str(out)) as b:
        got = [f.to_ndarray(format="rgb24").astype(np.float32) for f in b.decode(video=0)]
    errors = np.array([[np.abs(g - e).mean() for e in expected] for g in got])
    assert (errors.argmin(axis=1) == np.arange(4)).all(), errors  # each frame is its own source's, in order
    assert errors.diagonal().max() < 0.6 * errors.min(axis=0).mean() + 20, errors  # H.264 4:2:0 on noise-like frames


def test_webm_gets_the_sound_re_encoded_and_max_size_scales(tmp_path, stylizer):
    clip = make_clip(tmp_path / "in.mp4", frames=3, size=(128, 96))
    summary = video.run([clip, str(tmp_path / "out.webm")], stylizer, max_size=64)
    assert summary["audio"].startswith("re-encoded (libopus")
    frames, size, _, audio = probe(tmp_path / "out.webm")
    assert (frames, size, audio) == (3, (64, 48), "opus")


def test_gif_and_folders_of_frames(tmp_path, stylizer):
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=False)
    video.run([clip, str(tmp_path / "out.gif")], stylizer)
    assert video.is_video_job([str(tmp_path / "out.gif"), str(tmp_path / "again.gif")])
    assert probe(tmp_path / "out.gif")[:2] == (3, (64, 48))
    video.run([clip, str(tmp_path / "frames")], stylizer)
    assert sorted(os.listdir(tmp_path / "frames")) == [f"frame_{i:06d}.png" for i in (1, 2, 3)]
    summary = video.run([str(tmp_path / "frames"), str(tmp_path / "back.mp4")], stylizer, fps=12)
    assert probe(tmp_path / "back.mp4")[:3] == (3, (64, 48), fractions.Fraction(12))
    assert summary["fps"] == 12


def test_a_phone_clip_keeps_its_display_rotation(tmp_path, stylizer):
    clip = make_clip(tmp_path / "phone.mp4", frames=2, rotation=90)
    video.run([clip, str(tmp_path / "out.mp4")], stylizer)
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert [f.rotation for f in container.decode(video=0)] == [90, 90]
    video.run([clip, str(tmp_path / "frames")], stylizer)
    assert load_image(str(tmp_path / "frames" / "frame_000001.png")).shape == (64, 48, 3)  # turned upright


def test_is_video_job():
    assert video.is_video_job(["a.mp4", "b.mp4"]) and video.is_video_job(["frames", "b.webm"])
    assert not video.is_video_job(["a.jpg", "b.jpg"]) and not video.is_video_job(["a.mp4", "b.mp4", "c"])


def test_bad_clips_get_one_line(tmp_path, stylizer):
    def error(src, dst=None, **kw):
        with pytest.raises(video.VideoError) as info:
            video.run([str(src), str(dst or tmp_path / "out.mp4")], stylizer, **kw)
        assert "\n" not in str(info.value)
        assert not os.path.exists(dst or tmp_path / "out.mp4") and leftovers(tmp_path) == []
        return str(info.value)

    (tmp_path / "text.mp4").write_text("not a video at all\n" * 50)
    assert "not a readable video" in error(tmp_path / "text.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert "empty file" in error(tmp_path / "empty.mp4")
    whole = open(make_clip(tmp_path / "whole.mp4", frames=5), "rb").read()
    (tmp_path / "cut.mp4").write_bytes(whole[: len(whole) // 2])
    assert "not a readable video" in error(tmp_path / "cut.mp4")
    os.remove(tmp_path / "whole.mp4")
    make_clip(tmp_path / "zero.mkv", frames=0)  # a video stream without frames (and one second of sound)
    assert "no video frames" in error(tmp_path / "zero.mkv")
    clip = make_clip(tmp_path / "small.mp4", frames=2, audio=False)
    assert "too large" in error(clip, max_pixels=64 * 47)
    assert "no such file" in error(tmp_path / "missing.mp4")
    (tmp_path / "file").write_text("x")
    assert "cannot write" in error(clip, tmp_path / "file" / "out.mp4")


def test_an_error_mid_clip_leaves_no_output(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=6)
    out = tmp_path / "out.mp4"
    out_folder = tmp_path / "frames"
    seen = []

    def failing(image):
        seen.append(1)
        if len(seen) in (3, 9):
            raise KeyboardInterrupt
        return image

    for target in (out, out_folder):
        with pytest.raises(KeyboardInterrupt):
            video.transform_clip(failing, clip, str(target), progress=False, queue_frames=1)
        assert not os.path.exists(target) and leftovers(tmp_path) == []


def test_a_decode_error_mid_clip_leaves_no_output(tmp_path, monkeypatch):
    clip = make_clip(tmp_path / "in.mp4", frames=6, audio=False)

    def broken_items(self):
        yield video.Frame(np.zeros((48, 64, 3), np.uint8), 0.0)
        raise video.VideoError(f"{self.path}: corrupt or truncated video after 1 frames (test)")

    monkeypatch.setattr(video.VideoSource, "items", broken_items)
    with pytest.raises(video.VideoError, match="truncated"):
        video.transform_clip(lambda image: image, clip, str(tmp_path / "out.mp4"), progress=False)
    assert not os.path.exists(tmp_path / "out.mp4") and leftovers(tmp_path) == []


@pytest.mark.slow
def test_cli_errors_are_one_line(tmp_path, weights):
    (tmp_path / "text.mp4").write_text("hello")
    result = run_tfstyle("stylize", f"--model={weights}", str(tmp_path / "text.mp4"), str(tmp_path / "out.mp4"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in result.stderr
    assert "not a readable video" in result.stderr and not os.path.exists(tmp_path / "out.mp4")


def test_shipped_slim_int8_network_runs_on_a_clip(tmp_path):
    path = os.path.join(REPO, "saved_models", "mosaic_slim_int8.tflite")
    if not os.path.isfile(path):
        pytest.skip(f"{path} is not in this checkout")
    stylizer, _ = stylize.prepare_stylizer(model=path)
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    summary = video.run([clip, str(tmp_path / "out.mp4")], stylizer)
    assert (summary["frames"], summary["audio"]) == (3, "copied")


def test_a_full_disk_mid_clip_gets_one_line_and_leaves_no_output(tmp_path, monkeypatch):
    clip = make_clip(tmp_path / "in.mp4", frames=6)
    write = video.VideoSink.write

    def failing_write(self, image, seconds, rotation=0):
        if self.last_pts is not None and self.last_pts >= 2:
            raise OSError(28, "No space left on device")
        write(self, image, seconds, rotation)

    monkeypatch.setattr(video.VideoSink, "write", failing_write)
    with pytest.raises(video.VideoError, match="out.mp4: cannot write \\(No space left on device\\)"):
        video.transform_clip(lambda image: image, clip, str(tmp_path / "out.mp4"), progress=False)
    assert not os.path.exists(tmp_path / "out.mp4") and leftovers(tmp_path) == []
