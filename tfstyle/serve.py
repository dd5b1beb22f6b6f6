"""``tfstyle serve``: TensorFlow Serving's REST API for tfstyle SavedModels, and a page to try them.

    tfstyle serve --model_base_path=saved_models          # every <style>/<version>/ below
    tfstyle serve --model_base_path=saved_models/mosaic --model_name=mosaic

Endpoints (TF Serving's; clients written for ``tensorflow_model_server`` work unchanged):

* ``GET /v1/models/NAME[/versions/N]``: version status;
* ``GET /v1/models/NAME[/versions/N]/metadata``: signature defs;
* ``POST /v1/models/NAME[/versions/N]:predict``: row (``instances``) or columnar
  (``inputs``) JSON, ``{"b64": ...}`` for binary strings (see ``tfstyle.rest_json``).

Not TF Serving's: ``GET /`` (the page), ``GET /tfstyle/models`` (the served models,
for the page), ``GET /metrics`` (Prometheus text format, ``tfstyle.serve_metrics``),
``POST /tfstyle/video/NAME`` (a short clip stylized; ``tfstyle.serve_video``).
Errors are ``{"error": "..."}`` with TF Serving's HTTP codes (400 bad input, 404
unknown model or version), plus 408 (body not received in time), 413 (body too
large), 429 (queue full) and 503 (deadline passed); 429 and 503 carry ``Retry-After``.
A client never gets a traceback.

Limits: the body (``--max_body_mb``, and ``--body_timeout_seconds`` to receive it),
pixels per image (``--max_pixels``, read from the header before decoding), and the
queue (``tfstyle.predict_queue``): ``--max_concurrent`` model calls run in a thread
pool, off the event loop, ``--max_queued`` more predictions wait, each at most
``--queue_timeout_seconds`` (for its model to load and for a worker), and
``--enable_batching`` runs waiting same-shape requests as one call. Models load in the
background (``tfstyle.servables``): status answers ``LOADING`` meanwhile and a predict
waits for its model. Uploads stay in memory. The server binds 127.0.0.1 unless
``--host`` says otherwise; it has no authentication.

Starlette, uvicorn and TensorFlow are imported when the server starts, not on
import (``tfstyle serve --help`` stays fast).
"""

import asyncio
import json
import logging
import os
import re
import threading
import time
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
LOAD_POLL_SECONDS = 0.05  # how often a predict for a model still loading looks again


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 32 << 20
    body_timeout_seconds: float = 30.0
    max_pixels: int = 16_777_216
    max_concurrent: int = 2  # model calls at once
    max_queued: int = 64  # predictions admitted beyond those running; more get 429
    queue_timeout_seconds: float = 30.0  # from admission to a worker's start; later: 503
    batching: object = None  # a ``predict_queue.Batching``; None: one request per model call


def create_app(registry, limits=Limits()):
    """The ASGI app serving ``registry`` (a ``servables.ModelRegistry``) within ``limits``."""
    from concurrent.futures import ThreadPoolExecutor

    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect
    from starlette.responses import Response
    from starlette.routing import Route

    from tfstyle.predict_queue import Overloaded, PredictQueue
    from tfstyle import serve_video
    from tfstyle.rest_json import RequestError
    from tfstyle.serve_metrics import ServeMetrics

    pool = ThreadPoolExecutor(max_workers=limits.max_concurrent, thread_name_prefix="predict")
    queue = PredictQueue(run_model, pool, limits.max_concurrent, limits.max_queued, limits.queue_timeout_seconds,
                         limits.batching)
    metrics = ServeMetrics(queue)
    queue.observe = metrics.model_call_started

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

    async def until_served(name, version, deadline):
        """The servable; one still loading is waited for (looked up again every LOAD_POLL_SECONDS:
        loads happen at start and on new versions) until ``deadline``; else RequestError 404 / 503."""
        while True:
            try:
                return registry.get(name, version)
            except RequestError:
                if not registry.is_loading(name, version):
                    raise
            if time.monotonic() >= deadline:
                raise queue.deadline_passed(f"model {name} still loading")
            await asyncio.sleep(LOAD_POLL_SECONDS)

    async def predict(request, name, version):
        if not registry.is_loading(name, version):
            registry.get(name, version)  # an unknown model or version: 404 before the body is read
        body = await read_body(request)
        with queue.admission() as deadline:  # 429 when the queue is full
            servable = await until_served(name, version, deadline)
            signature, arrays, finish = await asyncio.to_thread(parse_request, servable, body, limits)
            return json_response(await queue.predict(servable, signature, arrays, finish, deadline))

    def failure(exc, method, path):
        """The error response for an exception raised while answering ``method path``."""
        if isinstance(exc, Overloaded):
            return error(exc.status, exc.message, {"Retry-After": str(exc.retry_after)})
        if isinstance(exc, RequestError):
            return error(exc.status, exc.message)
        # A bug, not bad input: log it, tell the client no more than that.
        log.error("internal error on %s %s", method, path, exc_info=exc)
        return error(500, "internal server error (see the server log)")

    async def counted_predict(request, name, version, verb):
        started = time.monotonic()
        try:
            if verb.lower() != "predict":
                raise RequestError(501, f":{verb} is not implemented; tfstyle models have predict signatures")
            response = await predict(request, name, version)
        except Exception as e:
            response = failure(e, request.method, request.url.path)
        # Unknown names (404) are counted without their name: clients must not mint label values.
        model = "" if response.status_code == 404 else name
        metrics.request_answered(model, response.status_code, time.monotonic() - started)
        return response

    async def api(request):
        path, method = request.url.path, request.method
        try:
            match = PREDICT_URL.fullmatch(path)
            if method == "POST" and match:
                name, version, verb = match.groups()
                return await counted_predict(request, name, None if version is None else int(version), verb)
            match = STATUS_URL.fullmatch(path)
            if method == "GET" and match:
                name, version, metadata = match.groups()
                version = None if version is None else int(version)
                if metadata:
                    return json_response(model_metadata(registry.get(name, version)))
                return json_response(registry.status(name, version))
            raise RequestError(400, f"Malformed request: {method} {path}")
        except Exception as e:
            return failure(e, method, path)

    async def models(request):
        return json_response({"models": [{"name": s.name, "version": str(s.version), "style_names": s.style_names}
                                         for s in registry.served()]})

    async def prometheus(request):
        body, media_type = metrics.exposition()
        return Response(body, headers={"Content-Type": media_type})

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
        Route("/metrics", prometheus),
        serve_video.clip_route(registry, limits),
        Route("/v1/{rest:path}", api, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


def parse_request(servable, body, limits):
    """(signature, {input: array}, finish) of a predict body, checked against ``servable``'s
    signatures (runs on a thread: JSON and base64 decoding take time). ``finish(outputs)``
    makes the response body in the request's format. Raises ``RequestError``."""
    from tfstyle import rest_json
    from tfstyle.rest_json import RequestError

    request = rest_json.parse_body(body)
    signature = request["signature_name"]
    if signature not in servable.inputs:
        raise RequestError(400, f'Serving signature name: "{signature}" not found in signature def '
                                f"(the model has {sorted(servable.inputs)})")
    arrays, fmt = rest_json.decode_inputs(request, servable.inputs[signature], limits.max_pixels)
    return signature, arrays, lambda outputs: json.dumps(rest_json.encode_outputs(outputs, fmt)).encode()


def run_model(servable, signature, arrays):
    """``servable.run`` (on a worker thread), its TF errors as ``RequestError`` with TF Serving's status."""
    import tensorflow as tf

    from tfstyle.rest_json import RequestError

    try:
        return servable.run(signature, arrays)
    except tf.errors.OpError as e:
        # The model's own message (e.g. "Invalid PNG data") does not say which input it is about.
        raise RequestError(HTTP_STATUS.get(e.error_code, 500), f"{', '.join(sorted(arrays))}: {tf_message(e)}") from None


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
        prefer_tflite_model=False, load_threads=1):
    """Serves the models under ``base_path`` until interrupted; picks up new versions every ``poll_seconds``.

    Listens at once; the models load in the background on ``load_threads`` threads.
    ``prefer_tflite_model``: serve a version from its ``model.tflite`` where it has one (``tfstyle.servables``).
    """
    import uvicorn

    from tfstyle.servables import ModelRegistry, servable_loader

    if not os.path.isdir(base_path):
        log.warning("%s does not exist (yet); models will be picked up when it appears", base_path)
    registry = ModelRegistry(base_path, model_name, loader=servable_loader(prefer_tflite_model), load_threads=load_threads)
    registry.poll()  # starts the loads
    stop = threading.Event()
    threading.Thread(target=poll_forever, args=(registry, poll_seconds, stop), daemon=True).start()
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: anyone who can reach this port can use the server (no authentication)", host)
    log.info("serving %s from %s at http://%s:%d/ (REST: /v1/models/NAME; models load in the background)",
             ", ".join(sorted(registry.model_dirs())) or "no models yet", registry.base_path, host, port)
    config = uvicorn.Config(create_app(registry, limits), host=host, port=port, log_config=None,
                            timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run()
    finally:
        stop.set()
