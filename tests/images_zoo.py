"""Builds a folder of the awkward files users' photo folders really contain."""

import os
import shutil

import numpy as np
from PIL import Image

BAD_FILES = ("blank.png", "empty.jpg", "garbage.jpg", "truncated.jpg")  # besides one_pixel.png: too small to stylize


DEEP16 = np.tile(np.linspace(0, 65535, 50).astype(np.uint16), (40, 1))  # a 16-bit horizontal ramp


def make_zoo(directory, source_jpeg):
    """Writes good-but-odd images and unusable ones (``BAD_FILES``: unusable for training) into ``directory``."""
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(0)
    shutil.copy(source_jpeg, os.path.join(directory, "photo.jpg"))
    Image.fromarray(rng.integers(0, 255, (40, 50), dtype=np.uint8), "L").save(os.path.join(directory, "gray.png"))
    Image.fromarray(rng.integers(0, 255, (40, 50, 4), dtype=np.uint8), "RGBA").save(os.path.join(directory, "rgba.png"))
    Image.fromarray(DEEP16).save(os.path.join(directory, "deep16.png"))
    cmyk = rng.integers(0, 255, (40, 50, 4), dtype=np.uint8)
    Image.fromarray(cmyk, "CMYK").save(os.path.join(directory, "cmyk.jpg"))
    Image.new("RGB", (50, 40), (250, 250, 250)).save(os.path.join(directory, "blank.png"))
    Image.fromarray(rng.integers(0, 255, (8, 12, 3), dtype=np.uint8)).save(os.path.join(directory, "tiny.png"))
    os.makedirs(os.path.join(directory, "nested"), exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (30, 60, 3), dtype=np.uint8)).save(os.path.join(directory, "nested", "deeper.webp"))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(rng.integers(0, 255, (20, 60, 3), dtype=np.uint8)).save(os.path.join(directory, "rotated.jpg"), exif=exif)
    frames = [Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)) for _ in range(2)]
    frames[0].save(os.path.join(directory, "animated.gif"), save_all=True, append_images=frames[1:], duration=100)
    Image.new("RGB", (1, 1), (10, 200, 30)).save(os.path.join(directory, "one_pixel.png"))
    open(os.path.join(directory, "empty.jpg"), "wb").close()
    with open(os.path.join(directory, "garbage.jpg"), "wb") as f:
        f.write(b"this is not an image" * 10)
    data = open(source_jpeg, "rb").read()
    with open(os.path.join(directory, "truncated.jpg"), "wb") as f:
        f.write(data[: len(data) // 3])
    with open(os.path.join(directory, "notes.txt"), "w") as f:
        f.write("not an image extension: ignored\n")
    return directory
