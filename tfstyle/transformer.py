"""The feed-forward image transformation network of Johnson et al. (2016).

Every layer is chosen so the same graph trains fast, exports to a SavedModel with
dynamic H x W, and converts to a full-integer INT8 TFLite model:

* instance normalization is written with mean / variance ops (Keras'
  ``GroupNormalization`` leaves float ops in an INT8 model);
* upsampling is nearest-neighbour x2 followed by a 3x3 conv (transposed
  convolutions leave checkerboard artifacts), computed at the low resolution
  as four 2x2 convs (``Conv2D(..., upsample=2)``): the same function with 4/9 of
  the multiply-adds, and no resize op (Keras ``UpSampling2D`` does not convert
  to TFLite under dynamic shapes);
* padding is reflection padding, so borders carry no dark frame;
* the two 9x9 convs, with 3 input or 3 output channels, run as 5x5 convs on a
  space-to-depth grid (``Conv2D(..., space_to_depth=2)``): the same function,
  with 12 channels where GEMM kernels were mostly idle on 3.

Padding, instance norm and conv biases are traced in one of two forms that compute
the same function: by default the forms TensorFlow's own runtime (training, the
SavedModel, TF Serving) runs fast, and inside ``tflite_forms()`` (used by
``tfstyle.tflite.convert``) the forms LiteRT's XNNPACK and full-integer INT8 kernels run
fast; each layer's docstring says which ops and why.
"""

import contextlib
import threading

import keras
import tensorflow as tf
from keras import layers

# (filters, kernel, stride) of the downsampling trunk, then residual blocks, then upsampling, at width 1.
DOWNSAMPLE = ((32, 9, 1), (64, 3, 2), (128, 3, 2))
NUM_RESIDUAL_BLOCKS = 5
UPSAMPLE = ((64, 3), (32, 3))


_forms = threading.local()


@contextlib.contextmanager
def tflite_forms():
    """Layers traced inside this block use the ops LiteRT runs fast (see the module docstring)."""
    previous = getattr(_forms, "tflite", False)
    _forms.tflite = True
    try:
        yield
    finally:
        _forms.tflite = previous


def tracing_for_tflite():
    return getattr(_forms, "tflite", False)


def scaled(filters, width):
    """The filter count of a conv with ``filters`` at width 1, at ``width`` (at least 1)."""
    return max(1, int(round(filters * width)))


@keras.saving.register_keras_serializable(package="tfstyle")
class ReflectionPadding2D(layers.Layer):
    """Pads H and W by mirroring the border, as Johnson et al. do before every conv."""

    def __init__(self, padding, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, x):
        p = self.padding
        if not p:
            return x
        if not tracing_for_tflite():  # one MirrorPad op: TensorFlow's runtime pads without the copies of concats
            return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")
        # For TFLite, the same values as tf.pad(x, ..., mode="REFLECT") written as slices and concats:
        # TFLite's MIRROR_PAD kernel is slow (measured 108 ms float / 177 ms int8 for
        # one 256x256x128 pad on 2 cores, 30% of a 1024x1024 float inference) and
        # XNNPACK does not take it, which splits the graph into 17 partitions.
        # Slices + concats run inside XNNPACK at memcpy speed (17 ms / 1 ms), in
        # float and INT8, for any H x W larger than the padding.
        for axis in (1, 2):
            index = lambda start, stop: (slice(None),) * axis + (slice(start, stop),)  # noqa: E731
            before = [x[index(i, i + 1)] for i in range(p, 0, -1)]  # rows p, ..., 1
            after = [x[index(-1 - i, -i)] for i in range(1, p + 1)]  # rows -2, ..., -1-p
            if p > 1:  # XNNPACK concatenates at most a few tensors at once
                before, after = [tf.concat(before, axis)], [tf.concat(after, axis)]
            x = tf.concat(before + [x] + after, axis)
        return x

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        grow = lambda d: None if d is None else d + 2 * self.padding  # noqa: E731
        return (n, grow(h), grow(w), c)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


def moments(x):
    """Per-image, per-channel mean, deviation ``x - mean`` and variance over H and W.

    Written so that the only full-size ops are SUB and MUL (``d * d``): those run
    inside XNNPACK in float and INT8, where tf.nn.moments' SQUARED_DIFFERENCE has no
    fast INT8 kernel (measured 236 ms vs 9 ms per 256x256x128 norm).
    """
    mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    d = x - mean
    return mean, d, tf.reduce_mean(d * d, axis=[1, 2], keepdims=True)


def instance_norm(x, scale, offset, epsilon):
    """``(x - mean) * rsqrt(var + epsilon) * scale + offset`` in float32; ``scale`` and ``offset``
    are [C] or per-image [B, 1, 1, C].

    TensorFlow's runtime: tf.nn.moments (one SquaredDifference) and one multiply-add,
    three full-size ops where the LiteRT form (``moments``) has four.
    """
    x = tf.cast(x, tf.float32)
    if tracing_for_tflite():
        _, d, variance = moments(x)
        return d * (tf.math.rsqrt(variance + epsilon) * scale) + offset
    mean, variance = tf.nn.moments(x, axes=[1, 2], keepdims=True)
    factor = tf.math.rsqrt(variance + epsilon) * scale
    return x * factor + (offset - mean * factor)


@keras.saving.register_keras_serializable(package="tfstyle")
class InstanceNormalization(layers.Layer):
    """Per-image, per-channel normalization with a learned scale and offset.

    Statistics are computed in float32 even under a mixed-precision policy: the
    variance of 128 large activations overflows float16.
    """

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = input_shape[-1]
        self.scale = self.add_weight(name="scale", shape=(channels,), initializer="ones")
        self.offset = self.add_weight(name="offset", shape=(channels,), initializer="zeros")

    def call(self, x):
        y = instance_norm(x, tf.cast(self.scale, tf.float32), tf.cast(self.offset, tf.float32), self.epsilon)
        return tf.cast(y, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="tfstyle")
class ConditionalInstanceNormalization(layers.Layer):
    """Instance normalization with one learned scale and offset per style (Dumoulin et al., 2017).

    Called on ``[x, style_weights]``: ``x`` [B, H, W, C] and ``style_weights`` [B, num_styles],
    each row a convex combination (non-negative, summing to 1). The scale and offset applied
    to image b are ``style_weights[b] @ scale`` and ``style_weights[b] @ offset`` over the
    tables ``scale``, ``offset`` [num_styles, C]: a one-hot row is exactly the plain
    ``InstanceNormalization`` of that style, and a mixed row blends styles in norm space.
    The statistics are those of ``InstanceNormalization`` (float32, the same ops).
    """

    def __init__(self, num_styles, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.num_styles = int(num_styles)
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = input_shape[0][-1]
        self.scale = self.add_weight(name="scale", shape=(self.num_styles, channels), initializer="ones")
        self.offset = self.add_weight(name="offset", shape=(self.num_styles, channels), initializer="zeros")

    def mixed(self, style_weights):
        """(scale, offset) of each image: float32 [B, 1, 1, C] each."""
        w = tf.cast(style_weights, tf.float32)
        scale = tf.matmul(w, tf.cast(self.scale, tf.float32))
        offset = tf.matmul(w, tf.cast(self.offset, tf.float32))
        return scale[:, None, None, :], offset[:, None, None, :]

    def call(self, inputs):
        x, style_weights = inputs
        return tf.cast(instance_norm(x, *self.mixed(style_weights), self.epsilon), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "num_styles": self.num_styles, "epsilon": self.epsilon}


def _norm(x, name, style_weights=None):
    """The instance norm of ``x``: plain, or conditional on ``style_weights`` in a multi-style net."""
    if style_weights is None:
        return InstanceNormalization(name=name)(x)
    return ConditionalInstanceNormalization(style_weights.shape[-1], name=name)([x, style_weights])


def style_count(model):
    """The number of style rows of a multi-style transformer (its ``style_weights`` input), else None."""
    return int(model.inputs[1].shape[-1]) if len(model.inputs) > 1 else None


@keras.saving.register_keras_serializable(package="tfstyle")
class Conv2D(layers.Conv2D):
    """Keras' Conv2D; ``upsample=2`` makes it nearest x2 upsampling + reflection pad 1 + 3x3 conv,
    ``space_to_depth=2`` computes a stride-1 conv with an odd kernel on a space-to-depth grid.

    Upsampling: every output pixel of a 3x3 conv over a nearest-upsampled image sees only 2x2
    input pixels, so each of the four output phases (even/odd row x even/odd
    column) is a 2x2 conv of the input with summed taps, and ``depth_to_space``
    interleaves them; reflection padding of the upsampled image equals edge
    padding of the input. Same outputs as the textbook ops with 16 instead of 36
    multiply-adds per Cin x Cout (the two upsampling convs were 24% of the net's),
    no resize op (whose gradient has no XLA CPU kernel and which split the TFLite
    graph), and the same kernel and bias. The class keeps the name Conv2D because
    Keras files weights under the snake-cased class name: checkpoints of the
    textbook resize + pad + conv graph load unchanged.

    Space-to-depth: a 9x9 conv with 3 input (or 3 output) channels leaves most
    lanes of a GEMM kernel idle. On the input's 2x2 space-to-depth grid (4x the
    channels, 1/4 of the pixels) output pixel (2a+p, 2b+q) is a 5x5 conv whose taps
    are the 9x9 kernel shifted by the phase (p, q) and zero-padded to 10x10, so one
    5x5 conv with 4x the output channels followed by ``depth_to_space`` gives the
    same output: 23% more multiply-adds (the zero taps), measured 3x faster for the
    output conv in float and INT8 (docs/RESULTS.md). Needs an even input H
    and W (the transformer pads to a multiple of 4); the kernel keeps its 9x9 shape.
    """

    def __init__(self, filters, kernel_size, upsample=1, space_to_depth=1, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        self.upsample = int(upsample)
        self.space_to_depth = int(space_to_depth)
        if self.upsample not in (1, 2):
            raise ValueError(f"upsample must be 1 or 2, got {upsample}")
        if self.space_to_depth not in (1, 2):
            raise ValueError(f"space_to_depth must be 1 or 2, got {space_to_depth}")
        if self.upsample == 2 and (self.kernel_size != (3, 3) or self.strides != (1, 1) or self.padding != "valid"):
            raise ValueError("upsample=2 needs a 3x3 kernel, stride 1 and padding='valid' (it pads itself)")
        if self.space_to_depth == 2 and (self.upsample != 1 or self.strides != (1, 1) or self.padding != "valid"
                                         or self.dilation_rate != (1, 1) or self.groups != 1
                                         or self.kernel_size[0] % 2 == 0 or self.kernel_size[1] % 2 == 0):
            raise ValueError("space_to_depth=2 needs an odd kernel, stride 1, no dilation or groups, "
                             "padding='valid' and no upsampling")

    def call(self, x):
        if self.upsample == 1 and self.space_to_depth == 1:
            if tracing_for_tflite() or self.padding != "valid" or self.groups != 1:
                return super().call(x)
            # conv + BiasAdd: TensorFlow's runtime fuses the pair into one op (Keras adds the bias with AddV2).
            y = tf.nn.conv2d(x, tf.cast(self.kernel, x.dtype), self.strides, "VALID", dilations=self.dilation_rate)
            return self.activation(tf.nn.bias_add(y, tf.cast(self.bias, y.dtype)) if self.use_bias else y)
        kernel = tf.cast(self.kernel, x.dtype)
        phases = self._upsampling_phases(x, kernel) if self.upsample == 2 else self._space_to_depth_phases(x, kernel)
        # Bias and activation before depth_to_space, so TFLite fuses them into the conv
        # (an INT8 model then needs no requantizing ADD after the interleave).
        if self.use_bias:
            bias = tf.tile(tf.cast(self.bias, phases.dtype), [4])
            phases = phases + bias if tracing_for_tflite() else tf.nn.bias_add(phases, bias)
        return tf.nn.depth_to_space(self.activation(phases), 2)

    @staticmethod
    def _upsampling_phases(x, kernel):
        """The four output phases of the upsample + 3x3 conv, stacked on channels in depth_to_space order."""
        for axis in (1, 2):  # edge padding by 1 (slices + concat, as ReflectionPadding2D)
            index = lambda start, stop: (slice(None),) * axis + (slice(start, stop),)  # noqa: E731
            x = tf.concat([x[index(0, 1)], x, x[index(-1, None)]], axis)
        phases = []
        for row, rows in enumerate(_phase_taps(kernel, axis=0)):
            for col, taps in enumerate(_phase_taps(rows, axis=1)):
                window = x[:, row : (None if row else -1), col : (None if col else -1), :]
                phases.append(tf.nn.conv2d(window, taps, strides=1, padding="VALID"))
        return tf.concat(phases, axis=-1)

    @staticmethod
    def _space_to_depth_phases(x, kernel):
        """The four output phases of the conv, from its input's space-to-depth grid."""
        return tf.nn.conv2d(tf.nn.space_to_depth(x, 2), _space_to_depth_kernel(kernel), strides=1, padding="VALID")

    def compute_output_shape(self, input_shape):
        if self.upsample == 1:
            return super().compute_output_shape(input_shape)
        n, h, w, _ = input_shape
        grow = lambda d: None if d is None else 2 * d  # noqa: E731
        return (n, grow(h), grow(w), self.filters)

    def get_config(self):
        return {**super().get_config(), "upsample": self.upsample, "space_to_depth": self.space_to_depth}


def _phase_taps(kernel, axis):
    """Splits 3 taps along ``axis`` into the 2-tap kernels of the even and odd upsampled phase.

    Even output rows see input rows (i-1, i, i) through taps (0, 1, 2); odd rows see (i, i, i+1).
    """
    before, center, after = tf.unstack(kernel, axis=axis)  # (tf.gather would give sparse gradients)
    return tf.stack([before, center + after], axis), tf.stack([before + center, after], axis)


def _space_to_depth_kernel(kernel):
    """[k, k, C, O] (k odd) -> [(k+1)/2, (k+1)/2, 4C, 4O]: the conv of the 2x2 space-to-depth grid.

    Output phase (p, q) sees grid rows/columns m and sub-pixels s with 2m + s = p + tap,
    so its kernel is the k x k kernel padded by one zero row/column before (p = 1) or
    after (p = 0), reshaped to (m, s); phases go to output channels in ``depth_to_space`` order.
    """
    k_h, k_w, c_in, c_out = kernel.shape
    phases = []
    for p in (0, 1):
        for q in (0, 1):
            padded = tf.pad(kernel, [[p, 1 - p], [q, 1 - q], [0, 0], [0, 0]])
            grid = tf.reshape(padded, [(k_h + 1) // 2, 2, (k_w + 1) // 2, 2, c_in, c_out])
            grid = tf.transpose(grid, [0, 2, 1, 3, 4, 5])  # (m, n, s, t, C, O): space_to_depth order
            phases.append(tf.reshape(grid, [(k_h + 1) // 2, (k_w + 1) // 2, 4 * c_in, c_out]))
    return tf.concat(phases, axis=-1)


def space_to_depth_block(kernel):
    """2 for the 9x9 convs (3 channels in or out), which run on a space-to-depth grid (see Conv2D); else 1."""
    return 2 if kernel == 9 else 1


def _conv(x, filters, kernel, stride, name, norm=True, relu=True, style_weights=None):
    """Reflection pad -> conv -> instance norm -> ReLU."""
    x = ReflectionPadding2D(kernel // 2, name=f"{name}_pad")(x)
    x = Conv2D(filters, kernel, strides=stride, padding="valid", space_to_depth=space_to_depth_block(kernel),
               name=f"{name}_conv")(x)
    if norm:
        x = _norm(x, f"{name}_norm", style_weights)
    if relu:
        x = layers.ReLU(name=f"{name}_relu")(x)
    return x


def _residual_block(x, name, style_weights=None):
    channels = x.shape[-1]
    y = _conv(x, channels, 3, 1, f"{name}_a", style_weights=style_weights)
    y = _conv(y, channels, 3, 1, f"{name}_b", relu=False, style_weights=style_weights)
    return layers.Add(name=f"{name}_add")([x, y])


from tfstyle.config import MIN_SIDE  # noqa: E402, F401  (the smallest side the net accepts; light to import)


def build_transformer(name="transformer", num_styles=None, width=1.0, residual_blocks=NUM_RESIDUAL_BLOCKS):
    """Returns the transformer net: float RGB 0..255 in, float RGB 0..255 out, same H x W.

    Any H and W work: the input is reflection-padded up to a multiple of 4 before
    the two stride-2 convs and the output is cropped back, so a 257x301 photo comes
    back 257x301.

    ``num_styles`` None: the single-style net (one input). An integer: the multi-style
    net, inputs ``[image, style_weights]`` with ``style_weights`` float [B, num_styles]
    (convex combinations), every instance norm a ``ConditionalInstanceNormalization``
    and every conv shared by all styles. Both nets create their layers in the same
    order, so the convs are filed under the same names in a weights file.

    ``width`` scales the filters of every conv but the 3-channel output (``scaled``):
    multiply-adds fall with about ``width**2``. ``residual_blocks`` sets the depth at
    the quarter resolution. The defaults are Johnson et al.'s network; weights files
    say which architecture they hold (``architecture_of_kernels``).
    """
    if not 0 < width <= 4:
        raise ValueError(f"width must be in (0, 4], got {width}")
    if residual_blocks < 0:
        raise ValueError(f"residual_blocks must be >= 0, got {residual_blocks}")
    image = keras.Input(shape=(None, None, 3), name="image")
    style_weights = None if num_styles is None else keras.Input(shape=(int(num_styles),), name="style_weights")
    x = layers.Rescaling(1.0 / 255.0, name="to_unit")(image)
    x = PadToMultiple(4, name="pad_to_multiple")(x)
    for i, (filters, kernel, stride) in enumerate(DOWNSAMPLE, start=1):
        x = _conv(x, scaled(filters, width), kernel, stride, f"down{i}", style_weights=style_weights)
    for i in range(1, residual_blocks + 1):
        x = _residual_block(x, f"res{i}", style_weights)
    for i, (filters, kernel) in enumerate(UPSAMPLE, start=1):
        x = Conv2D(scaled(filters, width), kernel, upsample=2, name=f"up{i}_conv")(x)
        x = _norm(x, f"up{i}_norm", style_weights)
        x = layers.ReLU(name=f"up{i}_relu")(x)
    x = _conv(x, 3, 9, 1, "out", norm=False, relu=False)
    # tanh keeps the output in 0..255 (bounded outputs also quantize well).
    x = layers.Activation("tanh", dtype="float32", name="out_tanh")(x)
    x = layers.Rescaling(127.5, offset=127.5, dtype="float32", name="to_pixels")(x)
    x = CropLike(name="crop_to_input", dtype="float32")([x, image])
    return keras.Model(image if style_weights is None else [image, style_weights], x, name=name)


def architecture(model):
    """``{"width", "residual_blocks"}`` of a transformer built by ``build_transformer``."""
    return architecture_of_kernels([w.shape for w in model.weights if len(w.shape) == 4])


def architecture_of_kernels(kernel_shapes):
    """``{"width", "residual_blocks"}`` of the transformer whose conv kernels, in layer order, have these shapes.

    Weights files (Keras ``.weights.h5``, shipped ``.npz``, a SavedModel's variables)
    list kernels in creation order: down1 first, then down2, down3, two per residual
    block, up1, up2 and the output conv. Raises ``ValueError`` for shapes no
    ``build_transformer`` network has.
    """
    shapes = [tuple(int(d) for d in s) for s in kernel_shapes]
    fixed = len(DOWNSAMPLE) + len(UPSAMPLE) + 1
    if len(shapes) < fixed or (len(shapes) - fixed) % 2:
        raise ValueError(f"{len(shapes)} conv kernels: not a transformer network")
    width = shapes[0][-1] / DOWNSAMPLE[0][0]
    arch = {"width": width, "residual_blocks": (len(shapes) - fixed) // 2}
    if kernel_shapes_of(**arch) != shapes:
        raise ValueError(f"conv kernels {shapes[:3]}... do not match a transformer of width {width:g} "
                         f"with {arch['residual_blocks']} residual blocks")
    return arch


def kernel_shapes_of(width=1.0, residual_blocks=NUM_RESIDUAL_BLOCKS):
    """The conv kernel shapes of ``build_transformer(width=..., residual_blocks=...)``, in layer order."""
    shapes, channels = [], 3
    for filters, kernel, _ in DOWNSAMPLE:
        shapes.append((kernel, kernel, channels, scaled(filters, width)))
        channels = scaled(filters, width)
    shapes += [(3, 3, channels, channels)] * (2 * residual_blocks)
    for filters, kernel in UPSAMPLE:
        shapes.append((kernel, kernel, channels, scaled(filters, width)))
        channels = scaled(filters, width)
    return shapes + [(DOWNSAMPLE[0][1], DOWNSAMPLE[0][1], channels, 3)]


@keras.saving.register_keras_serializable(package="tfstyle")
class PadToMultiple(layers.Layer):
    """Reflection-pads bottom/right so H and W are multiples of ``multiple``."""

    def __init__(self, multiple, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def call(self, x):
        hw = tf.shape(x)[1:3]
        pad = (-hw) % self.multiple
        if tracing_for_tflite():
            # TFLite's MIRROR_PAD runs outside XNNPACK on one thread and copies the whole image even
            # when the amounts are 0: 1024x1024 INT8 slim inferences took 16 % less without it
            # (docs/RESULTS.md). Instead: the last rows -2 ... -multiple, mirrored, cut to the amount
            # (a slice of at most 3 rows) and concatenated below (a concat XNNPACK runs).
            for axis in (1, 2):
                index = lambda start, stop: (slice(None),) * axis + (slice(start, stop),)  # noqa: E731
                mirrored = tf.concat([x[index(-1 - i, -i)] for i in range(1, self.multiple)], axis)
                x = tf.concat([x, mirrored[index(0, pad[axis - 1])]], axis)
            return x
        y = tf.pad(x, [[0, 0], [0, pad[0]], [0, pad[1]], [0, 0]], mode="REFLECT")
        # A pad with computed amounts loses the static channel count in the TFLite
        # converter's shape inference, and a conv on [?, ?, ?, ?] cannot become a
        # builtin op; a reshape to [n, h, w, C] restores it (a no-op at run time).
        return tf.reshape(y, tf.concat([tf.shape(y)[:3], [x.shape[-1]]], axis=0))

    def compute_output_shape(self, input_shape):
        n, _, _, c = input_shape
        return (n, None, None, c)

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple}


@keras.saving.register_keras_serializable(package="tfstyle")
class CropLike(layers.Layer):
    """Crops the first input to the H x W of the second (undoes ``PadToMultiple``)."""

    def call(self, inputs):
        x, reference = inputs
        hw = tf.shape(reference)[1:3]
        return x[:, : hw[0], : hw[1], :]

    def compute_output_shape(self, input_shapes):
        x_shape, ref_shape = input_shapes
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])
