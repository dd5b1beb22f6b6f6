"""Training recipes: which VGG19 layers and loss weights make a good style, per loss network.

The defaults of every command (train, gatys, evaluate, bench) come from here,
so a run, its evaluation and the Gatys baseline it is compared with score
images with the same loss.

- ``FULL_VGG19``: lengstrom/fast-style-transfer's choice for the whole ImageNet
  VGG19 (style relu1_1 ... relu5_1, content relu4_2; content 7.5, style 100, TV 200).
- ``BLOCKS_1_TO_3``: for weights that cover only blocks 1-3 (the genuine
  ``vgg19_imagenet_block1_to_block3.npz``). relu3_1 sees ~24 px, so the style is
  colour, texture and strokes; content relu2_2 weighs 4x the full recipe's
  (with its balance the photos wash out into outlines) and TV a quarter (strokes
  stay crisp). docs/RECIPES.md shows the probes behind these numbers.
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

    @property
    def loss_weights(self):
        return {"content_weight": self.content_weight, "style_weight": self.style_weight, "tv_weight": self.tv_weight}

    @property
    def layers(self):
        return (*self.style_layers, self.content_layer)


FULL_VGG19 = Recipe(
    name="full VGG19",
    style_layers=("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"),
    content_layer="block4_conv2",
    content_weight=7.5, style_weight=100.0, tv_weight=200.0, style_size=512)

BLOCKS_1_TO_3 = Recipe(
    name="VGG19 blocks 1-3",
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


SETTINGS = ("style_layers", "content_layer", "content_weight", "style_weight", "tv_weight", "style_size")


def complete(vgg_weights, **settings):
    """``settings`` (any of ``SETTINGS``) with every missing or None one taken from the recipe for ``vgg_weights``.

    Returns ``(recipe, settings)``; ``style_layers`` comes back as a tuple.
    """
    recipe = for_weights(vgg_weights)
    filled = {name: getattr(recipe, name) if settings.get(name) is None else settings[name] for name in SETTINGS}
    filled["style_layers"] = tuple(filled["style_layers"])
    return recipe, filled
