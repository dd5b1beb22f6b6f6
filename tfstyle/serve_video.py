"""``POST /tfstyle/video/NAME``: the page's short clips, stylized by a served model (not TF Serving's API).

The body is the clip itself (any container PyAV reads, at most ``--max_body_mb``); the reply
is an H.264 .mp4 with the sound copied (``video/mp4``), its frames scaled so the longer side
is at most ``max_side`` (query ``max_side``, at most ``MAX_SIDE``). Each frame goes through
the model's ``serving_default`` signature (uint8 ``images`` -> ``stylized``), SavedModel or
.tflite alike; a multi-style model takes ``style_weights`` (comma-separated) and ``strength``
from the query, else its first style at full strength.

Limits: clips longer than ``MAX_SECONDS`` get 413, one clip is stylized at a time (another
gets 429 at once), and a file that is not a readable clip gets 400 naming the problem.
Errors are ``{"error": "..."}`` like the rest of the server.
"""

import asyncio
import json
import os
import tempfile
import threading

import numpy as np

from tfstyle.rest_json import RequestError

MAX_SECONDS = 10.0
MAX_SIDE = 640
SIGNATURE = "serving_default"


def clip_route(registry, limits):
    """The Starlette route; ``limits`` is the server's (``max_body_bytes``, ``body_timeout_seconds``)."""
    from starlette.responses import Response
    from starlette.routing import Route

    busy = threading.Lock()

    async def handler(request):
        try:
            servable = registry.get(request.path_params["name"], None)
            extras = model_inputs(servable, request.query_params)
            max_side = parse_number(request.query_params.get("max_side", MAX_SIDE), "max_side", int)
            if not 16 <= max_side <= MAX_SIDE:
                raise RequestError(400, f"max_side={max_side}: must be from 16 to {MAX_SIDE}")
            body = await asyncio.wait_for(read_limited(request, limits.max_body_bytes), limits.body_timeout_seconds)
            if not busy.acquire(blocking=False):
                raise RequestError(429, "server busy: another clip is being stylized; retry later")
            try:
                data = await asyncio.get_running_loop().run_in_executor(None, stylize_clip, servable, body, extras,
                                                                        max_side)
            finally:
                busy.release()
            return Response(data, media_type="video/mp4")
        except asyncio.TimeoutError:
            return _error(408, f"clip not received within --body_timeout_seconds={limits.body_timeout_seconds:g}")
        except RequestError as e:
            return _error(e.status, e.message)

    return Route("/tfstyle/video/{name}", handler, methods=["POST"])


def _error(status, message):
    from starlette.responses import Response

    return Response(json.dumps({"error": message}), status, media_type="application/json")


async def read_limited(request, max_bytes):
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise RequestError(413, f"clip exceeds --max_body_mb ({max_bytes} bytes)")
        chunks.append(chunk)
    if not size:
        raise RequestError(400, "empty body: send the clip's bytes")
    return b"".join(chunks)


def parse_number(text, name, kind=float):
    try:
        return kind(text)
    except ValueError:
        raise RequestError(400, f"{name}={text!r}: not a number") from None


def model_inputs(servable, query):
    """The signature's inputs besides ``images``: a multi-style model's ``style_weights`` and ``strength``."""
    inputs = servable.inputs.get(SIGNATURE)
    if not inputs or "images" not in inputs:
        raise RequestError(400, f"model {servable.name} has no {SIGNATURE} signature taking images")
    extras = {}
    if "style_weights" in inputs:
        rows = max(len(servable.style_names), 1)
        text = query.get("style_weights", ",".join(["1"] + ["0"] * (rows - 1)))
        extras["style_weights"] = np.array([parse_number(v, "style_weights") for v in text.split(",")], np.float32)
    if "strength" in inputs:
        extras["strength"] = np.float32(parse_number(query.get("strength", "1"), "strength"))
    unknown = set(inputs) - {"images"} - set(extras)
    if unknown:
        raise RequestError(400, f"model {servable.name} needs inputs this route does not know: {sorted(unknown)}")
    return extras


def stylize_clip(servable, body, extras, max_side):
    """The stylized clip's .mp4 bytes (runs in a worker thread). Raises ``RequestError``."""
    from tfstyle import video

    def transform(image):
        return np.asarray(servable.run(SIGNATURE, {"images": image[None], **extras})["stylized"][0], np.uint8)

    with tempfile.TemporaryDirectory(prefix="tfstyle-clip-") as tmp:
        src, dst = os.path.join(tmp, "upload"), os.path.join(tmp, "stylized.mp4")
        with open(src, "wb") as f:
            f.write(body)
        try:
            source = video.VideoSource(src, max_size=max_side)
            seconds = source.frames / float(source.fps)
            source.close()
            if seconds > MAX_SECONDS:
                raise RequestError(413, f"clip of {seconds:.1f} s is longer than {MAX_SECONDS:g} s")
            limit = int(MAX_SECONDS * float(source.fps)) + 1
            count = [0]

            def counted(image):
                count[0] += 1
                if count[0] > limit:
                    raise RequestError(413, f"clip is longer than {MAX_SECONDS:g} s")
                return transform(image)

            video.transform_clip(counted, src, dst, max_size=max_side, progress=False)
        except video.VideoError as e:
            raise RequestError(400, str(e).replace(src, "clip")) from None
        with open(dst, "rb") as f:
            return f.read()
