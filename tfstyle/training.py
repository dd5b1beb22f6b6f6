"""One training run, end to end: strategy, data, model, callbacks, ``fit``, final weights.

A run is a sequence of Keras "epochs" of ``checkpoint_every`` optimizer steps
each, so ``BackupAndRestore`` checkpoints (and resumes) every ``checkpoint_every``
steps, and the step counter is the optimizer's own ``iterations``.
"""

import dataclasses
import json
import math
import os
import sys

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfstyle import callbacks as cb
from tfstyle import data, distribution, recipes, styles, vgg
from tfstyle.model import StyleTransferModel
from tfstyle.transformer import build_transformer


class TrainingError(RuntimeError):
    """A run that cannot start or continue (bad settings, diverged loss)."""


@dataclasses.dataclass
class TrainConfig:
    style: str = "mosaic"
    data_dir: str = ""  # a folder of photos; empty means the TFDS dataset below
    dataset: str = "coco/2017"
    tfds_data_dir: str = ""
    runs_dir: str = "runs"
    image_size: int = 256
    style_size: int = None  # None: from the recipe of the loss network (tfstyle.recipes)
    batch_size: int = 4  # global, over all replicas
    steps: int = 40000
    accum_steps: int = 1
    lr: float = 1e-3
    lr_schedule: str = "cosine"  # constant | cosine | exponential
    lr_decay_rate: float = 0.1  # cosine: final fraction of lr; exponential: factor over all steps
    content_weight: float = None  # None: from the recipe
    style_weight: float = None
    tv_weight: float = None
    style_layers: tuple = None
    content_layer: str = None
    vgg_weights: str = "imagenet"
    precision: str = "auto"
    strategy: str = "auto"
    jit_compile: bool = False
    checkpoint_every: int = 1000
    keep_checkpoints: int = 5
    preview_every: int = 500
    preview_count: int = 4
    seed: int = 0
    verbose: int = -1  # Keras fit verbosity; -1: progress bar on a terminal, one line per epoch otherwise


RECIPE_FIELDS = ("style_layers", "content_layer", "content_weight", "style_weight", "tv_weight", "style_size")


def with_recipe(config):
    """``config`` with every unset loss setting taken from the recipe for its loss network.

    Weights that cover only part of VGG19 (blocks 1-3) get the recipe made for
    them; the log says which recipe a run uses.
    """
    recipe = recipes.for_weights(config.vgg_weights)
    unset = {f: getattr(recipe, f) for f in RECIPE_FIELDS if getattr(config, f) is None}
    if unset:
        logging.info("loss recipe for %s (%s): %s", recipe.name, config.vgg_weights,
                     ", ".join(f"{k}={v}" for k, v in unset.items()))
    config = dataclasses.replace(config, **unset)
    return dataclasses.replace(config, style_layers=tuple(config.style_layers))


def make_optimizer(config):
    # Learning-rate schedules count batches, also under gradient accumulation.
    batches = config.steps * max(1, config.accum_steps)
    if config.lr_schedule == "constant":
        lr = config.lr
    elif config.lr_schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(config.lr, batches, alpha=config.lr_decay_rate)
    elif config.lr_schedule == "exponential":
        lr = keras.optimizers.schedules.ExponentialDecay(config.lr, batches, config.lr_decay_rate)
    else:
        raise TrainingError(f"unknown lr_schedule '{config.lr_schedule}': use constant, cosine or exponential")
    accumulate = config.accum_steps if config.accum_steps > 1 else None
    return keras.optimizers.Adam(lr, gradient_accumulation_steps=accumulate)


def build_model(config, strategy=None):
    """The compiled ``StyleTransferModel``, built (variables and optimizer slots exist) for restoring."""
    strategy = strategy or tf.distribute.get_strategy()
    config = with_recipe(config)
    style_image = styles.load_style_image(config.style, config.style_size)
    with strategy.scope():
        keras.utils.set_random_seed(config.seed)
        model = StyleTransferModel(
            build_transformer(),
            vgg.build_loss_network(config.vgg_weights, config.style_layers, config.content_layer, seed=config.seed),
            style_image,
            content_weight=config.content_weight,
            style_weight=config.style_weight,
            tv_weight=config.tv_weight,
        )
        model.compile(optimizer=make_optimizer(config), jit_compile=config.jit_compile)
        model(tf.zeros((1, 32, 32, 3)))  # builds the model, so a backup can be restored into it
        model.optimizer.build(model.transformer.trainable_variables)
    return model


def make_dataset(config, skipped):
    if config.data_dir:
        return data.folder_dataset(config.data_dir, config.image_size, config.batch_size, skipped=skipped, shuffle_seed=config.seed)
    return data.tfds_dataset(config.dataset, config.image_size, config.batch_size, data_dir=config.tfds_data_dir or None)


def run_dir(config):
    return os.path.join(config.runs_dir, styles.style_name(config.style))


def train(config):
    """Trains (or resumes) a style; returns the path of the final transformer weights."""
    if config.steps < 1 or config.checkpoint_every < 1:
        raise TrainingError("--steps and --checkpoint_every must be positive")
    checkpoint_every = min(config.checkpoint_every, config.steps)
    if config.steps % checkpoint_every:
        raise TrainingError(f"--steps={config.steps} must be a multiple of --checkpoint_every={checkpoint_every}")
    styles.resolve_style(config.style)  # fail on an unknown style before anything slow
    config = with_recipe(config)
    precision = distribution.set_precision(config.precision)
    strategy = distribution.make_strategy(config.strategy)
    worker, is_chief = distribution.worker_index()
    # Every worker keeps its own backup (a restarted worker must resume where the chief does);
    # only the chief's final weights are the run's result.
    out_dir = run_dir(config) if is_chief else os.path.join(run_dir(config), f"worker{worker}")
    skipped = data.SkippedFiles()
    dataset = make_dataset(config, skipped)
    model = build_model(config, strategy)
    logging.info("precision %s, global batch %d over %d replica(s), output in %s",
                 precision, config.batch_size, strategy.num_replicas_in_sync, out_dir)

    accum = max(1, config.accum_steps)
    # With gradient accumulation Keras' `iterations` already counts optimizer updates, not batches.
    steps_of = lambda m: int(m.optimizer.iterations.numpy())  # noqa: E731
    preview_images = next(iter(dataset))[: config.preview_count]
    callbacks = [
        # Kept after the run, so the same command run again after the end resumes at the end.
        cb.SafeBackupAndRestore(os.path.join(out_dir, "backup"), steps_of, double_checkpoint=True, delete_checkpoint=False),
        cb.TransformerCheckpoint(os.path.join(out_dir, "checkpoints"), steps_of, keep=config.keep_checkpoints),
        cb.PreviewGrid(preview_images, os.path.join(out_dir, "previews"), os.path.join(out_dir, "logs"),
                       config.preview_every, steps_of),
        keras.callbacks.TensorBoard(os.path.join(out_dir, "logs"), update_freq=max(1, min(100, checkpoint_every))),
        keras.callbacks.TerminateOnNaN(),
    ]
    verbose = config.verbose if config.verbose >= 0 else (1 if sys.stdout.isatty() else 2)
    model.fit(dataset, epochs=config.steps // checkpoint_every, steps_per_epoch=checkpoint_every * accum,
              callbacks=callbacks, verbose=verbose, shuffle=False)

    step = steps_of(model)
    if len(skipped):
        logging.warning("skipped %d unreadable image file(s) during this run", len(skipped))
    if not cb.weights_are_finite(model.transformer) or step < config.steps:
        raise TrainingError(
            f"training stopped at step {step} of {config.steps} because the loss became NaN or inf; "
            f"the last good checkpoint is kept in {os.path.join(out_dir, 'backup')}: "
            "lower --lr or the loss weights, or use --precision=float32, and run the same command again")
    final = os.path.join(out_dir, "transformer.weights.h5")
    cb.save_weights_atomically(model.transformer, final)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump({**dataclasses.asdict(config), "precision_used": precision, "final_step": step,
                   "skipped_files": len(skipped)}, f, indent=2)
    logging.info("finished at step %d; transformer weights in %s", step, final)
    return final
