"""Reading and writing photos as they come from cameras and the web.

Every failure becomes an ``ImageError`` whose message names the file and the
problem in one line. Grayscale, palette, RGBA, CMYK and 16-bit images become
8-bit RGB; EXIF orientation is applied so portrait photos stay upright;
an animated GIF or WebP gives its first frame, with a warning.
"""

import os

import numpy as np
from absl import logging
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
# Three Kodak photos shipped with the package (tfstyle/samples/README.md): a photo to try on a fresh
# clone, and the INT8 calibration photos of `tfstyle export` when no folder is given.
SAMPLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samples")
_warned_animated = set()  # paths already warned about, so a training pipeline says it once


class ImageError(ValueError):
    """An image that cannot be used; the message is '<path>: <problem>'."""


def list_images(directory):
    """Sorted paths of all images below ``directory`` (recursive, by extension)."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory}: no such directory")
    paths = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        paths.extend(os.path.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS))
    return paths


def to_rgb_array(img):
    """A PIL image in any mode -> uint8 [H, W, 3]."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale: keep the top 8 bits instead of clipping at 255.
        gray = np.asarray(img, dtype=np.uint32) >> 8
        return np.repeat(np.clip(gray, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
    if img.mode == "F":
        gray = np.clip(np.asarray(img), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels become white, as image viewers show them.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def load_image(path, max_side=None):
    """Reads ``path`` as uint8 RGB [H, W, 3], upright per EXIF.

    ``max_side`` lets JPEG decoding skip detail that would be thrown away (a
    6000x4000 photo decodes at 1/8 scale when 750 px suffice).
    """
    try:
        if os.path.getsize(path) == 0:
            raise ImageError(f"{path}: empty file")
        with Image.open(path) as img:
            frames = getattr(img, "n_frames", 1)
            if frames > 1 and path not in _warned_animated:
                _warned_animated.add(path)
                logging.warning("%s: animated image with %d frames, using the first", path, frames)
            if max_side:
                img.draft("RGB", (max_side, max_side))
            img = ImageOps.exif_transpose(img)
            array = to_rgb_array(img)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not a readable image (unknown format or corrupt header)") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: image too large ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{path}: corrupt or truncated image ({e})") from None
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageError(f"{path}: image has no pixels")
    return array


def resize_longer_side(array, size, upscale=False):
    """uint8 [H, W, 3] with the longer side scaled to ``size`` (bicubic); the array itself if ``size`` is 0.

    With ``upscale=False`` only larger images are scaled (down): a photo is
    never enlarged to fit a limit. Evaluation sizes and style sizes scale both ways.
    """
    h, w = array.shape[:2]
    if not size or max(h, w) == size or (max(h, w) < size and not upscale):
        return array
    scale = size / max(h, w)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).resize(new, Image.BICUBIC))


def save_image(path, array):
    """Writes uint8 RGB [H, W, 3] (format from the extension), creating folders."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    array = np.clip(np.asarray(array), 0, 255).astype(np.uint8)
    options = {"quality": 95} if path.lower().endswith((".jpg", ".jpeg")) else {}
    Image.fromarray(array).save(path, **options)
