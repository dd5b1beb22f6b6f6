"""How much does a stylized clip flicker? Warp error on synthetic clips whose motion is known exactly.

A clip is a window moving over a still photo: ``pan`` (2 px a frame to the right), ``zoom``
(in by 0.5 % a frame), ``rotate`` (0.2 degrees a frame) or ``jitter`` (a hand-held camera:
a random walk of sub-pixel shifts and small turns), each frame with its own sensor noise
(Gaussian, sigma 2 in 0..255, rounded to 8 bits). The photo is first blurred a little
(sigma 1 px, as by a lens) so that resampling it is nearly exact. Frame t samples it at ``A_t p``
for frame pixel p, so frame t+1 equals frame t warped by ``M_t = inv(A_t) A_(t+1)``.

The warp error of clip O is the mean over steps t of mean |O(t+1)(p) - O(t)(M_t p)| in
0..255, over the pixels p whose source ``M_t p`` stays inside the frame (cubic spline
between pixels). For the pan, M_t p is p moved 2 px right, so it is exactly
mean |O(t+1)[:, :-2] - O(t)[:, 2:]|. A network that stylized a moving scene consistently
would reach the input's own warp error (noise and interpolation); ``ratio`` is the output's
warp error over the input's: 1 is as steady as the input, more is flicker.
"""

import math
import statistics

import numpy as np
from scipy import ndimage

MOTIONS = ("pan", "zoom", "rotate", "jitter")
FRAMES = 30
WINDOW = (512, 384)  # width, height of the clip
NOISE = 2.0
PAN_STEP = 2
BLUR = 1.0  # sigma in pixels: a lens's softness, so that resampling the frames is nearly exact


def affine(scale=1.0, angle=0.0, shift=(0.0, 0.0)):
    """3x3 matrix on (x, y, 1) about the origin: rotate by ``angle`` degrees, scale, then shift."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return np.array([[scale * c, -scale * s, shift[0]], [scale * s, scale * c, shift[1]], [0, 0, 1]], np.float64)


def camera_path(motion, frames=FRAMES, seed=0):
    """Per frame, the camera (scale, angle in degrees, (dx, dy) in pixels) relative to the first frame."""
    if motion == "pan":
        return [(1.0, 0.0, (PAN_STEP * t, 0.0)) for t in range(frames)]
    if motion == "zoom":
        return [(1.0 / 1.005 ** t, 0.0, (0.0, 0.0)) for t in range(frames)]
    if motion == "rotate":
        return [(1.0, 0.2 * t, (0.0, 0.0)) for t in range(frames)]
    if motion == "jitter":
        rng = np.random.default_rng(seed)
        steps = rng.normal(0, [0.8, 0.8, 0.1], (frames, 3))
        steps[0] = 0
        walk = np.clip(np.cumsum(steps, axis=0), [-6, -6, -1], [6, 6, 1])
        return [(1.0, float(a), (float(x), float(y))) for x, y, a in walk]
    raise ValueError(f"unknown motion '{motion}' (one of {', '.join(MOTIONS)})")


def frame_to_photo(camera, window, photo_size):
    """The matrix A taking a frame pixel (x, y) to the photo pixel it shows: the window is centred
    on the photo, then moved by the camera."""
    scale, angle, shift = camera
    (w, h), (pw, ph) = window, photo_size
    centre_frame = affine(shift=(-(w - 1) / 2, -(h - 1) / 2))
    to_photo = affine(shift=((pw - 1) / 2 + shift[0], (ph - 1) / 2 + shift[1]))
    return to_photo @ affine(scale, angle) @ centre_frame


def sample(image, matrix, size, order=1):
    """image resampled so output pixel p is image at ``matrix @ p`` (``size`` = (w, h)); float32,
    with the mask of pixels whose source lies inside the image."""
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    sx = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]
    sy = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]
    ih, iw = image.shape[:2]
    eps = 1e-6
    inside = (sx >= -eps) & (sx <= iw - 1 + eps) & (sy >= -eps) & (sy <= ih - 1 + eps)
    out = np.stack([ndimage.map_coordinates(image[..., c].astype(np.float32), [sy, sx], order=order, mode="nearest")
                    for c in range(image.shape[2])], axis=-1)
    return out, inside


def landscape(photo):
    """A portrait photo turned a quarter so the landscape window fits it."""
    return np.rot90(photo) if photo.shape[0] > photo.shape[1] else photo


def synthetic_clip(photo, motion, frames=FRAMES, window=WINDOW, noise=NOISE, seed=0, blur=BLUR):
    """(uint8 frames [T, h, w, 3], warps [T-1] of 3x3 M_t) for a window moving over ``photo``."""
    ph, pw = photo.shape[:2]
    if window[0] > pw or window[1] > ph:
        raise ValueError(f"the photo ({pw}x{ph}) must be larger than the window ({window[0]}x{window[1]})")
    path = camera_path(motion, frames, seed)
    if motion == "pan":  # start left of centre so the window stays on the photo
        span = PAN_STEP * (frames - 1)
        path = [(s, a, (dx - span / 2, dy)) for s, a, (dx, dy) in path]
    matrices = [frame_to_photo(camera, window, (pw, ph)) for camera in path]
    if blur:
        photo = ndimage.gaussian_filter(photo.astype(np.float32), (blur, blur, 0))
    rng = np.random.default_rng(seed + 1)
    clip = []
    for matrix in matrices:
        image, inside = sample(photo, matrix, window, order=3)
        if not inside.all():
            raise ValueError(f"the {motion} leaves the photo ({pw}x{ph}); use a larger photo or a smaller window")
        image = image + rng.normal(0, noise, image.shape) if noise else image
        clip.append(np.clip(np.round(image), 0, 255).astype(np.uint8))
    warps = [np.linalg.inv(a) @ b for a, b in zip(matrices[:-1], matrices[1:])]
    return np.stack(clip), warps


def warp_error(clip, warps):
    """Mean over steps of mean |O(t+1)(p) - O(t)(M_t p)| (0..255) over the pixels whose source stays in the frame."""
    h, w = clip.shape[1:3]
    errors = []
    for prev, nxt, matrix in zip(clip[:-1], clip[1:], warps):
        warped, inside = sample(prev, matrix, (w, h), order=3)
        errors.append(float(np.abs(nxt.astype(np.float32) - warped)[inside].mean()))
    return statistics.fmean(errors)


def pan_warp_error(clip, step=PAN_STEP):
    """The pan's warp error written out: mean |O(t+1)[:, :-step] - O(t)[:, step:]|."""
    clip = clip.astype(np.float32)
    return float(np.abs(clip[1:, :, :-step] - clip[:-1, :, step:]).mean())


def measure(stylize_clip, photos, motions=MOTIONS, frames=FRAMES, window=WINDOW, noise=NOISE, seed=0, log=None):
    """Flicker of ``stylize_clip`` (uint8 [T, h, w, 3] -> the same shape, stylized) per motion, as rows
    ``{motion, clips, input, output, ratio}``: means over the photos (``[(name, uint8 image)]``) of the
    input's and the output's warp error, and the ratio of those means; a last row ``all`` averages the
    motions."""
    rows = []
    for motion in motions:
        inputs, outputs = [], []
        for i, (name, photo) in enumerate(photos):
            clip, warps = synthetic_clip(photo, motion, frames, window, noise, seed + i)
            inputs.append(warp_error(clip, warps))
            outputs.append(warp_error(np.asarray(stylize_clip(clip)), warps))
            if log:
                log(f"{motion} {name}: warp error input {inputs[-1]:.2f}, output {outputs[-1]:.2f}")
        rows.append(_row(motion, len(photos), inputs, outputs))
    if len(rows) > 1:
        rows.append({"motion": "all", "clips": sum(r["clips"] for r in rows),
                     "input": statistics.fmean(r["input"] for r in rows),
                     "output": statistics.fmean(r["output"] for r in rows),
                     "ratio": statistics.fmean(r["ratio"] for r in rows)})
    return rows


def _row(motion, clips, inputs, outputs):
    mean_in, mean_out = statistics.fmean(inputs), statistics.fmean(outputs)
    return {"motion": motion, "clips": clips, "input": mean_in, "output": mean_out, "ratio": mean_out / mean_in}


def format_table(rows):
    lines = ["| motion | clips | input warp error | output warp error | x the input's |", "|---|---|---|---|---|"]
    lines += [f"| {r['motion']} | {r['clips']} | {r['input']:.2f} | {r['output']:.2f} | {r['ratio']:.2f} |"
              for r in rows]
    return "\n".join(lines)


def frame_by_frame(transform):
    """A ``stylize_clip`` that applies ``transform`` (uint8 frame -> uint8 frame) to each frame on its own."""
    return lambda clip: np.stack([transform(frame) for frame in clip])
