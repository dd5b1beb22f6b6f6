"""Finding and loading trained style networks: runs, exports and the styles shipped with tfstyle.

A trained network is found, for a style name, in this order:

1. your training run: ``<runs_dir>/<style>/transformer.weights.h5``;
2. your latest export: ``<saved_models>/<style>/<version>/`` (TF Serving's layout);
3. the weights shipped in the package: ``tfstyle/pretrained/<style>.npz``.

Shipped weights are stored in float16 (half the size; the network runs in
float32 and its output moves by less than a pixel level) together with a card
that says how they were trained: ``tfstyle styles`` prints it.
"""

import glob
import json
import os
import re

import numpy as np

from tfstyle import multistyle, recipes, styles

PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")
CARD_KEY = "__card__"
WEIGHTS_EXTENSIONS = (".h5", ".npz")


class ModelError(RuntimeError):
    """No trained network where one was asked for, or a file that is not one."""


def _reason(e):
    return str(e).splitlines()[0] if str(e) else type(e).__name__


# ----------------------------------------------------------------------------- shipped weights


def pretrained_path(style):
    return os.path.join(PRETRAINED_DIR, f"{styles.style_name(style)}.npz")


def pretrained_styles():
    """Names of the styles whose trained weights ship with tfstyle."""
    return sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(PRETRAINED_DIR, "*.npz")))


def save_pretrained(model, path, card):
    """Writes ``model``'s weights as float16 with ``card`` (a JSON-able dict saying how they were made).

    A multi-style network's row names go into the card (``row_names``).
    """
    arrays = {f"{i:03d}:{w.path}": np.asarray(w.numpy(), np.float16) for i, w in enumerate(model.weights)}
    if getattr(model, "row_names", None):
        card = {**card, "row_names": list(model.row_names)}
    arrays[CARD_KEY] = np.array(json.dumps(card, sort_keys=True))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def pretrained_card(path):
    with np.load(path) as arrays:
        return json.loads(str(arrays[CARD_KEY])) if CARD_KEY in arrays.files else {}


def _load_npz_into(model, path):
    with np.load(path) as arrays:
        keys = sorted(k for k in arrays.files if k != CARD_KEY)
        if len(keys) != len(model.weights):
            raise ModelError(f"{path}: holds {len(keys)} arrays, the network has {len(model.weights)} weights")
        for key, weight in zip(keys, model.weights):
            value = arrays[key]
            if tuple(value.shape) != tuple(weight.shape):
                raise ModelError(f"{path}: {key} has shape {value.shape}, expected {tuple(weight.shape)}")
            weight.assign(value.astype(np.float32))


# ----------------------------------------------------------------------------- Keras weights


def row_names_of(path):
    """The style rows of the network in a weights file (``tfstyle.multistyle``), or None for a single style."""
    from tfstyle import multistyle

    try:
        if path.endswith(".npz"):
            return pretrained_card(path).get("row_names")
        return multistyle.read_h5_row_names(path)
    except Exception as e:  # h5py / numpy raise many types for unreadable files
        raise ModelError(f"{path}: not transformer weights ({_reason(e)})") from None


def _h5_kernel_shapes(path):
    """Conv kernel shapes in a Keras 3 ``.weights.h5``, in layer order (``layers/conv2d``, ``conv2d_1``, ...)."""
    import h5py

    with h5py.File(path, "r") as f:
        names = [k for k in f.get("layers", {}) if re.fullmatch(r"conv2d(_\d+)?", k)]
        names.sort(key=lambda k: int(k[len("conv2d_"):] or 0))
        return [f[f"layers/{k}/vars/0"].shape for k in names]


def _npz_kernel_shapes(path):
    with np.load(path) as arrays:
        return [arrays[k].shape for k in sorted(k for k in arrays.files if k != CARD_KEY) if arrays[k].ndim == 4]


def build_for(kernel_shapes, row_names=None, source=""):
    """An untrained transformer of the architecture these conv kernels belong to (width, residual
    blocks), with ``row_names`` style rows (None: single style); ``source`` names the file in errors."""
    from tfstyle.transformer import architecture_of_kernels, build_transformer

    try:
        arch = architecture_of_kernels(kernel_shapes)
    except ValueError as e:
        raise ModelError(f"{source}: not transformer weights ({e})") from None
    model = build_transformer(num_styles=len(row_names) if row_names else None, **arch)
    if row_names:
        model.row_names = tuple(row_names)
    return model


def load_transformer(path):
    """A transformer with the weights in ``path``: a ``.weights.h5`` of training or a shipped ``.npz``.

    The network is built with the architecture the file holds (width and residual blocks,
    read from its kernel shapes). A multi-style network comes back with its number of
    style rows and with ``row_names`` set (``tfstyle.multistyle``).
    """
    if not os.path.isfile(path):
        raise ModelError(f"{path}: no such weights file")
    names = row_names_of(path)
    try:
        shapes = _npz_kernel_shapes(path) if path.endswith(".npz") else _h5_kernel_shapes(path)
    except Exception as e:  # h5py / numpy raise many types for unreadable files
        raise ModelError(f"{path}: not transformer weights ({_reason(e)})") from None
    model = build_for(shapes, names, path)
    try:
        if path.endswith(".npz"):
            _load_npz_into(model, path)
        else:
            model.load_weights(path)
    except ModelError:
        raise
    except Exception as e:  # h5py / keras / numpy raise many types for unreadable or mismatched files
        raise ModelError(f"{path}: not transformer weights ({_reason(e)})") from None
    return model


def checkpoints(run_dir):
    """The checkpoints a run left, oldest first."""
    return sorted(glob.glob(os.path.join(run_dir, "checkpoints", "transformer_step*.weights.h5")))


def run_config(weights_path):
    """The ``config.json`` of the training run that wrote ``weights_path`` (final weights or a checkpoint), or {}."""
    for run in (os.path.dirname(weights_path), os.path.dirname(os.path.dirname(weights_path))):
        try:
            with open(os.path.join(run, "config.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            continue
    return {}


def style_scales(config):
    """{style name: its factor on ``style_weight``} of a multi-style run's config (``--style_scales``); {} if unset."""
    names = [styles.style_name(s) for s in multistyle.split_styles(config.get("style", ""))]
    return dict(zip(names, config.get("style_scales") or ()))


def trained_loss(weights_path, row=None):
    """``(loss settings, loss network)`` that ``weights_path`` was trained with: from its run's
    ``config.json``, else from its shipped card; ``({}, "")`` when neither says.

    The settings are any of ``recipes.SETTINGS`` the source names (a loss recorded without the
    pyramid settings gets ``recipes.SINGLE_SCALE``, what it meant). ``row``: a style of a multi-style
    network, whose ``style_weight`` then carries that style's ``style_scales`` factor.
    """
    config = run_config(weights_path)
    if config:
        loss, network = {k: config[k] for k in recipes.SETTINGS if config.get(k) is not None}, config.get("vgg_weights", "")
        scales = style_scales(config)
    elif weights_path.endswith(".npz"):
        card = pretrained_card(weights_path)
        loss, network, scales = dict(card.get("loss", {})), card.get("loss_network", ""), card.get("style_scales", {})
    else:
        return {}, ""
    if row is not None and "style_weight" in loss:
        loss["style_weight"] *= scales.get(row, 1.0)
    if "style_weight" in loss:  # a loss recorded before the pyramid settings existed was single-scale
        loss = {**recipes.SINGLE_SCALE, **loss}
    return loss, network


def trained_styles(runs_dir="runs", saved_models="saved_models"):
    """Names ``find_network`` finds a trained network for: runs with final weights, exports, shipped weights."""
    names = set(pretrained_styles())
    names.update(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(runs_dir, "*", "transformer.weights.h5")))
    if saved_models:
        names.update(n for n in (os.listdir(saved_models) if os.path.isdir(saved_models) else [])
                     if version_dirs(os.path.join(saved_models, n)))
    return sorted(names)


def unknown_style(style, runs_dir="runs", saved_models="saved_models"):
    """The one error for a ``--style`` that is neither a trained network nor a painting, in every command."""
    return styles.UnknownStyleError(
        f"unknown style '{style}': trained styles here: {', '.join(trained_styles(runs_dir, saved_models))}; "
        f"paintings to train one on: {', '.join(styles.STYLE_NAMES)} or a path to an image file")


def no_trained_network(style, runs_dir="runs", saved_models="saved_models", model_flag="--weights"):
    """The error for a ``--style`` with no trained network, decided here once for every command.

    A stopped run points to its latest checkpoint (passed with ``model_flag``, the flag the command
    has for a network file); a painting (bundled name or image path) gets the training command; any
    other name is an unknown style. ``tfstyle stylize`` answers such a painting with the any-painting
    network instead (``stylize.load_stylizer``).
    """
    name = styles.style_name(style)
    found = checkpoints(os.path.join(runs_dir, name))
    if found:
        return ModelError(f"no trained network for {name}: its run stopped before its end; its latest checkpoint is "
                          f"{found[-1]}: pass {model_flag}={found[-1]}, or run the same training command again to finish it")
    if style in styles.STYLE_NAMES or os.path.isfile(style):
        return ModelError(f"no trained network for {name}; train one with "
                          f"`tfstyle train --style={style} --data_dir=PHOTOS`")
    return unknown_style(style, runs_dir, saved_models)


def find_network(style, runs_dir="runs", saved_models="saved_models", model_flag="--weights"):
    """What a ``--style`` name means, the same in every command: the file or folder of its trained network.

    In order: your run's final weights (``<runs_dir>/<name>/transformer.weights.h5``), your latest
    export (``<saved_models>/<name>/<version>``; ``saved_models=None`` skips exports), the weights
    shipped with tfstyle. Else the error of ``no_trained_network``. A style of a multi-style
    network is picked with a blend (``NAME:1``, ``tfstyle.stylize``), not by its name alone.
    """
    path = styles.trained_weights_path(style, runs_dir)
    if os.path.isfile(path):
        return path
    latest = latest_savedmodel(saved_models, style) if saved_models else None
    if latest:
        return latest
    if os.path.isfile(pretrained_path(style)):
        return pretrained_path(style)
    raise no_trained_network(style, runs_dir, saved_models, model_flag)


def find_weights(style, runs_dir="runs", weights=None, saved_models="saved_models"):
    """``weights`` if given (a file, or a SavedModel folder), else ``find_network``'s answer for ``style``."""
    if weights:
        if not os.path.exists(weights):
            raise ModelError(f"{weights}: no such weights file")
        return weights
    return find_network(style, runs_dir, saved_models)


def style_image(style, runs_dir="runs", saved_models="saved_models"):
    """The painting of ``style``: a bundled name, an image path, or the painting its run was trained on."""
    if style in styles.STYLE_NAMES or os.path.isfile(style):
        return styles.resolve_style(style)
    painting = run_config(styles.trained_weights_path(style, runs_dir)).get("style", "")
    if painting and "," not in painting and (painting in styles.STYLE_NAMES or os.path.isfile(painting)):
        return styles.resolve_style(painting)
    raise unknown_style(style, runs_dir, saved_models)


def load_network(spec, runs_dir="runs", saved_models="saved_models", model_flag="--weights"):
    """(Keras transformer, the file or folder it came from) for ``spec``, which is one of:

    a weights file (``.h5``, shipped ``.npz``); a SavedModel folder, or a folder of
    its numbered versions (the latest is taken); a training run folder (its final
    weights); a style name (or a style image's path): its run under ``runs_dir``, else
    its latest export under ``saved_models``, else the weights shipped with tfstyle (``find_network``;
    ``model_flag`` is the command's flag for a network file, named in its errors).
    """
    path = spec.rstrip(os.sep) or spec
    if path.endswith(WEIGHTS_EXTENSIONS):
        if not os.path.isfile(path):
            raise ModelError(f"{path}: no such file or directory")
        return load_transformer(path), path
    if os.path.isdir(path):
        if is_savedmodel_dir(path):
            return weights_from_savedmodel(path), path
        final = os.path.join(path, "transformer.weights.h5")
        if os.path.isfile(final):
            return load_transformer(final), final
        latest = latest_savedmodel(os.path.dirname(path) or ".", os.path.basename(path))
        if latest:
            return weights_from_savedmodel(latest), latest
        raise ModelError(f"{path}: not a SavedModel directory (no saved_model.pb), a folder of its versions, "
                         "nor a training run with transformer.weights.h5")
    # A style name, or a style image's path: its run, its export, the shipped weights (find_network).
    found = find_network(path, runs_dir, saved_models, model_flag)
    return load_network(found, runs_dir, saved_models)


# ----------------------------------------------------------------------------- exports


def version_dirs(base):
    """{version: path} of the numeric folders TF Serving would load under ``base``."""
    if not os.path.isdir(base):
        return {}
    return {int(n): os.path.join(base, n) for n in os.listdir(base) if re.fullmatch(r"\d+", n)}


def latest_savedmodel(out_dir, style):
    """Path of the highest version exported for ``style`` under ``out_dir``, or None."""
    versions = version_dirs(os.path.join(out_dir, styles.style_name(style)))
    return versions[max(versions)] if versions else None


def is_savedmodel_dir(path):
    return os.path.isfile(os.path.join(path, "saved_model.pb"))


def weights_from_savedmodel(path):
    """Rebuilds the Keras transformer from an exported SavedModel (for tiled stylize)."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(path)
    except Exception as e:  # TF raises OSError, ValueError or its own errors for broken folders
        raise ModelError(f"{path}: cannot load as a SavedModel ({_reason(e)})") from None
    values = getattr(loaded, "transformer_weights", None)
    names = getattr(loaded, "row_names", None)
    names = [n.decode() for n in names.numpy().tolist()] if names is not None else None
    if values is None:
        raise ModelError(f"{path}: not a tfstyle SavedModel (no transformer weights inside)")
    model = build_for([v.shape for v in values if len(v.shape) == 4], names, path)
    if len(values) != len(model.weights):
        raise ModelError(f"{path}: not a tfstyle SavedModel (no transformer weights inside)")
    for w, v in zip(model.weights, values):
        if tuple(w.shape) != tuple(v.shape):
            raise ModelError(f"{path}: weight {w.path} has shape {tuple(v.shape)}, expected {tuple(w.shape)}")
        w.assign(v.numpy())
    return model
