"""Stylize a photo with a tfstyle model served by TensorFlow Serving's REST API.

    python examples/rest_client.py photo.jpg stylized.png \
        --url=http://localhost:8501/v1/models/mosaic:predict

Sends the file's bytes base64-encoded to the ``stylize_bytes`` signature and
writes the PNG that comes back. Needs only ``requests`` (and Pillow, used to
turn phone photos upright: the server does not read EXIF orientation).
"""

import argparse
import base64
import io
import sys

import requests

SIGNATURE = "stylize_bytes"


def upright_bytes(path):
    """The file's bytes; re-encoded upright if its EXIF orientation says it is rotated."""
    data = open(path, "rb").read()
    try:
        from PIL import Image, ImageOps
    except ImportError:
        return data
    with Image.open(io.BytesIO(data)) as img:
        if img.getexif().get(0x0112, 1) == 1:
            return data
        upright = ImageOps.exif_transpose(img).convert("RGB")
    buffer = io.BytesIO()
    upright.save(buffer, format="PNG")
    return buffer.getvalue()


def request_body(image_bytes_list):
    """The JSON body of a predict request: one ``{"b64": ...}`` instance per image."""
    return {
        "signature_name": SIGNATURE,
        "instances": [{"b64": base64.b64encode(data).decode("ascii")} for data in image_bytes_list],
    }


def stylized_pngs(response_json):
    """PNG bytes of each prediction in a predict response."""
    if "error" in response_json:
        raise RuntimeError(f"server error: {response_json['error']}")
    return [base64.b64decode(p["b64"]) for p in response_json["predictions"]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--url", default="http://localhost:8501/v1/models/mosaic:predict")
    args = parser.parse_args(argv)
    try:
        response = requests.post(args.url, json=request_body([upright_bytes(args.input)]), timeout=300)
    except requests.ConnectionError as e:
        reason = "connection refused" if "refused" in str(e).lower() else type(e).__name__
        sys.exit(f"error: cannot reach {args.url} ({reason}); is the server running?")
    except requests.Timeout:
        sys.exit(f"error: no answer from {args.url} within 300 s")
    try:
        payload = response.json()
    except ValueError:
        sys.exit(f"error: HTTP {response.status_code} from {args.url}: {response.text[:200]}")
    try:
        (png,) = stylized_pngs(payload)
    except RuntimeError as e:
        sys.exit(f"error: {e}")
    with open(args.output, "wb") as f:
        f.write(png)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
