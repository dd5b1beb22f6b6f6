"""Stylizing videos: decode, stylize and encode overlapped in three threads, frames streamed.

    tfstyle stylize --style=mosaic clip.mp4 out.mp4
    tfstyle stylize --model=saved_models/mosaic_slim_int8.tflite clip.mov out.webm
    tfstyle stylize --style=candy clip.mp4 frames/          (a folder of PNG frames)
    tfstyle stylize --style=candy --fps=24 frames/ out.mp4  (a folder of frames in)

PyAV (``pip install tfstyle[video]``; it brings its own FFmpeg) reads .mp4, .mov, .mkv,
.webm, .avi and animated .gif, and writes the same (H.264 in .mp4/.mov/.mkv/.avi, VP9 in
.webm, a per-frame palette in .gif). A reader thread decodes and converts frames to RGB
(scaled by ``max_size``), the calling thread runs the network, a writer thread converts and
encodes; bounded queues between them keep memory independent of the clip's length.

Each output frame keeps its source timestamp (so the frame rate, variable or not, and the
sync with the sound are kept); the sound is copied packet by packet, or re-encoded when the
output container cannot hold its codec (AAC for .mp4/.mov/.mkv/.avi, Opus for .webm; a .gif
has none). Frames above ``MAX_PIXELS`` are refused unless ``max_size`` scales them down.
The output is written under a temporary name beside it and renamed at the end, so an error
or Ctrl-C leaves nothing under the output's name. The network is built once; a .tflite
interpreter is resized once, at the first frame (``tfstyle.litert.TFLiteStylizer``).
"""

import contextlib
import fractions
import os
import queue
import shutil
import sys
import tempfile
import threading
import time

import numpy as np
from absl import logging

from tfstyle.images import IMAGE_EXTENSIONS, ImageError, list_images, load_image, save_image

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
MAX_PIXELS = 3840 * 2160  # 4K UHD; an 8K frame takes ~100 MB as float32 and minutes per frame
QUEUE_FRAMES = 8  # frames waiting between two threads, at most
DEFAULT_FPS = 25
_END = object()


class VideoError(ValueError):
    """A clip that cannot be read or written; the message is '<path>: <problem>'."""


def _av():
    try:
        import av
    except ImportError:
        raise VideoError("video needs PyAV: pip install 'tfstyle[video]' (or pip install av)") from None
    return av


def extension(path):
    return os.path.splitext(path.rstrip(os.sep))[1].lower()


def is_animated_gif(path):
    if extension(path) != ".gif" or not os.path.isfile(path):
        return False
    try:
        from PIL import Image

        with Image.open(path) as img:
            return getattr(img, "n_frames", 1) > 1
    except (OSError, ValueError):
        return False


def is_video_job(args):
    """Whether ``tfstyle stylize`` arguments ``IN OUT`` describe a clip: a video file on either side,
    an animated GIF going to a .gif or a video, a video going to a folder, or a folder going to a video."""
    if len(args) != 2:
        return False
    src, dst = args
    if extension(src) in VIDEO_EXTENSIONS or extension(dst) in VIDEO_EXTENSIONS:
        return True
    return is_animated_gif(src) and extension(dst) == ".gif"


# ----------------------------------------------------------------------------- reading


class Frame:
    """One decoded frame: uint8 RGB ``image`` [H, W, 3], its presentation ``time`` in seconds and the
    ``rotation`` (degrees counter-clockwise) a player applies to show it upright (phone clips)."""

    __slots__ = ("image", "time", "rotation")

    def __init__(self, image, time, rotation=0):
        self.image, self.time, self.rotation = image, time, rotation


def scaled_size(width, height, max_size, path, max_pixels=MAX_PIXELS):
    """The frame size after ``max_size`` (longer side; 0 keeps it), even on both sides for YUV 4:2:0
    encoders; a ``VideoError`` above ``max_pixels`` without ``max_size``."""
    if max_size and max(width, height) > max_size:
        scale = max_size / max(width, height)
        width, height = max(2, round(width * scale)), max(2, round(height * scale))
    elif width * height > max_pixels:
        raise VideoError(f"{path}: {width}x{height} frames are too large (above {max_pixels // 1_000_000} megapixels); "
                         "pass --max_size, e.g. --max_size=1920")
    return width - width % 2, height - height % 2


class VideoSource:
    """A clip opened with PyAV: ``fps`` (a Fraction), ``width`` x ``height`` of the frames it yields,
    ``frames`` (the container's count, 0 when unknown), ``audio`` (the first audio stream or None);
    ``items()`` yields ``Frame``s and, in demuxing order, the audio stream's packets."""

    def __init__(self, path, max_size=0, max_pixels=MAX_PIXELS):
        av = _av()
        self.path = path
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            raise VideoError(f"{path}: empty file")
        try:
            self.container = av.open(path)
        except (av.error.FFmpegError, UnicodeDecodeError) as e:
            raise VideoError(f"{path}: not a readable video ({_reason(e)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise VideoError(f"{path}: no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        ctx = self.stream.codec_context
        if not ctx.width or not ctx.height:
            self.container.close()
            raise VideoError(f"{path}: the video stream has no frame size (zero frames or a broken header)")
        self.source_size = (ctx.width, ctx.height)
        try:
            self.width, self.height = scaled_size(ctx.width, ctx.height, max_size, path, max_pixels)
        except VideoError:
            self.container.close()
            raise
        self.fps = self.stream.average_rate or self.stream.guessed_rate or fractions.Fraction(DEFAULT_FPS)
        self.frames = self.stream.frames or self._estimated_frames()
        self.time_base = self.stream.time_base or 1 / fractions.Fraction(self.fps)
        self.audio = self.container.streams.audio[0] if self.container.streams.audio else None

    def _estimated_frames(self):
        """From the duration when the container does not count frames (.mkv, .webm); 0 when unknown."""
        if self.stream.duration and self.stream.time_base:
            return round(self.stream.duration * self.stream.time_base * self.fps)
        if self.container.duration:
            return round(self.container.duration / 1_000_000 * self.fps)
        return 0

    def items(self):
        av = _av()
        streams = [self.stream] + ([self.audio] if self.audio is not None else [])
        count = 0
        try:
            for packet in self.container.demux(streams):
                if packet.stream.type == "audio":
                    if packet.dts is not None:
                        yield packet
                    continue
                for frame in packet.decode():
                    image = frame.to_ndarray(format="rgb24", width=self.width, height=self.height,
                                             interpolation="BICUBIC")
                    seconds = frame.time if frame.time is not None else count / self.fps
                    count += 1
                    yield Frame(image, float(seconds), frame.rotation or 0)
        except av.error.FFmpegError as e:
            raise VideoError(f"{self.path}: corrupt or truncated video after {count} frames ({_reason(e)})") from None

    def close(self):
        self.container.close()


class FolderSource:
    """A folder of frames (images, sorted by name) at ``fps``; all frames must have one size."""

    audio = None

    def __init__(self, path, fps=DEFAULT_FPS, max_size=0, max_pixels=MAX_PIXELS):
        self.path = path
        self.paths = list_images(path)
        if not self.paths:
            raise VideoError(f"{path}: no frames (no images in the folder)")
        first = load_image(self.paths[0])
        self.source_size = (first.shape[1], first.shape[0])
        self.width, self.height = scaled_size(*self.source_size, max_size, path, max_pixels)
        self.fps = fractions.Fraction(fps).limit_denominator(1001)
        self.frames = len(self.paths)
        self.time_base = 1 / self.fps

    def items(self):
        for i, p in enumerate(self.paths):
            image = load_image(p)
            if (image.shape[1], image.shape[0]) != self.source_size:
                raise VideoError(f"{p}: {image.shape[1]}x{image.shape[0]} differs from the first frame's "
                                 f"{self.source_size[0]}x{self.source_size[1]}")
            if image.shape[:2] != (self.height, self.width):
                image = np.asarray(_resize(image, self.width, self.height))
            yield Frame(image, i / float(self.fps))

    def close(self):
        pass


def _resize(image, width, height):
    from PIL import Image

    return Image.fromarray(image).resize((width, height), Image.BICUBIC)


def _reason(error):
    """FFmpeg's message without the errno prefix and file name PyAV adds."""
    text = getattr(error, "strerror", None) or str(error)
    return str(text).split(";")[0].strip().rstrip(":") or type(error).__name__


# ----------------------------------------------------------------------------- writing


# extension -> (video codec, its options, audio codec when the source's cannot be copied)
CODECS = {
    ".mp4": ("libx264", {"preset": "veryfast", "crf": "18"}, "aac"),
    ".m4v": ("libx264", {"preset": "veryfast", "crf": "18"}, "aac"),
    ".mov": ("libx264", {"preset": "veryfast", "crf": "18"}, "aac"),
    ".mkv": ("libx264", {"preset": "veryfast", "crf": "18"}, "aac"),
    ".avi": ("libx264", {"preset": "veryfast", "crf": "18"}, "aac"),
    ".webm": ("libvpx-vp9", {"deadline": "realtime", "cpu-used": "8", "row-mt": "1", "crf": "30", "b": "0"},
              "libopus"),
    ".gif": ("gif", {}, None),
}


class VideoSink:
    """Encodes frames into ``path`` (format from the extension) through a temporary file beside it;
    ``finish()`` renames it into place, ``abort()`` removes it."""

    def __init__(self, path, width, height, fps, time_base, audio=None):
        av = _av()
        self.path = path
        codec, options, self.audio_codec = CODECS.get(extension(path), CODECS[".mp4"])
        directory = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(directory, exist_ok=True)
            fd, self.temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=extension(path) or ".mp4",
                                             dir=directory)
            os.close(fd)
        except OSError as e:
            raise VideoError(f"{path}: cannot write ({e.strerror or e})") from None
        try:
            self.container = av.open(self.temp, "w", format=_format_name(path))
            self.video = self.container.add_stream(codec, rate=fps, options=options)
            self.video.width, self.video.height = width, height
            self.video.time_base = self.video.codec_context.time_base = time_base
            self.palette = codec == "gif"
            self.video.pix_fmt = "pal8" if self.palette else "yuv420p"
            self.audio_in, self.audio, self.audio_mode = audio, None, "none"
            if audio is not None:
                self._add_audio(audio)
        except Exception:
            self.abort()
            raise
        self.last_pts, self.pending_audio = None, []

    def _add_audio(self, audio):
        if self.audio_codec is None:
            logging.warning("%s: a .gif has no sound; the clip's audio is dropped", self.path)
            return
        try:
            self.audio = self.container.add_stream_from_template(audio)
            self.audio_mode = "copied"
        except ValueError:
            rate = 48000 if self.audio_codec == "libopus" else audio.codec_context.sample_rate
            self.audio = self.container.add_stream(self.audio_codec, rate=rate, layout=audio.codec_context.layout.name)
            self.audio_mode = f"re-encoded ({self.audio_codec}: {audio.codec_context.name} cannot go into "\
                              f"{extension(self.path)})"
            logging.info("%s: audio %s", self.path, self.audio_mode)

    def write(self, image, seconds, rotation=0):
        av = _av()
        if self.last_pts is None and rotation:
            self.video.set_display_rotation(rotation)  # before the header: players turn it upright, as the source
        pts = int(round(seconds / self.video.codec_context.time_base))
        if self.last_pts is not None and pts <= self.last_pts:
            pts = self.last_pts + 1
        self.last_pts = pts
        if self.palette:
            frame = _palette_frame(av, image)
        else:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = pts
        frame.time_base = self.video.codec_context.time_base
        self.container.mux(self.video.encode(frame))
        for packet in self.pending_audio:
            self.write_audio(packet)
        self.pending_audio = []

    def write_audio(self, packet):
        if self.audio is None:
            return
        if self.last_pts is None:  # the header waits for the first frame's rotation
            self.pending_audio.append(packet)
            return
        if self.audio_mode == "copied":
            packet.stream = self.audio
            self.container.mux(packet)
        else:
            for frame in packet.decode():
                frame.pts = None  # the resampler inside the encoder counts samples from 0
                self.container.mux(self.audio.encode(frame))

    def finish(self):
        """Flushes the encoders and moves the file to its name."""
        self.container.mux(self.video.encode(None))
        if self.audio is not None and self.audio_mode != "copied":
            self.container.mux(self.audio.encode(None))
        self.container.close()
        os.replace(self.temp, self.path)

    def abort(self):
        try:
            if getattr(self, "container", None) is not None:
                self.container.close()
        except Exception:  # noqa: BLE001 - a broken file is deleted anyway
            pass
        if os.path.exists(self.temp):
            os.remove(self.temp)


def _format_name(path):
    return {".mkv": "matroska", ".m4v": "mp4", ".avi": "avi"}.get(extension(path))


def _palette_frame(av, image):
    """An RGB frame as a pal8 frame with its own 256-colour palette (GIF)."""
    from PIL import Image

    indexed = Image.fromarray(image).quantize(256, dither=Image.Dither.NONE)
    palette = np.zeros((256, 4), np.uint8)
    colours = np.asarray(indexed.getpalette(), np.uint8).reshape(-1, 3)[:256]
    palette[: len(colours), :3] = colours
    palette[:, 3] = 255
    return av.VideoFrame.from_ndarray((np.asarray(indexed), palette), format="pal8")


class FolderSink:
    """Writes frames as ``frame_000001.png``... into a temporary folder beside ``path``, renamed at the end."""

    audio_mode = "none"

    def __init__(self, path, audio=None):
        self.path = path.rstrip(os.sep)
        if os.path.isdir(self.path) and os.listdir(self.path):
            raise VideoError(f"{path}: folder exists and is not empty; frames go into a new or empty folder")
        if audio is not None:
            logging.warning("%s: a folder of frames has no sound; the clip's audio is dropped", path)
        parent = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(parent, exist_ok=True)
            self.temp = tempfile.mkdtemp(prefix=f".{os.path.basename(self.path)}.", dir=parent)
        except OSError as e:
            raise VideoError(f"{path}: cannot write ({e.strerror or e})") from None
        self.count = 0

    def write(self, image, seconds, rotation=0):
        del seconds
        self.count += 1
        image = np.rot90(image, rotation // 90) if rotation % 90 == 0 else image  # PNGs have no rotation flag
        save_image(os.path.join(self.temp, f"frame_{self.count:06d}.png"), image)

    def write_audio(self, packet):
        pass

    def finish(self):
        if os.path.isdir(self.path):
            os.rmdir(self.path)  # empty (checked at the start)
        os.replace(self.temp, self.path)

    def abort(self):
        shutil.rmtree(self.temp, ignore_errors=True)


# ----------------------------------------------------------------------------- the pipeline


class _Stopped(Exception):
    """Another thread failed or the run was interrupted."""


def _put(q, item, stop):
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            pass
    raise _Stopped


def _get(q, stop):
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            pass
    raise _Stopped


class _Worker(threading.Thread):
    """A daemon thread that keeps the exception its target raised (other than ``_Stopped``)."""

    def __init__(self, target, stop, name):
        super().__init__(name=name, daemon=True)
        self.target, self.stop, self.error = target, stop, None

    def run(self):
        try:
            self.target()
        except _Stopped:
            pass
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self.error = e
            self.stop.set()


def open_source(path, fps=0, max_size=0, max_pixels=MAX_PIXELS):
    if os.path.isdir(path):
        return FolderSource(path, fps or DEFAULT_FPS, max_size, max_pixels)
    if not os.path.exists(path):
        raise VideoError(f"{path}: no such file or directory")
    return VideoSource(path, max_size, max_pixels)


def open_sink(path, source):
    if extension(path) in VIDEO_EXTENSIONS + (".gif",):
        return VideoSink(path, source.width, source.height, source.fps, source.time_base, source.audio)
    if extension(path) in IMAGE_EXTENSIONS:
        raise VideoError(f"{path}: a clip goes to a video ({', '.join(VIDEO_EXTENSIONS)}, .gif) or a folder of frames")
    return FolderSink(path, source.audio)


def transform_clip(transform, src, dst, fps=0, max_size=0, max_pixels=MAX_PIXELS, progress=True,
                   queue_frames=QUEUE_FRAMES, min_side=0):
    """Reads ``src``, applies ``transform`` (uint8 [H, W, 3] -> uint8 [H, W, 3] of the same size) to
    every frame in the calling thread, writes ``dst``; returns a summary dict. ``fps`` is the rate of
    a folder of frames. Any error or interrupt removes the partial output and re-raises."""
    if os.path.abspath(src) == os.path.abspath(dst):
        raise VideoError(f"{dst}: output would overwrite its input")
    source = open_source(src, fps, max_size, max_pixels)
    try:
        if min(source.width, source.height) < min_side:
            raise VideoError(f"{src}: {source.width}x{source.height} frames are too small: the network needs at "
                             f"least {min_side} pixels on each side")
        sink = open_sink(dst, source)
    except BaseException:
        source.close()
        raise
    stop = threading.Event()
    decoded, stylized = queue.Queue(queue_frames), queue.Queue(queue_frames)
    written = [0]

    def read():
        for item in source.items():
            _put(decoded, item, stop)
        _put(decoded, _END, stop)

    def write():
        with _write_errors(dst):
            while (item := _get(stylized, stop)) is not _END:
                if isinstance(item, Frame):
                    sink.write(item.image, item.time, item.rotation)
                    written[0] += 1
                else:
                    sink.write_audio(item)

    workers = [_Worker(read, stop, "decode"), _Worker(write, stop, "encode")]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=source.frames or None, unit="frame", file=sys.stderr, dynamic_ncols=True, mininterval=1.0,
                   desc=os.path.basename(src))
    start = time.perf_counter()
    count = 0
    try:
        for worker in workers:
            worker.start()
        while (item := _get(decoded, stop)) is not _END:
            if isinstance(item, Frame):
                item = Frame(transform(item.image), item.time, item.rotation)
                count += 1
                if bar is not None:
                    bar.update(1)
            _put(stylized, item, stop)
        _put(stylized, _END, stop)
        workers[1].join()
        _raise_worker_error(workers)
        if not written[0]:
            raise VideoError(f"{src}: no video frames")
        with _write_errors(dst):
            sink.finish()
    except BaseException as e:
        stop.set()
        for worker in workers:
            if worker.is_alive():
                worker.join(timeout=10)
        sink.abort()
        if isinstance(e, _Stopped):
            _raise_worker_error(workers)
        raise
    finally:
        if bar is not None:
            bar.close()
        source.close()
    seconds = time.perf_counter() - start
    return {"input": src, "output": dst, "frames": count, "width": source.width, "height": source.height,
            "source_size": list(source.source_size), "fps": round(float(source.fps), 3), "audio": sink.audio_mode,
            "seconds": round(seconds, 3), "frames_per_second": round(count / seconds, 2) if seconds else None}


@contextlib.contextmanager
def _write_errors(path):
    """A full disk or a failing encoder becomes a ``VideoError`` naming the output."""
    av = _av()
    try:
        yield
    except (OSError, av.error.FFmpegError) as e:
        raise VideoError(f"{path}: cannot write ({_reason(e)})") from None


def _raise_worker_error(workers):
    for worker in workers:
        if worker.error is not None:
            if isinstance(worker.error, ImageError):
                raise VideoError(str(worker.error)) from None
            raise worker.error


def frame_transform(stylizer, keep_color=False):
    """uint8 frame -> uint8 stylized frame with the stylizer's blend and fade (``stylize.stylize_image``,
    never tiled). A Keras network runs as one traced graph (per frame size), not layer by layer."""
    from tfstyle import stylize

    runner = stylizer
    if isinstance(stylizer, stylize.KerasStylizer):
        runner = _TracedKeras(stylizer)
    return lambda image: stylize.stylize_image(runner, image, tile_size=0, keep_color=keep_color)


class _TracedKeras:
    def __init__(self, stylizer):
        import tensorflow as tf

        self.stylizer = stylizer
        self.fn = tf.function(lambda inputs: stylizer.model(inputs, training=False))

    @property
    def fade(self):
        return self.stylizer.fade

    def __call__(self, image):
        return self.fn(self.stylizer.inputs(image[None]))[0].numpy()


def run(args, stylizer, fps=0, max_size=0, keep_color=False, max_pixels=MAX_PIXELS):
    """``tfstyle stylize IN OUT`` for a clip; returns the summary of ``transform_clip``."""
    from tfstyle.transformer import MIN_SIDE

    src, dst = args
    return transform_clip(frame_transform(stylizer, keep_color), src, dst, fps, max_size, max_pixels, min_side=MIN_SIDE)
