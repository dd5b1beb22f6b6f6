"""The six classic style images bundled with tfstyle, and resolving ``--style``."""

import os

STYLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "styles")
STYLE_NAMES = tuple(sorted(os.path.splitext(f)[0] for f in os.listdir(STYLES_DIR) if f.endswith(".jpg")))


class UnknownStyleError(ValueError):
    """``--style`` is neither a bundled name nor an existing image file."""


def style_name(style):
    """The name outputs are filed under: the bundled name, or the image file's stem."""
    return os.path.splitext(os.path.basename(style))[0] if os.path.sep in style or "." in style else style


def resolve_style(style):
    """Returns the image path for a bundled style name or a path to any image."""
    if style in STYLE_NAMES:
        return os.path.join(STYLES_DIR, f"{style}.jpg")
    if os.path.isfile(style):
        return style
    raise UnknownStyleError(f"unknown style '{style}': use one of {', '.join(STYLE_NAMES)} or a path to an image file")


def trained_weights_path(style, runs_dir="runs"):
    """Where ``train.py`` leaves the final transformer weights and ``export.py`` finds them."""
    return os.path.join(runs_dir, style_name(style), "transformer.weights.h5")


def load_style_image(style, style_size=512):
    """The style image as float32 [1, H, W, 3] in 0..255, longer side scaled to ``style_size``."""
    import numpy as np

    from tfstyle.images import load_image, resize_longer_side

    array = resize_longer_side(load_image(resolve_style(style)), style_size, upscale=True)
    return array[None].astype(np.float32)
