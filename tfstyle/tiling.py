"""Stylizing a photo larger than memory allows in overlapping tiles with blended seams.

Tiles start on multiples of the network's stride (4), overlap by at least
``overlap`` pixels and are blended with weights that are zero next to a tile's
inner edge, then ramp up linearly: pixels near a tile edge, whose receptive
field is cut off, count for nothing. Each pixel is owned by one tile
(``owned``) for tests that compare interiors.
"""

import time

import numpy as np
from absl import logging

STRIDE = 4  # the net downsamples twice by 2: tiles start on multiples of 4 to stay on its grid


class TilingError(ValueError):
    """Tile settings that cannot cover an image."""


def tile_starts(length, tile, stride):
    """Start offsets (multiples of ``STRIDE``) of tiles covering ``range(length)``."""
    if length <= tile:
        return [0]
    last = (length - tile) // STRIDE * STRIDE
    return sorted(set(range(0, last, stride)) | {last})


def _axis_tiles(length, tile, stride):
    """[(start, end, owned_start, owned_end)] along one axis; owned ranges partition the axis."""
    starts = tile_starts(length, tile, stride)
    ends = [min(length, s + tile) for s in starts[:-1]] + [length]
    bounds = [0] + [((starts[i + 1] + ends[i]) // 2) // STRIDE * STRIDE for i in range(len(starts) - 1)] + [length]
    return [(s, e, bounds[i], bounds[i + 1]) for i, (s, e) in enumerate(zip(starts, ends))]


def _axis_weights(start, end, length, margin, ramp):
    """Blend weights along one axis of a tile: 0 in the ``margin`` next to an inner edge, then a linear ramp."""
    n = end - start
    w = np.ones(n, np.float32)
    d = np.arange(n, dtype=np.float32)
    if start > 0:
        w = np.minimum(w, np.clip((d - margin + 1) / ramp, 0, 1))
    if end < length:
        w = np.minimum(w, np.clip((n - d - margin) / ramp, 0, 1))
    return np.maximum(w, 1e-6)


def tile_grid(h, w, tile_size, overlap):
    """Tiles of at most ~``tile_size`` px overlapping by >= ``overlap``, with blend weights."""
    overlap = max(overlap, 4 * STRIDE)
    tile_size = tile_size // STRIDE * STRIDE
    if tile_size <= overlap + STRIDE:
        raise TilingError(f"--tile_size={tile_size} must be larger than --tile_overlap={overlap}")
    stride = (tile_size - overlap) // STRIDE * STRIDE
    margin = overlap // 4
    ramp = overlap - 2 * margin
    grid = []
    for y0, y1, oy0, oy1 in _axis_tiles(h, tile_size, stride):
        wy = _axis_weights(y0, y1, h, margin, ramp)
        for x0, x1, ox0, ox1 in _axis_tiles(w, tile_size, stride):
            wx = _axis_weights(x0, x1, w, margin, ramp)
            grid.append({"box": (y0, y1, x0, x1), "owned": (oy0, oy1, ox0, ox1), "weight": (wy, wx)})
    return grid


def stylize_tiled(image, run_tile, grid):
    """Runs ``run_tile`` on every tile of ``grid`` and blends them: float32 [H, W, 3].

    Logs a line per tile (a 6000x4000 photo takes minutes on a CPU).
    """
    h, w = image.shape[:2]
    out = np.zeros((h, w, 3), np.float32)
    total = np.zeros((h, w, 1), np.float32)
    start = time.perf_counter()
    for i, tile in enumerate(grid, start=1):
        y0, y1, x0, x1 = tile["box"]
        wy, wx = tile["weight"]
        weight = (wy[:, None] * wx[None, :])[..., None]
        out[y0:y1, x0:x1] += run_tile(image[y0:y1, x0:x1]) * weight
        total[y0:y1, x0:x1] += weight
        elapsed = time.perf_counter() - start
        logging.info("tile %d/%d done, %.0f s left", i, len(grid), elapsed / i * (len(grid) - i))
    return out / total
