"""Per-op profile of the transformer net in TFLite: where does inference time go?

``python bench/profile_ops.py --size=1024 --modes=float32,int8``

The Python TFLite interpreter has no op profiler, so every op of the network
(each padding, conv, instance norm + ReLU, upsampling conv, residual add, output
head) is converted on its own, with its exact input shape at ``--size``, using
the very layer classes of ``tfstyle.transformer``, and timed with the same
interpreter settings (XNNPACK, ``--threads``). Identical ops (the 10 residual
convs) are timed once and counted N times. One JSON line per op, then one per
op kind, then ``sum_of_ops`` (to compare with the whole model's latency from
``bench/inference.py``: the difference is what splitting the graph costs).
"""

import argparse
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

from tfstyle import transformer as T  # noqa: E402
from tfstyle.testing import textbook  # noqa: E402


def network_ops(size, before=False, width=1.0, residual_blocks=T.NUM_RESIDUAL_BLOCKS):
    """(kind, name, input shape [1, H, W, C], layer factory) for every op of the net at size x size,
    for the architecture ``T.build_transformer(width=width, residual_blocks=residual_blocks)`` builds.

    ``before``: the upsampling in its textbook form (resize, pad, 3x3 conv at 2x)
    and the 9x9 convs as plain convs (``textbook.use_textbook_layers`` swaps the rest).
    """
    ops = []
    s = size + (-size) % 4

    def block(name, h, cin, cout, k, stride, norm=True, relu=True):
        p = k // 2
        ops.append(("pad", f"{name}_pad", (1, h, h, cin), lambda: T.ReflectionPadding2D(p)))
        space_to_depth = 1 if before else T.space_to_depth_block(k)
        ops.append(("conv", f"{name}_conv", (1, h + 2 * p, h + 2 * p, cin),
                    lambda: T.Conv2D(cout, k, strides=stride, padding="valid", space_to_depth=space_to_depth)))
        out = (h + 2 * p - k) // stride + 1
        if norm:
            norm_op(name, out, cout, relu)
        return out

    def norm_op(name, h, c, relu):
        def norm_layer():
            seq = [T.InstanceNormalization()]
            if relu:
                seq.append(layers.ReLU())
            return keras.Sequential(seq)
        ops.append(("norm" + ("+relu" if relu else ""), f"{name}_norm", (1, h, h, c), norm_layer))

    ops.append(("rescale", "to_unit", (1, size, size, 3), lambda: layers.Rescaling(1 / 255.0)))
    h, c = s, 3
    for i, (filters, k, stride) in enumerate(T.DOWNSAMPLE, start=1):
        cout = T.scaled(filters, width)
        h = block(f"down{i}", h, c, cout, k, stride)
        c = cout
    for i in range(1, residual_blocks + 1):
        block(f"res{i}_a", h, c, c, 3, 1)
        block(f"res{i}_b", h, c, c, 3, 1, relu=False)
        ops.append(("add", f"res{i}_add", (1, h, h, c), lambda: ResidualAddStandIn()))
    for i, (filters, k) in enumerate(T.UPSAMPLE, start=1):
        cout = T.scaled(filters, width)
        if before:
            ops.append(("upsample", f"up{i}_resize", (1, h, h, c), lambda: ResizeNearestStandIn()))
            h = block(f"up{i}", 2 * h, c, cout, k, 1)
        else:
            ops.append(("upsample+conv", f"up{i}_conv", (1, h, h, c),
                        lambda cout=cout, k=k: T.Conv2D(cout, k, upsample=2)))
            h = 2 * h
            norm_op(f"up{i}", h, cout, relu=True)
        c = cout
    block("out", h, c, 3, 9, 1, norm=False, relu=False)
    ops.append(("tanh+rescale", "out_tanh", (1, h, h, 3), lambda: keras.Sequential(
        [layers.Activation("tanh"), layers.Rescaling(127.5, offset=127.5)])))
    return ops


class ResidualAddStandIn(layers.Layer):
    """x + f(x) stand-in for the residual add: two different tensors of the same shape."""

    def call(self, x):
        return x + x * 0.5


class ResizeNearestStandIn(layers.Layer):
    """The x2 upsampling of the textbook network (pytorch/examples' fast_neural_style): a resize op with a computed size."""

    def call(self, x):
        import tensorflow as tf

        return tf.cast(tf.image.resize(x, tf.shape(x)[1:3] * 2, method="nearest"), x.dtype)


def calibration(shape, n=4):
    """Conv-output-like data: every channel has its own mean (as real activations do), spread 50."""
    rng = np.random.default_rng(0)
    means = rng.normal(0, 30, shape[-1])
    return [(rng.normal(0, 50, shape) + means).astype(np.float32) for _ in range(n)]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--modes", default="float32,int8", help="comma list of float32, fp16, int8")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--layers", choices=("current", "before"), default="current",
                   help="'before': the MIRROR_PAD / tf.nn.moments / resize / full-resolution 9x9 conv layers of the textbook network (pytorch/examples' fast_neural_style)")
    p.add_argument("--ops", default="", help="comma list of op names to time (default: all), e.g. down1_conv,out_conv")
    p.add_argument("--width", type=float, default=1.0, help="the network's width, as tfstyle train --width")
    p.add_argument("--residual_blocks", type=int, default=T.NUM_RESIDUAL_BLOCKS)
    p.add_argument("--quick", action="store_true", help="64 px, 1 repeat, a few ops: for tests")
    args = p.parse_args()
    if args.layers == "before":
        textbook.use_textbook_layers()
    if args.quick:
        args.size, args.repeats = 64, 1
    common.set_threads(args.threads)
    keras.utils.set_random_seed(0)
    ops = network_ops(args.size, before=args.layers == "before", width=args.width,
                      residual_blocks=args.residual_blocks)
    if args.quick:
        args.ops = args.ops or "down1_pad,down1_conv,down1_norm,up1_conv,res1_add"
    if args.ops:
        ops = [o for o in ops if o[1] in args.ops.split(",")]
    meta = {"bench": "profile_ops", "layers": args.layers, "width": args.width,
            "residual_blocks": args.residual_blocks, "size": args.size, "threads": args.threads, **common.machine()}
    for mode in args.modes.split(","):
        cache, by_kind, total = {}, collections.defaultdict(float), 0.0
        for kind, name, shape, factory in ops:
            key = (kind, shape, name.split("_")[-1] if kind == "conv" else "", _conv_signature(name, ops))
            if key not in cache:
                layer = factory()
                calib = calibration(shape)
                content = common.convert_fixed(layer, shape, mode, calib, io_int8=True)
                run, _ = common.tflite_runner(content, shape, args.threads)
                cache[key] = common.time_call(run, repeats=args.repeats, warmup=1)[0]
            seconds = cache[key]
            by_kind[kind] += seconds
            total += seconds
            common.emit({**meta, "mode": mode, "op": name, "kind": kind, "input_shape": list(shape),
                         "ms": round(1000 * seconds, 2)})
        for kind, seconds in sorted(by_kind.items(), key=lambda kv: -kv[1]):
            common.emit({**meta, "mode": mode, "kind_total": kind, "ms": round(1000 * seconds, 1),
                         "share": round(seconds / total, 3)})
        common.emit({**meta, "mode": mode, "sum_of_ops_ms": round(1000 * total, 1)})


def _conv_signature(name, ops):
    """Convs with the same input shape differ by their kernel/output: key them by layer config."""
    base = name.rsplit("_", 1)[0]
    return base.split("_")[0].rstrip("0123456789")  # down / res / up / out


if __name__ == "__main__":
    main()
