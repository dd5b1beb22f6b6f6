"""``POST /tfstyle/video/NAME``: a short clip comes back stylized as .mp4; bad clips get 4xx, the server lives."""

import pytest

from clips import av, make_clip
from serve_support import mosaic_and_blend_server, request
from tfstyle import serve_video

pytestmark = pytest.mark.slow  # a server in a subprocess


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    with mosaic_and_blend_server(tmp_path_factory, "--max_body_mb=1") as p:
        yield p


def post_clip(port, data, path="/tfstyle/video/mosaic"):
    return request(port, "POST", path, data, {"Content-Type": "video/mp4"})


def test_a_clip_comes_back_stylized_with_its_sound(port, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=5, size=(64, 48), fps=10)
    status, data = post_clip(port, open(clip, "rb").read())
    assert status == 200, data
    (tmp_path / "out.mp4").write_bytes(data)
    with av.open(str(tmp_path / "out.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert container.streams.audio[0].codec_context.name == "aac"
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)


def test_bad_clips_get_4xx_and_the_server_lives(port, tmp_path):
    status, body = post_clip(port, b"not a clip at all" * 10)
    assert status == 400 and "not a readable video" in body["error"] and str(tmp_path) not in body["error"]
    long_clip = make_clip(tmp_path / "long.mp4", frames=int(serve_video.MAX_SECONDS * 2) + 4, fps=2, audio=False)
    status, body = post_clip(port, open(long_clip, "rb").read())
    assert status == 413 and "longer than" in body["error"]
    assert post_clip(port, b"x" * ((1 << 20) + 1))[0] == 413
    assert post_clip(port, b"x", "/tfstyle/video/nope")[0] == 404
    assert post_clip(port, b"x", "/tfstyle/video/mosaic?max_side=abc")[0] == 400
    status, body = post_clip(port, b"x", "/tfstyle/video/blend")
    assert status == 400 and "serving_default" in body["error"]
    clip = make_clip(tmp_path / "ok.mp4", frames=2, audio=False)
    assert post_clip(port, open(clip, "rb").read())[0] == 200
