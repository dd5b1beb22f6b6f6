"""``tfstyle serve``: TensorFlow Serving's REST API for tfstyle SavedModels, and a page to try them.

    tfstyle serve --model_base_path=saved_models          # every <style>/<version>/ below
    tfstyle serve --model_base_path=saved_models/mosaic --model_name=mosaic

Endpoints (TF Serving's; clients written for ``tensorflow_model_server`` work unchanged):

* ``GET /v1/models/NAME[/versions/N]``: version status;
* ``GET /v1/models/NAME[/versions/N]/metadata``: signature defs;
* ``POST /v1/models/NAME[/versions/N]:predict``: row (``instances``) or columnar
  (``inputs``) JSON, ``{"b64": ...}`` for binary strings (see ``tfstyle.rest_json``).

Not TF Serving's: ``GET /`` (the page), ``GET /tfstyle/models`` (the served models,
for the page), ``POST /tfstyle/video/NAME`` (a short clip stylized; ``tfstyle.serve_video``).
Errors are ``{"error": "..."}`` with TF Serving's HTTP codes (400
bad input, 404 unknown model or version, 429 busy), plus 408 (body not received in
time) and 413 (body too large). A client never gets a traceback.

Limits: the body (``--max_body_mb``, and ``--body_timeout_seconds`` to receive it),
pixels per image (``--max_pixels``, read from the header before decoding), and
predictions in progress (``--max_concurrent``; more are refused with 429 at once,
not queued). Inference runs in a thread pool, off the event loop. Uploads stay in
memory. The server binds 127.0.0.1 unless ``--host`` says otherwise; it has no
authentication.

Starlette, uvicorn and TensorFlow are imported when the server starts, not on
import (``tfstyle serve --help`` stays fast).
"""

import asyncio
import json
import logging
import os
import re
import threading
from dataclasses import dataclass



log = logging.getLogger("tfstyle.serve")
WEB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")
# TF Serving's URL grammar (http_rest_api_handler.cc), plus metadata.
PREDICT_URL = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+))?:(predict|classify|regress)", re.IGNORECASE)
STATUS_URL = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+))?(/metadata)?", re.IGNORECASE)
# tf.errors codes (gRPC's) -> TF Serving's HTTP status.
HTTP_STATUS = {1: 499, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 11: 400, 12: 501, 14: 503,
               16: 401}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                               "style-src 'self' 'unsafe-inline'",
}


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 32 << 20
    body_timeout_seconds: float = 30.0
    max_pixels: int = 16_777_216
    max_concurrent: int = 2


def create_app(registry, limits=Limits()):
    """The ASGI app serving ``registry`` (a ``servables.ModelRegistry``) within ``limits``."""
    from concurrent.futures import ThreadPoolExecutor

    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect
    from starlette.responses import Response
    from starlette.routing import Route

    from tfstyle import serve_video
    from tfstyle.rest_json import RequestError

    pool = ThreadPoolExecutor(max_workers=limits.max_concurrent, thread_name_prefix="predict")
    in_progress = 0  # only touched on the event loop

    def json_response(payload, status=200, headers=None):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return Response(body, status, headers=headers, media_type="application/json")

    def error(status, message, headers=None):
        return json_response({"error": message}, status, headers)

    async def read_body(request):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limits.max_body_bytes:
            raise RequestError(413, f"request body of {length} bytes exceeds --max_body_mb "
                                    f"({limits.max_body_bytes} bytes)")
        chunks, size = [], 0

        async def receive():
            nonlocal size
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.max_body_bytes:
                    raise RequestError(413, f"request body exceeds --max_body_mb ({limits.max_body_bytes} bytes)")
                chunks.append(chunk)

        try:
            await asyncio.wait_for(receive(), limits.body_timeout_seconds)
        except asyncio.TimeoutError:
            raise RequestError(408, f"request body not received within --body_timeout_seconds="
                                    f"{limits.body_timeout_seconds:g} ({size} bytes arrived)") from None
        except ClientDisconnect:
            raise RequestError(400, "client disconnected before sending the whole body") from None
        return b"".join(chunks)

    async def predict(request, name, version):
        nonlocal in_progress
        servable = registry.get(name, version)
        body = await read_body(request)
        if in_progress >= limits.max_concurrent:
            raise RequestError(429, f"server busy: {in_progress} predictions in progress "
                                    f"(--max_concurrent={limits.max_concurrent}); retry later")
        in_progress += 1
        try:
            loop = asyncio.get_running_loop()
            return json_response(await loop.run_in_executor(pool, predict_json, servable, body, limits))
        finally:
            in_progress -= 1

    async def api(request):
        path, method = request.url.path, request.method
        try:
            match = PREDICT_URL.fullmatch(path)
            if method == "POST" and match:
                name, version, verb = match.groups()
                if verb.lower() != "predict":
                    raise RequestError(501, f":{verb} is not implemented; tfstyle models have predict signatures")
                return await predict(request, name, None if version is None else int(version))
            match = STATUS_URL.fullmatch(path)
            if method == "GET" and match:
                name, version, metadata = match.groups()
                version = None if version is None else int(version)
                if metadata:
                    return json_response(model_metadata(registry.get(name, version)))
                return json_response(registry.status(name, version))
            raise RequestError(400, f"Malformed request: {method} {path}")
        except RequestError as e:
            headers = {"Retry-After": "1"} if e.status == 429 else None
            return error(e.status, e.message, headers)
        except Exception:  # a bug, not bad input: log it, tell the client no more than that
            log.exception("internal error on %s %s", method, path)
            return error(500, "internal server error (see the server log)")

    async def models(request):
        return json_response({"models": [{"name": s.name, "version": str(s.version), "style_names": s.style_names}
                                         for s in registry.served()]})

    def static(filename, media_type):
        with open(os.path.join(WEB_DIR, filename), "rb") as f:
            content = f.read()
        return lambda request: Response(content, media_type=media_type, headers=SECURITY_HEADERS)

    async def http_error(request, exc):
        return error(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}")

    routes = [
        Route("/", static("index.html", "text/html; charset=utf-8")),
        Route("/app.js", static("app.js", "text/javascript; charset=utf-8")),
        Route("/tfstyle/models", models),
        serve_video.clip_route(registry, limits),
        Route("/v1/{rest:path}", api, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


def predict_json(servable, body, limits):
    """The response body for one predict request (runs in the thread pool). Raises ``RequestError``."""
    import tensorflow as tf

    from tfstyle import rest_json
    from tfstyle.rest_json import RequestError

    request = rest_json.parse_body(body)
    signature = request["signature_name"]
    if signature not in servable.inputs:
        raise RequestError(400, f'Serving signature name: "{signature}" not found in signature def '
                                f"(the model has {sorted(servable.inputs)})")
    arrays, fmt = rest_json.decode_inputs(request, servable.inputs[signature], limits.max_pixels)
    try:
        outputs = servable.run(signature, arrays)
    except tf.errors.OpError as e:
        # The model's own message (e.g. "Invalid PNG data") does not say which input it is about.
        raise RequestError(HTTP_STATUS.get(e.error_code, 500), f"{', '.join(sorted(arrays))}: {tf_message(e)}") from None
    return json.dumps(rest_json.encode_outputs(outputs, fmt)).encode()


def tf_message(error):
    """A TF runtime error's own message, without graph node names and op traces."""
    text = error.message
    assertion = re.search(r"assertion failed: \[(.*?)\]", text)
    if assertion:
        return assertion.group(1)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(("[[", "Detected at"))]
    lines = [ln for ln in lines if ln not in ("Graph execution error:",)]
    message = lines[-1] if lines else type(error).__name__
    return re.sub(r"\s*\[\[.*|\s*\[Op:.*", "", message).strip() or type(error).__name__


def model_metadata(servable):
    """TF Serving's GetModelMetadata JSON (signature defs) for a servable."""
    return {
        "model_spec": {"name": servable.name, "signature_name": "", "version": str(servable.version)},
        "metadata": {"signature_def": {"signature_def": servable.signature_defs}},
    }


def poll_forever(registry, seconds, stop):
    while not stop.wait(seconds):
        try:
            registry.poll()
        except Exception:  # keep polling: a transient file system error must not end version pick-up
            log.exception("polling %s failed", registry.base_path)


def run(base_path, model_name=None, host="127.0.0.1", port=8501, poll_seconds=2.0, limits=Limits(),
        prefer_tflite_model=False):
    """Serves the models under ``base_path`` until interrupted; picks up new versions every ``poll_seconds``.

    ``prefer_tflite_model``: serve a version from its ``model.tflite`` where it has one (``tfstyle.servables``).
    """
    import uvicorn

    from tfstyle.servables import ModelRegistry, servable_loader

    if not os.path.isdir(base_path):
        log.warning("%s does not exist (yet); models will be picked up when it appears", base_path)
    registry = ModelRegistry(base_path, model_name, loader=servable_loader(prefer_tflite_model))
    registry.poll()
    stop = threading.Event()
    threading.Thread(target=poll_forever, args=(registry, poll_seconds, stop), daemon=True).start()
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: anyone who can reach this port can use the server (no authentication)", host)
    log.info("serving %s from %s at http://%s:%d/ (REST: /v1/models/NAME)", registry.names() or "no models yet",
             registry.base_path, host, port)
    config = uvicorn.Config(create_app(registry, limits), host=host, port=port, log_config=None,
                            timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run()
    finally:
        stop.set()
