"""The frozen VGG19 loss network, loaded the Keras way.

``weights`` is ``"auto"`` (the default: the full ImageNet file when it is
already in the Keras cache or ``$TFSTYLE_VGG19_WEIGHTS``, else the genuine
ImageNet blocks 1-3 shipped in the package, ``PACKAGED_BLOCKS_1_TO_3``; never
a download), ``"imagenet"`` (the full file: Keras cache,
``$TFSTYLE_VGG19_WEIGHTS``, or a download checked by md5), a path to a weights
file, or ``"random"``: a seeded He-initialized VGG19 for tests and offline
trials, whose losses say nothing about artistic quality. ``resolve_weights``
turns a value into the file actually used, so logs and run configs name it.

A weights file may hold the whole network (Keras' notop ``.h5``) or only its
first conv layers (an ``.npz`` with keys ``block1_conv1/kernel``,
``block1_conv1/bias``, ..., or a Keras ``.h5`` with fewer layers): the network
is then built up to the deepest layer the file covers, and asking for a layer
beyond it is a ``LossNetworkError`` that names the layers there are.
"""

import hashlib
import os

import keras
import numpy as np
from absl import logging
from keras import layers

WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + WEIGHTS_FILE
WEIGHTS_MD5 = "253f8cb515780f3b799900260a226db6"
WEIGHTS_ENV = "TFSTYLE_VGG19_WEIGHTS"
# The genuine ImageNet VGG19 blocks 1-3 (CC BY 4.0, Visual Geometry Group, Oxford): tfstyle/weights/README.md.
PACKAGED_BLOCKS_1_TO_3 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights",
                                      "vgg19_imagenet_block1_to_block3.npz")
# Mean pixel of ImageNet in BGR order, as in keras.applications.vgg19.preprocess_input.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


class LossNetworkError(RuntimeError):
    """The loss network cannot be built as asked (unknown layer names)."""


class WeightsError(LossNetworkError):
    """VGG19 weights are missing, corrupt, or do not fit the network."""


def _md5(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _keras_cache_path():
    return os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "models", WEIGHTS_FILE)


def cached_imagenet_weights():
    """The full ImageNet notop file at ``$TFSTYLE_VGG19_WEIGHTS`` or in the Keras cache (md5 checked), or None."""
    candidates = [os.environ.get(WEIGHTS_ENV), _keras_cache_path()]
    for path in filter(None, candidates):
        if os.path.isfile(path):
            if _md5(path) != WEIGHTS_MD5:
                raise WeightsError(f"{path}: md5 is not {WEIGHTS_MD5}; the file is corrupt or not the Keras VGG19 notop weights")
            return path
    return None


def resolve_imagenet_weights():
    """Returns a local path to the ImageNet notop weights, downloading them if needed."""
    path = cached_imagenet_weights()
    if path:
        return path
    try:
        return keras.utils.get_file(WEIGHTS_FILE, WEIGHTS_URL, cache_subdir="models", file_hash=WEIGHTS_MD5)
    except Exception as e:  # keras raises bare Exception on fetch failures
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise WeightsError(
            f"VGG19 ImageNet weights not found at {_keras_cache_path()} and could not be downloaded ({reason}); "
            f"download {WEIGHTS_URL} to that path or set {WEIGHTS_ENV}, pass --vgg_weights=PATH, "
            "or --vgg_weights=random for a trial run"
        ) from None


@keras.saving.register_keras_serializable(package="tfstyle")
class VGGPreprocess(layers.Layer):
    """RGB 0..255 -> BGR minus the ImageNet mean: ``vgg19.preprocess_input`` as a layer."""

    def call(self, rgb):
        bgr = rgb[..., ::-1]
        return bgr - keras.ops.convert_to_tensor(IMAGENET_BGR_MEAN, dtype=bgr.dtype)


CONV_LAYERS = tuple(f"block{b}_conv{i}" for b, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4)) for i in range(1, n + 1))


def _read_npz(path):
    with np.load(path) as arrays:
        # float32 whatever the file stores (the packaged blocks 1-3 are float16).
        return {name: (arrays[f"{name}/kernel"].astype(np.float32), arrays[f"{name}/bias"].astype(np.float32))
                for name in CONV_LAYERS if f"{name}/kernel" in arrays.files and f"{name}/bias" in arrays.files}


def _read_h5(path):
    """Conv weights of a Keras legacy-format ``.h5`` (the format of keras.applications' files)."""
    import h5py

    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        found = {}
        for name in CONV_LAYERS:
            if name in group:
                arrays = [np.asarray(group[name][w]) for w in group[name].attrs["weight_names"]]
                if len(arrays) == 2:
                    found[name] = tuple(arrays)
        return found


def read_conv_weights(path):
    """``{layer: (kernel HWIO, bias)}`` for the longest prefix of VGG19's conv layers in ``path``.

    Raises ``WeightsError`` when the file cannot be read, holds no prefix, or a
    kernel's shape is not VGG19's.
    """
    try:
        found = _read_npz(path) if path.endswith(".npz") else _read_h5(path)
    except Exception as e:  # h5py, zipfile and numpy raise many types on corrupt files
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise WeightsError(f"{path}: cannot read VGG19 weights ({reason})") from None
    prefix = {}
    for name in CONV_LAYERS:
        if name not in found:
            break
        prefix[name] = found[name]
    if not prefix:
        raise WeightsError(f"{path}: holds no VGG19 conv weights (expected block1_conv1 first, as in Keras' VGG19)")
    return prefix


def resolve_weights(weights):
    """The loss network a ``--vgg_weights`` value stands for: ``"random"``, ``"imagenet"`` or a file path.

    ``"auto"`` becomes the full ImageNet file when it is already on this machine,
    else the packaged blocks 1-3 file: training starts offline and with no
    download. ``"imagenet"`` stays as it is (``build_loss_network`` may download it).
    A path that is no file is a ``WeightsError``.
    """
    if weights == "auto":
        return cached_imagenet_weights() or PACKAGED_BLOCKS_1_TO_3
    if weights in ("imagenet", "random") or os.path.isfile(weights):
        return weights
    raise WeightsError(f"{weights}: no such VGG19 weights file (expected 'auto', 'imagenet', 'random' "
                       "or a path to an .h5 or .npz)")


def covered_layers(weights):
    """The conv layers a ``--vgg_weights`` value provides: all of VGG19 for ``imagenet`` and ``random``."""
    weights = resolve_weights(weights)
    if weights in ("imagenet", "random"):
        return CONV_LAYERS
    return tuple(read_conv_weights(weights))


def _load_prefix(vgg, path, used_layers):
    """Loads ``path`` into ``vgg``: the whole network the Keras way, else the prefix of conv layers it holds."""
    if not path.endswith(".npz"):
        try:
            vgg.load_weights(path)
            return
        except Exception:  # not a complete VGG19 file: read the layers it does hold
            pass
    conv_weights = read_conv_weights(path)
    available = tuple(conv_weights)
    beyond = [n for n in used_layers if n not in available]
    if beyond:
        raise LossNetworkError(
            f"{path} covers VGG19 only up to {available[-1]}, not {', '.join(dict.fromkeys(beyond))}: "
            f"choose style and content layers among {', '.join(available)}")
    for name, arrays in conv_weights.items():
        layer = vgg.get_layer(name)
        if [tuple(a.shape) for a in arrays] != [tuple(w.shape) for w in layer.weights]:
            raise WeightsError(f"{path}: {name} has shapes {[tuple(a.shape) for a in arrays]}, not VGG19's")
        layer.set_weights(list(arrays))


def _randomize(model, seed):
    """Seeded He-normal kernels and zero biases: activations keep their scale through 16 ReLU convs."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            kernel, bias = layer.get_weights()
            fan_in = np.prod(kernel.shape[:3])
            kernel = rng.normal(0.0, np.sqrt(2.0 / fan_in), kernel.shape).astype(np.float32)
            layer.set_weights([kernel, np.zeros_like(bias)])


def build_loss_network(weights="imagenet", style_layers=None, content_layer=None, seed=0):
    """Frozen VGG19 truncated after the deepest layer used.

    ``style_layers`` and ``content_layer`` default to the full-VGG19 recipe's
    (``tfstyle.recipes.FULL_VGG19``).

    Takes RGB 0..255 images; returns ``{"style": {layer: features}, "content": features}``.
    """
    from tfstyle.recipes import FULL_VGG19

    style_layers = tuple(style_layers or FULL_VGG19.style_layers)
    content_layer = content_layer or FULL_VGG19.content_layer
    weights = resolve_weights(weights)
    if weights == "random":
        logging.warning(
            "Using a RANDOM seeded VGG19 (seed %d) as loss network: losses and images from this run "
            "say NOTHING about artistic quality. Use --vgg_weights=imagenet for real training.", seed)
        path = None
    elif weights == "imagenet":
        path = resolve_imagenet_weights()
    else:
        path = weights

    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    unknown = [n for n in (*style_layers, content_layer) if n not in {l.name for l in vgg.layers}]
    if unknown:
        raise LossNetworkError(f"unknown VGG19 layer(s) {unknown}; use names like block1_conv1 ... block5_conv4")
    if path is None:
        _randomize(vgg, seed)
    else:
        _load_prefix(vgg, path, (*style_layers, content_layer))

    image = keras.Input(shape=(None, None, 3), name="rgb_0_255")
    x = VGGPreprocess(name="vgg_preprocess")(image)
    deepest = max(vgg.layers.index(vgg.get_layer(n)) for n in (*style_layers, content_layer))
    outputs = {}
    for layer in vgg.layers[1 : deepest + 1]:
        x = layer(x)
        if layer.name in style_layers or layer.name == content_layer:
            outputs[layer.name] = x
    net = keras.Model(image, {"style": {n: outputs[n] for n in style_layers}, "content": outputs[content_layer]}, name="vgg19_loss")
    net.trainable = False
    return net
