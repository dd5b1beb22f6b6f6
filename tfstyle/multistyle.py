"""Multi-style networks: their style names, blend specifications, strength, and saving the names.

A multi-style transformer (``build_transformer(num_styles=R)``) has R style rows in
every conditional instance norm. Its *row names* say which style each row holds, in
order; the optional last row ``PHOTO`` is the identity style, trained with the
content loss only, which ``strength`` blends towards in norm space. The *style
names* are the row names without ``PHOTO``: the styles a user mixes.

Row names travel with the weights everywhere:

* ``.weights.h5``: the file attribute ``ROW_NAMES_ATTR`` (JSON); Keras ignores it;
* shipped ``.npz``: the card's ``row_names``;
* a run's ``config.json``: ``row_names``;
* SavedModel: the string variables ``style_names`` and ``row_names``;
* ``.tflite``: the flatbuffer metadata entry ``ROW_NAMES_ATTR`` (JSON).

This module imports nothing heavy except where a function needs it.
"""

import json
import math
import re

PHOTO = "photo"  # the identity style's row name: reserved, no style may be called so
ROW_NAMES_ATTR = "tfstyle_row_names"


class StyleWeightsError(ValueError):
    """A style blend that cannot be used: unknown name, negative / NaN / all-zero weights, wrong count."""


def split_styles(spec):
    """``"mosaic,candy"`` -> ``["mosaic", "candy"]`` (whitespace and empty items dropped)."""
    return [s.strip() for s in str(spec).split(",") if s.strip()]


def style_names(row_names):
    """The user-facing styles: the rows without the identity row."""
    return [n for n in row_names if n != PHOTO]


def has_photo(row_names):
    return PHOTO in row_names


def metric_name(style):
    """The progress-log / TensorBoard key of a style's loss: ``style_<name>`` in [A-Za-z0-9_]."""
    return "style_" + re.sub(r"\W", "_", style)


def check_row_names(row_names):
    """Rejects duplicate names and a misplaced identity row (it must be the last row)."""
    if len(set(row_names)) != len(row_names):
        dupes = sorted({n for n in row_names if row_names.count(n) > 1})
        raise StyleWeightsError(f"style names must be distinct: {', '.join(dupes)} given twice")
    if PHOTO in row_names[:-1]:
        raise StyleWeightsError(f"'{PHOTO}' is the identity style's name (--identity_style): give the style image "
                                "another file name")
    return list(row_names)


# ----------------------------------------------------------------------------- blends


def parse_number(text, what):
    try:
        value = float(text)
    except ValueError:
        raise StyleWeightsError(f"{what}: '{text}' is not a number") from None
    return value


def check_weights(weights, names):
    """Checks a weight vector for ``names``; returns it normalized to sum 1 (a list of floats)."""
    weights = [float(w) for w in weights]
    if len(weights) != len(names):
        raise StyleWeightsError(f"{len(weights)} style weight(s) for {len(names)} style(s) "
                                f"({', '.join(names)}): give one weight per style")
    for name, w in zip(names, weights):
        if math.isnan(w) or math.isinf(w):
            raise StyleWeightsError(f"style weight of '{name}' is {w}: weights must be finite numbers")
        if w < 0:
            raise StyleWeightsError(f"style weight of '{name}' is {w:g}: weights must be >= 0")
    total = sum(weights)
    if total <= 0:
        raise StyleWeightsError("all style weights are zero: give at least one style a positive weight")
    return [w / total for w in weights]


def parse_blend(spec, names):
    """``"mosaic:0.7,candy:0.3"`` (a weight defaults to 1) -> normalized weights over ``names``.

    Styles not mentioned get 0; a name given twice, or not among ``names``, is an error.
    """
    weights = dict.fromkeys(names, 0.0)
    seen = set()
    items = split_styles(spec)
    if not items:
        raise StyleWeightsError(f"no style given: pick one or more of {', '.join(names)}, e.g. "
                                f"--style={names[0]} or --style={names[0]}:0.5,{names[-1]}:0.5")
    for item in items:
        name, _, value = item.partition(":")
        name = name.strip()
        if name not in weights:
            raise StyleWeightsError(f"unknown style '{name}': this network holds {', '.join(names)}")
        if name in seen:
            raise StyleWeightsError(f"style '{name}' given twice")
        seen.add(name)
        weights[name] = parse_number(value.strip(), f"weight of '{name}'") if value.strip() else 1.0
    return check_weights([weights[n] for n in names], names)


def check_strength(strength):
    strength = float(strength)
    if not 0.0 <= strength <= 1.0:  # also False for NaN
        raise StyleWeightsError(f"strength {strength:g}: must be between 0 (the photo) and 1 (the full style)")
    return strength


def row_weights(weights, strength, row_names):
    """The network's ``style_weights`` row for style ``weights`` (over ``style_names(row_names)``, summing
    to 1) at ``strength``, and the pixel fade still to apply (1.0 when none).

    With an identity row, strength s mixes in norm space: s * weights + (1 - s) * photo, and no
    pixel fade is needed (but ``identity_correction``). Without one, the row is ``weights`` and the
    output is to be faded as s * stylized + (1 - s) * photo in pixels.
    """
    strength = check_strength(strength)
    weights = list(weights)
    if has_photo(row_names):
        return [strength * w for w in weights] + [1.0 - strength], 1.0
    return weights, strength


def identity_correction(strength, row_names):
    """How much of (photo - the identity row's output) to add to a norm-space blend at ``strength``.

    The identity row is trained towards the photo but does not reach it (the shipped network's is
    about 20 dB from it: softer, less saturated), so strength 0 would not be the photo. Adding
    (1 - s) times the identity row's error makes strength 0 the photo exactly and leaves strength 1
    untouched; in between it fades the error out linearly. 0 without an identity row.
    """
    return 1.0 - check_strength(strength) if has_photo(row_names) else 0.0


def single_style(transformer, style):
    """The single-style network of a multi-style ``transformer`` at one style row or one fixed mix.

    ``style``: a row name, or a weight per row (the network's ``style_weights`` row). The result
    has the same convolutions and plain instance norms holding ``weights @ scale`` and
    ``weights @ offset``: it computes what ``transformer`` computes with that ``style_weights``
    row (a conditional norm is the plain norm at the mixed scale and offset), so one style of a
    multi-style network ships, exports and serves as a single-style network does.
    """
    import numpy as np

    from tfstyle import transformer as tr

    rows = list(getattr(transformer, "row_names", None) or [])
    if isinstance(style, str):
        if style not in rows:
            raise StyleWeightsError(f"unknown style '{style}': this network holds {', '.join(rows) or 'one style'}")
        style = [float(n == style) for n in rows]
    weights = np.asarray(style, np.float32)
    single = tr.build_transformer(**tr.architecture(transformer))
    for layer in single.layers:
        if not layer.weights:
            continue
        source = transformer.get_layer(layer.name)
        if isinstance(source, tr.ConditionalInstanceNormalization):
            layer.set_weights([weights @ source.scale.numpy(), weights @ source.offset.numpy()])
        else:
            layer.set_weights(source.get_weights())
    return single


# ----------------------------------------------------------------------------- files


def read_h5_row_names(path):
    """Row names stored in a ``.weights.h5`` (None when absent: a single-style file, or an old one)."""
    import h5py

    with h5py.File(path, "r") as f:
        value = f.attrs.get(ROW_NAMES_ATTR)
        if value is not None:
            return json.loads(value)
        rows = [f[key].shape[0] for key in _conditional_scale_keys(f)]
    return [f"style{i + 1}" for i in range(rows[0])] if rows else None


def _conditional_scale_keys(f):
    layers = f.get("layers")
    if layers is None:
        return []
    return [f"layers/{k}/vars/0" for k in layers if k.startswith("conditional_instance_normalization")
            and "0" in layers[k].get("vars", {})]


def write_h5_row_names(path, row_names):
    import h5py

    with h5py.File(path, "a") as f:
        f.attrs[ROW_NAMES_ATTR] = json.dumps(list(row_names))


def read_tflite_row_names(content):
    """Row names from a ``.tflite`` flatbuffer's metadata (None when absent)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    for entry in model.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name == ROW_NAMES_ATTR:
            return json.loads(bytes(model.buffers[entry.buffer].data).decode())
    return None


def add_tflite_row_names(content, row_names):
    """``content`` (flatbuffer bytes) with the row names as the metadata entry ``ROW_NAMES_ATTR``."""
    import numpy as np
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(list(row_names)).encode(), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = ROW_NAMES_ATTR
    entry.buffer = len(model.buffers) - 1
    model.metadata = (model.metadata or []) + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
