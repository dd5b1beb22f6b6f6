"""TF Serving's REST JSON <-> numpy arrays, checked against a signature's inputs.

Request bodies (``POST /v1/models/NAME[/versions/N]:predict``):

* row format: ``{"signature_name": S, "instances": [...]}``. One element per batch
  row: the value itself when the signature has one input, otherwise an object
  ``{input_name: value}``. The rows are stacked, so every input gets a batch dimension.
* columnar format: ``{"signature_name": S, "inputs": V}``: ``V`` is the whole
  tensor when the signature has one input, otherwise ``{input_name: tensor}``.
  Inputs without a batch dimension (a ``style_weights`` vector) need this format.
* ``signature_name`` defaults to ``serving_default``; string values may be given
  as ``{"b64": "..."}`` (binary data, base64).

Responses: ``{"predictions": [...]}`` for rows, ``{"outputs": ...}`` for columns;
a single output is given bare, several as objects keyed by output name. String
outputs whose name ends in ``_bytes`` come back as ``{"b64": "..."}``.

Every problem raises :class:`RequestError` with the HTTP status TF Serving would
use and a message that names the input and what is wrong; nothing here runs a model.
Numpy is the only heavy import, done inside the functions that need it.
"""

import base64
import binascii
import io
import json

from tfstyle.config import MIN_SIDE

DEFAULT_SIGNATURE = "serving_default"
# Formats the exported ``stylize_bytes`` signature decodes (tf.io.decode_image).
DECODABLE_FORMATS = ("JPEG", "PNG", "GIF", "BMP")


class RequestError(Exception):
    """A request that cannot be served: ``status`` (HTTP code) and a one-line ``message``."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def bad(message):
    return RequestError(400, message)


class InputSpec:
    """One signature input: ``dtype`` (numpy dtype name, or ``"string"``) and ``shape`` (None: any size)."""

    def __init__(self, dtype, shape):
        self.dtype = dtype
        self.shape = tuple(shape)

    def describe(self):
        dims = ", ".join("-1" if d is None else str(d) for d in self.shape)
        return f"{self.dtype} [{dims}]"


def parse_body(body):
    """The request JSON as a dict with ``signature_name`` and one of ``instances`` / ``inputs``."""
    try:
        request = json.loads(body)
    except UnicodeDecodeError:
        raise bad("JSON Parse error: the body is not UTF-8 text") from None
    except ValueError as e:
        raise bad(f"JSON Parse error: {e}") from None
    except RecursionError:
        raise bad("JSON Parse error: nested too deeply") from None
    if not isinstance(request, dict):
        raise bad(f"JSON Parse error: expected an object with 'instances' or 'inputs', got {type(request).__name__}")
    has_rows, has_columns = "instances" in request, "inputs" in request
    if has_rows == has_columns:
        raise bad("Missing 'inputs' or 'instances' key" if not has_rows else "Not both 'inputs' and 'instances' keys")
    name = request.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(name, str):
        raise bad("'signature_name' must be a string")
    request["signature_name"] = name or DEFAULT_SIGNATURE
    return request


def is_b64(value):
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def decode_inputs(request, specs, max_pixels):
    """{input name: numpy array} from a parsed request, checked against ``specs`` ({name: InputSpec}).

    Returns ``(arrays, "row" | "columnar")``. Encoded images (string inputs) are
    checked from their header: decodable format, at most ``max_pixels`` pixels, at
    least ``MIN_SIDE`` (the transformer's smallest input) a side; pixel batches
    ([batch, H, W, C] numbers) get the same size checks.
    """
    names = sorted(specs)
    if "instances" in request:
        rows = request["instances"]
        if not isinstance(rows, list) or not rows:
            raise bad("'instances' must be a non-empty list, one element per batch row")
        if len(names) == 1 and not all(isinstance(r, dict) and not is_b64(r) for r in rows):
            columns = {names[0]: rows}
        else:
            for i, row in enumerate(rows):
                if not isinstance(row, dict) or is_b64(row):
                    raise bad(f"instances[{i}]: expected an object with the inputs {names}")
                check_names(row, names, f"instances[{i}]")
            columns = {n: [row[n] for row in rows] for n in names}
        fmt = "row"
    else:
        value = request["inputs"]
        if isinstance(value, dict) and not is_b64(value):
            check_names(value, names, "inputs")
            columns = dict(value)
        elif len(names) == 1:
            columns = {names[0]: value}
        else:
            raise bad(f"'inputs' must be an object with the inputs {names}")
        fmt = "columnar"
    arrays = {n: to_array(columns[n], specs[n], n, max_pixels) for n in names}
    return arrays, fmt


def check_names(obj, names, where):
    missing = [n for n in names if n not in obj]
    extra = sorted(set(obj) - set(names))
    if missing:
        raise bad(f"{where}: missing input {missing[0]!r} (the signature takes {names})")
    if extra:
        raise bad(f"{where}: unknown input {extra[0]!r} (the signature takes {names})")


def to_array(value, spec, name, max_pixels):
    """``value`` (nested JSON lists) as a numpy array of ``spec``'s dtype and a compatible shape."""
    import numpy as np

    if spec.dtype == "string":
        shape = nested_shape(value, spec, name)
        array = np.empty(shape, dtype=object)
        flat = array.reshape(-1)
        for i, item in enumerate(flatten(value)):
            flat[i] = to_bytes(item, f"{name}[{i}]")
            check_image_header(flat[i], f"{name}[{i}]", max_pixels)
        return array
    try:
        raw = np.asarray(value)
    except (ValueError, TypeError):
        raise bad(f"input {name!r}: ragged nested lists or mixed types, expected a {spec.describe()} tensor") from None
    if raw.dtype.kind not in "biuf":
        raise bad(f"input {name!r}: expected {spec.dtype} numbers, got {json.dumps(value)[:40]}...")
    check_shape(raw.shape, spec, name)
    dtype = np.dtype(spec.dtype)
    if dtype.kind in "iu" and raw.size:
        if raw.dtype.kind == "f" and not np.array_equal(raw, np.round(raw)):
            raise bad(f"input {name!r}: expected {spec.dtype} integers, got fractional numbers")
        info = np.iinfo(dtype)
        if raw.min() < info.min or raw.max() > info.max:
            raise bad(f"input {name!r}: values must lie in [{info.min}, {info.max}] for {spec.dtype}")
    if raw.ndim == 4 and raw.shape[1] * raw.shape[2] > max_pixels:
        raise bad(f"input {name!r}: {raw.shape[2]}x{raw.shape[1]} images exceed --max_pixels={max_pixels}")
    if raw.ndim == 4 and raw.size and min(raw.shape[1:3]) < MIN_SIDE:
        raise bad(f"input {name!r}: {too_small(raw.shape[2], raw.shape[1])}")
    return raw.astype(dtype)


def nested_shape(value, spec, name):
    """Shape of a rectangular nested list of scalars (strings or ``{"b64"}`` objects)."""
    shape, first = [], value
    while isinstance(first, list):
        shape.append(len(first))
        if not first:
            break
        first = first[0]
    check_shape(shape, spec, name)  # before walking: the rank is bounded by the signature's

    def check(v, depth):
        if depth == len(shape):
            if isinstance(v, list):
                raise bad(f"input {name!r}: ragged nested lists")
            return
        if not isinstance(v, list) or len(v) != shape[depth]:
            raise bad(f"input {name!r}: ragged nested lists (rows of different lengths)")
        for item in v:
            check(item, depth + 1)

    check(value, 0)
    return tuple(shape)


def flatten(value):
    if isinstance(value, list):
        for item in value:
            yield from flatten(item)
    else:
        yield value


def check_shape(shape, spec, name):
    if len(shape) != len(spec.shape) or any(d is not None and d != s for d, s in zip(spec.shape, shape)):
        got = "[" + ", ".join(map(str, shape)) + "]"
        raise bad(f"input {name!r}: shape {got} does not match the signature's {spec.describe()}")


def to_bytes(item, where):
    if is_b64(item):
        if not isinstance(item["b64"], str):
            raise bad(f"{where}: 'b64' must be a string")
        try:
            return base64.b64decode(item["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise bad(f"{where}: 'b64' is not valid base64") from None
    if isinstance(item, str):
        return item.encode("utf-8")
    raise bad(f"{where}: expected a string or {{\"b64\": ...}}, got {json.dumps(item)[:40]}")


def check_image_header(data, where, max_pixels):
    """Reads only the header: the format must be decodable, the size at most ``max_pixels`` and at
    least ``MIN_SIDE`` a side (smaller fails inside the model with an obscure padding error)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise bad(f"{where}: empty (0 bytes), expected an encoded JPEG, PNG, GIF or BMP image")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt, (width, height) = img.format, img.size
    except Image.DecompressionBombError as e:
        raise bad(f"{where}: image rejected before decoding: {e}") from None
    except UnidentifiedImageError:
        raise bad(f"{where}: not a readable image (unknown format or corrupt header)") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise bad(f"{where}: not a readable image ({str(e)[:120] or type(e).__name__})") from None
    if fmt not in DECODABLE_FORMATS:
        raise bad(f"{where}: {fmt} image; the model decodes JPEG, PNG, GIF or BMP")
    if width * height > max_pixels:
        raise bad(f"{where}: {width}x{height} image ({width * height} pixels) exceeds --max_pixels={max_pixels}")
    if min(width, height) < MIN_SIDE:
        raise bad(f"{where}: {too_small(width, height)}")


def too_small(width, height):
    return f"image too small: {width}x{height}, at least {MIN_SIDE} px a side"


def encode_outputs(outputs, fmt):
    """The response dict for {output name: numpy array} in the request's format."""
    names = sorted(outputs)
    if fmt == "columnar":
        values = {n: to_json(outputs[n], n) for n in names}
        return {"outputs": values[names[0]] if len(names) == 1 else values}
    sizes = {outputs[n].shape[0] if outputs[n].ndim else None for n in names}
    if len(sizes) != 1 or None in sizes:
        raise bad("outputs have different batch sizes (or none); use the columnar format ('inputs')")
    if len(names) == 1:
        return {"predictions": to_json(outputs[names[0]], names[0])}
    columns = {n: to_json(outputs[n], n) for n in names}
    return {"predictions": [{n: columns[n][i] for n in names} for i in range(sizes.pop())]}


def to_json(array, name):
    import numpy as np

    if array.dtype.kind in "OSU":
        if name.endswith("_bytes"):
            conv = lambda b: {"b64": base64.b64encode(b).decode("ascii")}  # noqa: E731
        else:
            conv = lambda b: b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)  # noqa: E731
        return np.vectorize(conv, otypes=[object])(array).tolist() if array.size else array.tolist()
    return array.tolist()
