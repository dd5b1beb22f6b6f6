"""How much does a stylized picture look like its painting, and how much of the photo did it keep?

Three numbers per (photo, output) pair, all with the genuine VGG19 blocks 1-3 when
the loss network is built by ``loss_network`` from that file:

* **style gap closed** = 1 - D(output, painting) / D(photo, painting): the share of the
  photo's distance to the painting that the output removes (0: no closer than the photo,
  1: the painting's statistics; negative: further away). D is a multi-scale Gram
  distance: the image at scales 1, 1/2, 1/4 and 1/8 (2^k x 2^k area averaging) through
  relu1_1, relu2_1 and relu3_1; per (layer, scale) the squared Frobenius distance of the
  Gram matrices (``tfstyle.losses.gram_matrix``) divided by the squared Frobenius norm of
  the painting's Gram at that layer and scale, so that no term swamps the others (raw
  terms differ by orders of magnitude); D is the mean of the 12 terms. relu3_1 at scale
  1/8 sees ~190 px of the original, so D sees strokes and shapes, not only texture.
  ``fine`` uses scales 1 and 1/2, ``coarse`` 1/4 and 1/8. The painting is scored at
  ``PAINTING_SIZE`` px longer side (the training recipes' style_size), photo and output at
  their own size.
* **colour gap closed** = 1 - SW(output, painting) / SW(photo, painting), SW the sliced
  Wasserstein-2 distance of the pixels' CIE Lab colours (D65): ``PROJECTIONS`` fixed
  seeded directions, on each the ``QUANTILES`` quantiles of the two images' projected
  colours matched (at most ``COLOUR_SAMPLE`` pixels, at fixed seeded positions), so
  images of any size compare.
* **content moved** = ||relu2_2(output) - relu2_2(photo)|| / ||relu2_2(photo)||: how far the
  output's mid-level features (edges, textures: what the content loss keeps) have moved
  from the photo's; photo and output must have the same size.
"""

import hashlib

import numpy as np

from tfstyle import images as image_io

STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1")
CONTENT_LAYER = "block2_conv2"
SCALES = (1, 2, 4, 8)  # downsampling factors: the image at 1, 1/2, 1/4, 1/8
FINE, COARSE = (1, 2), (4, 8)
PAINTING_SIZE = 512
PROJECTIONS = 64
QUANTILES = 256
COLOUR_SAMPLE = 65536  # pixels; larger images are subsampled at fixed seeded positions
SEED = 0
MIN_SIDE = 32  # pixels: at 1/8 scale relu3_1 (after two 2x poolings) still has a pixel
MEASURES = ("style_gap_closed", "style_gap_closed_fine", "style_gap_closed_coarse", "colour_gap_closed",
            "content_moved")


def loss_network(vgg_weights):
    """VGG19 through relu3_1 with the layers these measures read (``vgg_weights``: as ``tfstyle.vgg``)."""
    from tfstyle import vgg

    return vgg.build_loss_network(vgg_weights, STYLE_LAYERS, CONTENT_LAYER)


def downsample(image, factor):
    """[H, W, 3] float -> the mean of every ``factor`` x ``factor`` block (edges that do not fill a block dropped)."""
    image = np.asarray(image, np.float32)
    if factor == 1:
        return image
    h, w = image.shape[0] // factor * factor, image.shape[1] // factor * factor
    return image[:h, :w].reshape(h // factor, factor, w // factor, factor, 3).mean(axis=(1, 3))


def srgb_to_lab(rgb):
    """uint8 or 0..255 float sRGB [..., 3] -> CIE L*a*b* (D65 white) [..., 3], the standard formulas."""
    c = np.asarray(rgb, np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ np.array([[0.4124564, 0.3575761, 0.1804375],
                             [0.2126729, 0.7151522, 0.0721750],
                             [0.0193339, 0.1191920, 0.9503041]]).T
    xyz /= np.array([0.95047, 1.0, 1.08883])
    eps = (6 / 29) ** 3
    f = np.where(xyz > eps, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def _directions():
    d = np.random.default_rng(SEED).normal(size=(PROJECTIONS, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def colour_quantiles(rgb):
    """The image's Lab colours projected on the fixed directions: [PROJECTIONS, QUANTILES] quantiles."""
    pixels = np.asarray(rgb).reshape(-1, 3)
    if len(pixels) > COLOUR_SAMPLE:
        pixels = pixels[np.random.default_rng(SEED).choice(len(pixels), COLOUR_SAMPLE, replace=False)]
    lab = srgb_to_lab(pixels)
    levels = (np.arange(QUANTILES) + 0.5) / QUANTILES
    return np.quantile(lab @ _directions().T, levels, axis=0).T


def sliced_wasserstein(a, b):
    """Sliced Wasserstein-2 distance (Lab units) between two images' colours, or their ``colour_quantiles``."""
    qa = a if np.ndim(a) == 2 else colour_quantiles(a)
    qb = b if np.ndim(b) == 2 else colour_quantiles(b)
    return float(np.sqrt(np.mean((qa - qb) ** 2)))


class Measures:
    """The measures against one painting; ``score(photo, output)`` gives them for a pair.

    ``network``: from ``loss_network``. ``painting``: uint8 [H, W, 3], scored at
    ``painting_size`` px longer side (0: as given).
    """

    def __init__(self, network, painting, painting_size=PAINTING_SIZE):
        import tensorflow as tf  # here, so that the colour helpers load without TensorFlow

        self.network = network
        self._features = tf.function(lambda x: network(x), reduce_retracing=True)
        painting = image_io.resize_longer_side(np.asarray(painting), painting_size, upscale=True)
        self.painting_grams = self.grams(painting)
        self.painting_colours = colour_quantiles(painting)
        self._photo_gaps = {}  # photo bytes' hash -> (D, SW): a photo is scored once for many outputs

    def grams(self, image):
        """{(layer, scale): [C, C] Gram matrix} of ``image`` (0..255) at every scale."""
        import tensorflow as tf

        from tfstyle.losses import gram_matrix

        grams = {}
        for scale in SCALES:
            small = downsample(image, scale)
            features = self._features(tf.constant(small[None]))["style"]
            for layer in STYLE_LAYERS:
                grams[(layer, scale)] = gram_matrix(features[layer])[0].numpy()
        return grams

    def style_terms(self, image):
        """{(layer, scale): ||G(image) - G(painting)||^2 / ||G(painting)||^2}."""
        grams = self.grams(image)
        return {key: float(np.sum((grams[key] - target) ** 2) / np.sum(target ** 2))
                for key, target in self.painting_grams.items()}

    def style_distance(self, image):
        """{"all", "fine", "coarse"}: D, the mean of the normalized Gram terms over all / fine / coarse scales."""
        terms = self.style_terms(image)
        mean = lambda scales: float(np.mean([v for (_, s), v in terms.items() if s in scales]))  # noqa: E731
        return {"all": mean(SCALES), "fine": mean(FINE), "coarse": mean(COARSE)}

    def content_moved(self, photo, output):
        import tensorflow as tf

        a = self._features(tf.constant(np.asarray(photo, np.float32)[None]))["content"]
        b = self._features(tf.constant(np.asarray(output, np.float32)[None]))["content"]
        return float(tf.norm(b - a) / tf.norm(a))

    def score(self, photo, output):
        """{measure: value} for ``output`` stylized from ``photo`` (both uint8 [H, W, 3], same size)."""
        if photo.shape != output.shape:
            raise ValueError(f"photo {photo.shape[1]}x{photo.shape[0]} and output {output.shape[1]}x{output.shape[0]} "
                             "differ in size")
        if min(photo.shape[:2]) < MIN_SIDE:
            raise ValueError(f"{photo.shape[1]}x{photo.shape[0]} is too small for the style measures: "
                             f"they need at least {MIN_SIDE} px on each side")
        key = hashlib.sha1(np.ascontiguousarray(photo).tobytes()).hexdigest()
        if key not in self._photo_gaps:
            self._photo_gaps[key] = (self.style_distance(photo), sliced_wasserstein(photo, self.painting_colours))
        before, colour_before = self._photo_gaps[key]
        after = self.style_distance(output)
        colour_after = sliced_wasserstein(output, self.painting_colours)
        return {"style_gap_closed": 1 - after["all"] / before["all"],
                "style_gap_closed_fine": 1 - after["fine"] / before["fine"],
                "style_gap_closed_coarse": 1 - after["coarse"] / before["coarse"],
                "colour_gap_closed": 1 - colour_after / colour_before,
                "content_moved": self.content_moved(photo, output)}


def summarize(measures, pairs):
    """Means over ``pairs`` of (photo, output) uint8 arrays of every measure, plus the droplets
    (``tfstyle.blobs``): ``blobs`` in all outputs and ``images_with_blobs``.

    A photo whose size differs from its output's is resized to it first (both keep their aspect).
    """
    from tfstyle import blobs

    scores, droplets, images_with = [], 0, 0
    for photo, output in pairs:
        photo = fit(photo, output.shape[:2])
        scores.append(measures.score(photo, output))
        found = len(blobs.find_blobs(photo, output))
        droplets += found
        images_with += bool(found)
    row = {name: float(np.mean([s[name] for s in scores])) for name in MEASURES}
    return {**row, "blobs": droplets, "images_with_blobs": images_with, "images": len(scores)}


def fit(photo, shape):
    """``photo`` resized (bicubic) to ``shape`` (H, W) when it is not that size already."""
    if photo.shape[:2] == tuple(shape):
        return photo
    from PIL import Image

    return np.asarray(Image.fromarray(photo).resize((shape[1], shape[0]), Image.BICUBIC))


def format_table(rows, label="network"):
    """A Markdown table of ``summarize`` rows, each with a ``label`` key."""
    columns = (label, "style gap closed", "fine", "coarse", "colour gap closed", "content moved", "blobs (images)")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        cells = [r[label]] + [f"{r[k]:.2f}" for k in MEASURES] + [f"{r['blobs']} ({r['images_with_blobs']}/{r['images']})"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
