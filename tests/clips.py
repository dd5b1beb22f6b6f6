"""Tiny clips for the video tests, written and read with PyAV."""

import numpy as np
import pytest

av = pytest.importorskip("av")


def make_clip(path, frames=5, size=(64, 48), fps=10, audio=True, codec="libx264", rotation=0):
    """A clip of moving colour bars (and a 440 Hz tone when ``audio``) written with PyAV; ``rotation``:
    the display rotation a phone records (degrees counter-clockwise)."""
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=16000, layout="mono") if audio else None
        x = np.arange(width)[None, :, None]
        for i in range(frames):
            image = ((x * 4 + i * 16 + np.array([0, 85, 170])) % 256).astype(np.uint8).repeat(height, axis=0)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
        if sound is not None:
            samples = int(16000 * max(frames, 10) / fps)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 16000)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(tone[None], format="flt", layout="mono")
            frame.sample_rate, frame.pts = 16000, 0
            container.mux(sound.encode(frame))
            container.mux(sound.encode(None))
    return str(path)


def probe(path):
    """(frames decoded, (width, height), average fps, audio codec or None)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        return frames, (stream.codec_context.width, stream.codec_context.height), stream.average_rate, audio
