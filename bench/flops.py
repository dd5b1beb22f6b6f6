"""FLOPs of the transformer net: per pixel, per image, counted two ways.

``python bench/flops.py --sizes=256,512,1024``

``analytic``: 2 x multiply-adds of every Conv2D as tfstyle runs it, at the
shapes the net sees: k*k*Cin*Cout per output pixel; 2*2*Cin*Cout for the
upsampling convs, which run as 2x2 convs at the low resolution; 5*5*4*Cin*Cout
for the 9x9 convs, which run on a space-to-depth grid (19 of those 100 taps are
zeros, but they are computed). ``tf_profiler``:
TensorFlow's own float-op count of the traced graph (also counts the instance
norm, padding-free elementwise ops and bias adds), as a cross-check.
A FLOP here is one multiply or one add (1 MAC = 2 FLOPs).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

import tensorflow as tf  # noqa: E402

from tfstyle import transformer as T  # noqa: E402


def transformer_macs(h, w, textbook=False, width=1.0, residual_blocks=T.NUM_RESIDUAL_BLOCKS):
    """Multiply-adds of all convs of the transformer for an h x w input (padded to a multiple of 4).

    ``textbook=True`` counts the textbook layers (upsample, then k x k conv; 9x9 convs at full
    resolution), as in pytorch/examples' fast_neural_style. ``width`` and ``residual_blocks``
    as in ``build_transformer``."""
    h, w = h + (-h) % 4, w + (-w) % 4

    def taps(k, space_to_depth=False, upsample=False):
        if textbook:
            return k * k
        if upsample:  # Conv2D(upsample=2): every output pixel is a 2x2 conv of the input
            return ((k + 1) // 2) ** 2
        if space_to_depth:  # Conv2D(space_to_depth=2): a (k+1)/2 square conv with 4x Cin per 4 output pixels
            return ((k + 1) // 2) ** 2 * 4
        return k * k

    macs, cin = 0, 3
    for cout, k, stride in T.DOWNSAMPLE:
        cout = T.scaled(cout, width)
        h, w = h // stride, w // stride
        macs += h * w * taps(k, space_to_depth=T.space_to_depth_block(k) == 2) * cin * cout
        cin = cout
    macs += 2 * residual_blocks * h * w * 9 * cin * cin
    for cout, k in T.UPSAMPLE:
        cout = T.scaled(cout, width)
        h, w = 2 * h, 2 * w
        macs += h * w * taps(k, upsample=True) * cin * cout
        cin = cout
    macs += h * w * taps(9, space_to_depth=T.space_to_depth_block(9) == 2) * cin * 3  # the output conv
    return macs


def transformer_flops(h, w, textbook=False, **architecture):
    return 2 * transformer_macs(h, w, textbook, **architecture)


def profiler_flops(model, size):
    """TF profiler float-op count of the model's graph at batch 1, size x size."""
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, size, size, 3], tf.float32))
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    info = tf.compat.v1.profiler.profile(fn.graph, options=opts)
    return info.total_float_ops


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="256,512,1024")
    p.add_argument("--quick", action="store_true", help="64 px only: for tests")
    args = p.parse_args()
    sizes = [64] if args.quick else [int(s) for s in args.sizes.split(",")]
    model = T.build_transformer()
    for size in sizes:
        flops = transformer_flops(size, size)
        prof = profiler_flops(model, size)
        common.emit({"bench": "flops", "size": size, "gmacs_analytic": round(flops / 2e9, 2),
                     "gflop_analytic": round(flops / 1e9, 2), "flops_per_pixel": round(flops / size ** 2),
                     "gflop_tf_profiler": round(prof / 1e9, 2), "flops_per_pixel_tf_profiler": round(prof / size ** 2)})


if __name__ == "__main__":
    main()
