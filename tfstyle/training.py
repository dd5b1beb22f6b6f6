"""One training run, end to end: strategy, data, model, callbacks, ``fit``, final weights.

A run is a sequence of Keras "epochs" of ``checkpoint_every`` optimizer steps
each, so ``BackupAndRestore`` checkpoints (and resumes) every ``checkpoint_every``
steps, and the step counter is the optimizer's own ``iterations``.
"""

import dataclasses
import json
import os
import re

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfstyle import callbacks as cb
from tfstyle import loss_terms as lt
from tfstyle import data, distribution, models, multistyle, recipes, styles, vgg
from tfstyle.config import FROM_SCRATCH, MIN_IMAGE_SIZE, QUICK_START, QUICK_START_BASE, SCHEDULE, TrainConfig
from tfstyle.model import StyleTransferModel
from tfstyle.transformer import ConditionalInstanceNormalization, InstanceNormalization, architecture, build_transformer


class TrainingError(RuntimeError):
    """A run that cannot start or continue (bad settings, diverged loss)."""


def with_recipe(config):
    """``config`` with its loss network resolved to the file used (``vgg.resolve_weights``: ``auto``
    becomes the cached full file or the packaged blocks 1-3) and every unset loss setting taken
    from the recipe for that network.

    Weights that cover only part of VGG19 (blocks 1-3) get the recipe made for
    them; the log says which file and recipe a run uses.
    """
    network = vgg.resolve_weights(config.vgg_weights)
    recipe, settings = recipes.complete(network, **{f: getattr(config, f) for f in recipes.SETTINGS})
    unset = [f for f in recipes.SETTINGS if getattr(config, f) is None]
    logging.info("loss network: %s", network)
    if unset:
        logging.info("loss recipe for %s (%s): %s", recipe.name, network, ", ".join(f"{k}={settings[k]}" for k in unset))
    return dataclasses.replace(config, vgg_weights=network, **settings)


def with_start(config):
    """``config`` with ``init_from='auto'`` resolved and its unset schedule (``config.SCHEDULE``) filled in.

    ``auto`` is the packaged ``QUICK_START_BASE`` network for a single-style network of the default
    width and depth trained on its own (no ``--add_to``, no ``--teacher``), and the schedule is then
    ``QUICK_START``'s: a new painting in about 22 minutes on 2 CPU cores. Anything else starts from random
    weights with ``FROM_SCRATCH``'s schedule, as does an empty ``init_from``; a given file keeps it.
    Settings the caller gave are kept either way. Idempotent.
    """
    init_from = config.init_from
    if init_from == "auto":
        default = TrainConfig()
        fits = (not is_multi_style(config) and not config.teacher and config.width == default.width
                and config.residual_blocks == default.residual_blocks)
        init_from = models.pretrained_path(QUICK_START_BASE) if fits else ""
        if fits:
            logging.info("starting from the packaged %s network (--init_from= trains from random weights)",
                         QUICK_START_BASE)
    quick = config.init_from == "auto" and bool(init_from)
    schedule = QUICK_START if quick else FROM_SCRATCH
    unset = {k: schedule[k] for k in SCHEDULE if getattr(config, k) is None}
    if unset:
        logging.info("schedule for a %s: %s", "fine-tune of the packaged network" if quick else "run",
                     ", ".join(f"{k}={v:g}" for k, v in unset.items()))
    return dataclasses.replace(config, init_from=init_from, **unset)


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


def is_multi_style(config):
    """Whether ``config`` trains a multi-style network (several styles, an identity row, or --add_to)."""
    return len(multistyle.split_styles(config.style)) > 1 or config.identity_style or bool(config.add_to)


def add_to_weights(add_to):
    """The weights file of ``--add_to``: a weights file, or a run folder's final weights."""
    path = os.path.join(add_to, "transformer.weights.h5") if os.path.isdir(add_to) else add_to
    if not os.path.isfile(path):
        raise TrainingError(f"--add_to={add_to}: no transformer weights there (a run folder with "
                            "transformer.weights.h5, or a .weights.h5 / .npz file)")
    return path


def base_row_names(path, model):
    """Row names of the network ``--add_to`` names; a single-style network's one row is named by its run."""
    if getattr(model, "row_names", None):
        return list(model.row_names)
    try:
        with open(os.path.join(os.path.dirname(path), "config.json")) as f:
            return [styles.style_name(json.load(f)["style"])]
    except (OSError, ValueError, KeyError):
        return [os.path.basename(path).split(".")[0]]


def style_rows(config):
    """(row names, style image path per row or None, rows to train, add-to weights path or None)."""
    new = multistyle.split_styles(config.style)
    if not config.add_to:
        rows = [styles.style_name(s) for s in new] + ([multistyle.PHOTO] if config.identity_style else [])
        return multistyle.check_row_names(rows), new + [None] * config.identity_style, list(range(len(rows))), None
    path = add_to_weights(config.add_to)
    base = base_row_names(path, models.load_transformer(path))
    photo = multistyle.has_photo(base) or config.identity_style
    kept = multistyle.style_names(base)
    rows = multistyle.check_row_names(kept + [styles.style_name(s) for s in new] + [multistyle.PHOTO] * photo)
    images = [None] * len(kept) + new + [None] * photo
    trained = list(range(len(kept), len(kept) + len(new)))
    if photo and not multistyle.has_photo(base):
        trained.append(len(rows) - 1)
    return rows, images, trained, path


def row_style_scales(config, sources):
    """Per style row, its factor on ``style_weight``: ``--style_scales`` for the ``--style`` values in
    order (1 when unset), 0 for rows without a style image (the identity row, an ``--add_to`` base's rows)."""
    scales = iter(config.style_scales or [1.0] * len(multistyle.split_styles(config.style)))
    return [0.0 if source is None else float(next(scales)) for source in sources]


def copy_into(base, model, base_rows, rows):
    """Copies ``base``'s weights into the multi-style ``model``: convs as they are, each named style row
    into its row of ``model``; rows new to ``model`` start from the mean of the base's style rows."""
    for layer in model.layers:
        if not layer.weights:
            continue
        source = base.get_layer(layer.name)
        if isinstance(layer, ConditionalInstanceNormalization):
            for table, name in ((layer.scale, "scale"), (layer.offset, "offset")):
                old = getattr(source, name).numpy()
                old = old[None] if isinstance(source, InstanceNormalization) else old
                styled = [i for i, n in enumerate(base_rows) if n != multistyle.PHOTO]
                value = np.stack([old[base_rows.index(n)] if n in base_rows else old[styled].mean(axis=0)
                                  for n in rows])
                table.assign(value)
        else:
            layer.set_weights(source.get_weights())


def start_from(transformer, path, rows=None):
    """Copies the weights in ``path`` into ``transformer``; a ``TrainingError`` if the networks differ.

    A multi-style ``transformer`` (row names ``rows``) also starts from a network with other rows, a
    single-style one included (``copy_into``: its convs, each row it names, the mean of its style
    rows for the others), so several styles can be trained on from one trained style; every weight
    stays trainable, unlike ``--add_to``.
    """
    source = models.load_transformer(path)
    if architecture(source) != architecture(transformer):
        raise TrainingError(f"--init_from={path}: a network of {architecture(source)}, this run trains "
                            f"{architecture(transformer)}")
    if rows is not None:
        copy_into(source, transformer, base_row_names(path, source), rows)
    elif len(source.weights) != len(transformer.weights) or getattr(source, "row_names", None):
        raise TrainingError(f"--init_from={path}: a multi-style network; a single-style run starts from a "
                            "single-style network")
    else:
        transformer.set_weights(source.get_weights())
    logging.info("starting from the weights in %s", path)


def build_model(config, strategy=None):
    """The compiled ``StyleTransferModel``, built (variables and optimizer slots exist) for restoring.

    Several comma-separated ``--style`` values, ``--identity_style`` or ``--add_to`` build a
    multi-style network (``tfstyle.multistyle``); one style builds today's single-style network.
    """
    strategy = strategy or tf.distribute.get_strategy()
    config = with_recipe(with_start(config))
    multi = is_multi_style(config)
    style_size = recipes.style_image_size(dataclasses.asdict(config))
    if multi:
        rows, sources, trained, base_path = style_rows(config)
        style_image = [None if s is None else styles.load_style_image(s, style_size) for s in sources]
        base = models.load_transformer(base_path) if base_path else None
    else:
        style_image = styles.load_style_image(config.style, style_size)
    for image in [style_image] if not multi else [i for i in style_image if i is not None]:
        check_pyramid(min(image.shape[1:3]), config, "--style_size")
    with strategy.scope():
        keras.utils.set_random_seed(config.seed)
        arch = architecture(base) if multi and base is not None else {
            "width": config.width, "residual_blocks": config.residual_blocks}
        transformer = build_transformer(num_styles=len(rows) if multi else None, **arch)
        if config.init_from:  # a resumed run's backup, restored later, takes precedence
            start_from(transformer, config.init_from, rows if multi else None)
        teacher = None
        if config.teacher:
            teacher, source = models.load_network(config.teacher, config.runs_dir)
            if getattr(teacher, "row_names", None):
                raise TrainingError(f"--teacher={config.teacher}: a multi-style network; distillation takes a "
                                    "single-style teacher")
            logging.info("distilling from %s (%s), distill_weight %g", source, architecture(teacher),
                         config.distill_weight)
        extra, scales = {}, None
        if multi:
            transformer.row_names = tuple(rows)
            scales = row_style_scales(config, sources)
            extra.update(row_names=rows, train_rows=trained)
            if config.style_scales:
                logging.info("style weight per style: %s", ", ".join(
                    f"{name} {config.style_weight * scale:g}" for name, scale in zip(rows, scales) if scale))
            if base is not None:
                copy_into(base, transformer, base_row_names(base_path, base), rows)
                for layer in transformer.layers:  # only the style rows learn; the convs stay as they are
                    layer.trainable = isinstance(layer, ConditionalInstanceNormalization)
                extra["frozen_rows_mask"] = [1.0 if r in trained else 0.0 for r in range(len(rows))]
        loss_network = vgg.build_loss_network(config.vgg_weights, config.style_layers, config.content_layer,
                                              seed=config.seed)
        model = StyleTransferModel(transformer, loss_network, loss_terms(config, loss_network, style_image, scales,
                                                                          teacher), **extra)
        model.compile(optimizer=make_optimizer(config), jit_compile=config.jit_compile)
        model(tf.zeros((1, 32, 32, 3)))  # builds the model, so a backup can be restored into it
        model.optimizer.build(model.transformer.trainable_variables)
    return model


def check_pyramid(side, config, flag):
    """A ``TrainingError`` when an image with a shorter ``side`` (px) is too small for the coarsest style
    level: the loss network pools it twice before relu3_1, so it needs 4 px there."""
    coarsest = max(config.style_levels)
    if side // coarsest < MIN_IMAGE_SIZE // 4:
        raise TrainingError(f"{flag}: {side} px is too small for style level {coarsest} (the loss network needs "
                            f"{MIN_IMAGE_SIZE // 4} px there, {coarsest * MIN_IMAGE_SIZE // 4} px before it); "
                            "raise it or use fewer --style_levels")


def loss_terms(config, loss_network, style_image, row_scales=None, teacher=None):
    """The terms the training loss sums (``tfstyle.loss_terms``): content, style, TV, and those the config asks for.

    ``style_image``: one [1, H, W, 3] image, or a list with an image or None per style row
    (``row_scales``: each row's factor on the style weight). ``teacher``: a network to distil.
    """
    terms = [
        lt.ContentTerm(config.content_weight),
        lt.StyleTerm(config.style_weight, loss_network, style_image, config.style_levels, config.style_normalize,
                     row_scales),
        lt.TotalVariationTerm(config.tv_weight),
    ]
    if teacher is not None:
        terms.append(lt.DistillTerm(config.distill_weight, teacher))
    if config.noise_stability_weight:
        terms.append(lt.NoiseStabilityTerm(config.noise_stability_weight, config.noise_sigma))
    if config.shift_stability_weight:
        terms.append(lt.ShiftStabilityTerm(config.shift_stability_weight))
    if config.dark_mass_weight:
        terms.append(lt.DarkMassTerm(config.dark_mass_weight))
    return terms


def make_dataset(config, skipped, train_rows=None):
    """Batches of photos; with ``train_rows`` (multi-style), ``(photos, style_ids)`` pairs."""
    if config.data_dir:
        ds = data.folder_dataset(config.data_dir, config.image_size, config.batch_size, skipped=skipped, shuffle_seed=config.seed)
    else:
        ds = data.tfds_dataset(config.dataset, config.image_size, config.batch_size, data_dir=config.tfds_data_dir or None)
    return ds if train_rows is None else with_style_ids(ds, train_rows, config.batch_size)


def with_style_ids(dataset, train_rows, batch_size):
    """Pairs every batch with style row ids, the trained rows round-robin over the examples.

    Example j of batch i gets ``train_rows[(i * batch_size + j) % len(train_rows)]``: every
    style gets the same number of examples (to within one per batch), and a batch of at least
    as many examples as styles holds every style; the ids travel with their examples when a
    strategy splits the batch over replicas.
    """
    rows = tf.constant(train_rows, tf.int32)
    n = len(train_rows)

    def pair(i, images):
        return images, tf.gather(rows, (tf.cast(i, tf.int32) * batch_size + tf.range(batch_size)) % n)

    return dataset.enumerate().map(pair)


def run_name(config):
    """The run's folder name and the network's name: ``--name``, else the style name (a multi-style run:
    its row names joined by '-'), with ``_w<width %>`` and ``_b<blocks>`` for a slim network, so it
    never shares a folder with the full one. Names TF Serving and ``tfstyle serve`` accept."""
    if config.name:
        return config.name
    name = "-".join(style_rows(config)[0]) if is_multi_style(config) else styles.style_name(config.style)
    default = TrainConfig()
    if config.width != default.width:
        name += f"_w{round(config.width * 100)}"
    if config.residual_blocks != default.residual_blocks:
        name += f"_b{config.residual_blocks}"
    return name


def run_dir(config):
    """``<runs_dir>/<run_name>``."""
    return os.path.join(config.runs_dir, run_name(config))


def train(config):
    """Trains (or resumes) a style; returns the path of the final transformer weights."""
    config = with_start(config)
    validate(config)
    # Each style's painting (models.style_image: a run's name means the painting it was trained on);
    # an unknown style fails here, before anything slow, with the message every command gives.
    paintings = [s if s in styles.STYLE_NAMES or os.path.isfile(s) else models.style_image(s, config.runs_dir)
                 for s in multistyle.split_styles(config.style)]
    config = dataclasses.replace(config, style=",".join(paintings))
    rows = style_rows(config) if is_multi_style(config) else None
    config = with_recipe(config)
    check_pyramid(config.image_size, config, "--image_size")
    precision = distribution.set_precision(config.precision)
    strategy = distribution.make_strategy(config.strategy)
    worker, is_chief = distribution.worker_index()
    # Every worker keeps its own backup (a restarted worker must resume where the chief does);
    # only the chief's final weights are the run's result.
    out_dir = run_dir(config) if is_chief else os.path.join(run_dir(config), f"worker{worker}")
    skipped = data.SkippedFiles()
    dataset = make_dataset(config, skipped, rows[2] if rows else None)
    model = build_model(config, strategy)
    logging.info("precision %s, global batch %d over %d replica(s), output in %s",
                 precision, config.batch_size, strategy.num_replicas_in_sync, out_dir)

    accum = max(1, config.accum_steps)
    # With gradient accumulation Keras' `iterations` already counts optimizer updates, not batches.
    steps_of = lambda m: int(m.optimizer.iterations.numpy())  # noqa: E731
    first = data.first_batch(dataset, skipped)
    preview_images = (first[0] if rows else first)[: config.preview_count]
    names = {"row_names": rows[0] if rows else None, "style_names": multistyle.style_names(rows[0]) if rows else None}
    write_config(out_dir, config, precision_used=precision, final_step=None, **names)  # what a run in progress uses
    backup = cb.SafeBackupAndRestore(os.path.join(out_dir, "backup"), steps_of, double_checkpoint=True,
                                     delete_checkpoint=False)  # kept, so the same command run again resumes at the end
    callbacks = [
        backup,
        cb.TransformerCheckpoint(os.path.join(out_dir, "checkpoints"), steps_of, keep=config.keep_checkpoints),
        cb.PreviewGrid(preview_images, os.path.join(out_dir, "previews"), os.path.join(out_dir, "logs"),
                       config.preview_every, steps_of),
        keras.callbacks.TensorBoard(os.path.join(out_dir, "logs"), update_freq=max(1, min(100, config.checkpoint_every))),
        keras.callbacks.TerminateOnNaN(),
        cb.ProgressLog(config.steps, config.batch_size, steps_of, every=config.log_every),
        cb.StopAtStep(config.steps, steps_of),
    ]
    if backup.restore(model) < config.steps:
        # An epoch is --checkpoint_every steps (a checkpoint and a resume point each); StopAtStep ends
        # the run at --steps, also inside an epoch, so `epochs` only needs to be large enough.
        model.fit(dataset, epochs=config.steps, steps_per_epoch=config.checkpoint_every * accum,
                  callbacks=callbacks, verbose=0, shuffle=False)

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
    write_config(out_dir, config, precision_used=precision, final_step=step, skipped_files=len(skipped), **names)
    logging.info("finished at step %d; transformer weights in %s", step, final)
    print(f"wrote {final}")
    return final


def write_config(out_dir, config, **extra):
    """``<out_dir>/config.json``: the run's settings (recipe filled in) and ``extra``, written atomically."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "config.json")
    with open(path + ".tmp", "w") as f:
        json.dump({**dataclasses.asdict(config), **extra}, f, indent=2)
    os.replace(path + ".tmp", path)


def validate(config):
    """Rejects settings no run can use, with one line naming the setting and its limit (unset ones: the start's)."""
    config = with_start(config)
    positive = ("steps", "batch_size", "accum_steps", "checkpoint_every", "keep_checkpoints")
    for name in positive:
        if getattr(config, name) < 1:
            raise TrainingError(f"--{name}={getattr(config, name)}: must be at least 1")
    if config.image_size < MIN_IMAGE_SIZE:
        raise TrainingError(f"--image_size={config.image_size}: must be at least {MIN_IMAGE_SIZE} pixels "
                            "(the loss network pools 4 times)")
    if config.lr <= 0:
        raise TrainingError(f"--lr={config.lr}: must be positive")
    if config.preview_every < 0 or config.log_every < 0:
        raise TrainingError("--preview_every and --log_every must be >= 0")
    if config.name and not re.fullmatch(r"[A-Za-z0-9_-]+", config.name):
        raise TrainingError(f"--name={config.name}: use letters, digits, '_' and '-' only (it names a folder and a model)")
    if config.teacher and is_multi_style(config):
        raise TrainingError("--teacher: distillation trains a single-style network; give one --style")
    names = multistyle.split_styles(config.style)
    if not names:
        raise TrainingError("--style: give a style name or image path (several, separated by commas)")
    if config.style_scales is not None:
        if len(config.style_scales) != len(names) or not is_multi_style(config):
            raise TrainingError(f"--style_scales: one factor per --style value of a multi-style run ({len(names)} "
                                f"style(s), {len(config.style_scales)} factor(s)); one style takes --style_weight")
        if not all(np.isfinite(x) and x > 0 for x in config.style_scales):
            raise TrainingError(f"--style_scales={','.join(map(str, config.style_scales))}: factors must be positive")
    if config.add_to and not os.path.exists(config.add_to):
        raise TrainingError(f"--add_to={config.add_to}: no such run folder or weights file")
