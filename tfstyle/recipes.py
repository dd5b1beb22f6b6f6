"""Training recipes: which VGG19 layers and loss weights make a good style, per loss network.

The defaults of every command (train, gatys, evaluate, bench) come from here,
so a run, its evaluation and the Gatys baseline it is compared with score
images with the same loss.

- ``FULL_VGG19``: lengstrom/fast-style-transfer's choice for the whole ImageNet
  VGG19 (style relu1_1 ... relu5_1, content relu4_2; content 7.5, style 100, TV 200).
- ``BLOCKS_1_TO_3``: for weights that cover only blocks 1-3 (the genuine
  ``vgg19_imagenet_block1_to_block3.npz``). relu3_1 sees ~24 px, so the style
  terms are also taken at pyramid levels 2, 4 and 8 (the painting's larger
  shapes), each normalised by its target; content relu2_2 weighs 4x the full
  recipe's (with its balance the photos wash out into outlines) and TV a quarter
  (strokes stay crisp). docs/RECIPES.md shows the probes behind these numbers.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    style_layers: tuple
    content_layer: str
    content_weight: float
    style_weight: float
    tv_weight: float
    style_size: int  # longer side of the style image, pixels
    style_levels: tuple = (1,)  # pyramid levels of the style loss: 2 = the image averaged over 2x2 blocks
    style_normalize: bool = False  # each Gram term relative to its target's magnitude (losses.style_loss)
    stroke_scale: float = 1.0  # the style image at style_size x this: 2 paints strokes twice as large

    @property
    def loss_weights(self):
        return loss_settings(dataclasses.asdict(self))

    @property
    def layers(self):
        return (*self.style_layers, self.content_layer)


FULL_VGG19 = Recipe(
    name="full VGG19",
    style_layers=("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"),
    content_layer="block4_conv2",
    content_weight=7.5, style_weight=100.0, tv_weight=200.0, style_size=512)

BLOCKS_1_TO_3 = Recipe(
    name="VGG19 blocks 1-3, pyramid",
    style_layers=("block1_conv1", "block2_conv1", "block3_conv1"),
    content_layer="block2_conv2",
    content_weight=100.0, style_weight=5e6, tv_weight=50.0, style_size=512,
    style_levels=(1, 2, 4, 8), style_normalize=True)

# The blocks 1-3 recipe before the pyramid: every style shipped before it was trained with this.
BLOCKS_1_TO_3_SINGLE_SCALE = Recipe(
    name="VGG19 blocks 1-3, single scale",
    style_layers=("block1_conv1", "block2_conv1", "block3_conv1"),
    content_layer="block2_conv2",
    content_weight=100.0, style_weight=100.0, tv_weight=50.0, style_size=512)

DEFAULT = FULL_VGG19


def for_layers(covered):
    """The recipe for a loss network whose weights cover the conv layers ``covered``."""
    return FULL_VGG19 if set(FULL_VGG19.layers) <= set(covered) else BLOCKS_1_TO_3


def for_weights(vgg_weights):
    """The recipe for a ``--vgg_weights`` value ('auto', 'imagenet', 'random' or a file path)."""
    from tfstyle import vgg

    return for_layers(vgg.covered_layers(vgg_weights))


SETTINGS = ("style_layers", "content_layer", "content_weight", "style_weight", "tv_weight", "style_size",
            "style_levels", "style_normalize", "stroke_scale")
# What a loss that predates the pyramid settings meant by leaving them out.
SINGLE_SCALE = {"style_levels": (1,), "style_normalize": False, "stroke_scale": 1.0}


def loss_settings(settings):
    """The keyword arguments of ``perceptual.weighted_losses`` (weights, pyramid) among ``settings``."""
    from tfstyle.perceptual import LOSS_SETTINGS

    return {name: settings[name] for name in LOSS_SETTINGS}


def style_image_size(settings):
    """Longer side (px) of the style image a loss with ``settings`` uses: ``style_size`` x ``stroke_scale``
    (0 keeps the image's own size)."""
    return round(settings["style_size"] * settings.get("stroke_scale", 1.0))


def complete(vgg_weights, **settings):
    """``settings`` (any of ``SETTINGS``) with every missing or None one taken from the recipe for ``vgg_weights``.

    Returns ``(recipe, settings)``; ``style_layers`` comes back as a tuple.
    """
    recipe = for_weights(vgg_weights)
    filled = {name: getattr(recipe, name) if settings.get(name) is None else settings[name] for name in SETTINGS}
    filled["style_layers"] = tuple(filled["style_layers"])
    filled["style_levels"] = tuple(int(level) for level in filled["style_levels"])
    return recipe, filled
