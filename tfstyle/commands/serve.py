"""Serve exported styles with TensorFlow Serving's REST API, and a page to try them.

    tfstyle serve [--model_base_path=saved_models] [--port=8501]
    tfstyle serve --model_base_path=saved_models/mosaic --model_name=mosaic

Clients written for tensorflow_model_server work unchanged (GET
/v1/models/NAME[/metadata], POST /v1/models/NAME:predict); the page at / lets
you stylize a photo in the browser. New versions are picked up while running.
Binds 127.0.0.1 unless --host says otherwise. See docs/SERVING.md.
"""

from absl import app, flags

flags.DEFINE_string("model_base_path", "saved_models",
                    "Folder of models, <model_base_path>/<model_name>/<version>/ (every model below is served); "
                    "with --model_name, the folder of that model's versions.")
flags.DEFINE_string("model_name", "", "Serve one model under this name, its versions directly in --model_base_path.")
flags.DEFINE_string("host", "127.0.0.1", "Address to bind. The server has no authentication: keep it on loopback "
                    "unless the network in front of it is trusted.")
flags.DEFINE_integer("port", 8501, "HTTP port (TF Serving's REST port is 8501).")
flags.DEFINE_float("poll_seconds", 2.0, "How often to look for new, changed or removed model versions.")
flags.DEFINE_float("max_body_mb", 32.0, "Largest request body in MiB (413 beyond).")
flags.DEFINE_float("body_timeout_seconds", 30.0, "Time allowed to receive a request body (408 beyond).")
flags.DEFINE_integer("max_pixels", 16_777_216, "Most pixels per image (width x height), checked before decoding.")
flags.DEFINE_bool("prefer_tflite_model", False, "As TF Serving's flag: serve a version from its model.tflite "
                  "(LiteRT, about twice as fast on CPU) where the export wrote one, else from the SavedModel.")
flags.DEFINE_integer("max_concurrent", 2, "Model calls at once (worker threads); more predictions wait in the queue.")
flags.DEFINE_integer("max_queued", 64, "Predictions that may wait beyond --max_concurrent; more are refused with 429 "
                     "(Retry-After).")
flags.DEFINE_float("queue_timeout_seconds", 30.0, "Deadline from a prediction's admission to its start (its model "
                   "loading and the queue); later: 503 (Retry-After).")
flags.DEFINE_bool("enable_batching", False, "As TF Serving's flag: run waiting requests for the same model, signature "
                  "and image size as one model call.")
flags.DEFINE_integer("max_batch_size", 8, "With --enable_batching: most images per model call.")
flags.DEFINE_integer("batch_timeout_micros", 0, "With --enable_batching: how long a free worker waits for a batch "
                     "to fill (TF Serving's batching parameter; 0: run what is waiting).")
flags.DEFINE_integer("num_load_threads", 1, "As TF Serving's flag: models loaded at once, in the background; "
                     "status answers LOADING meanwhile and predicts wait for their model. Loading a SavedModel is "
                     "mostly Python (the GIL): more threads rarely help.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}: tfstyle serve takes only flags")
    from tfstyle import serve
    from tfstyle.servables import MODEL_NAME

    if FLAGS.model_name and not MODEL_NAME.fullmatch(FLAGS.model_name):
        raise app.UsageError(f"--model_name={FLAGS.model_name!r}: use letters, digits, '.', '_' and '-'")
    if min(FLAGS.max_body_mb, FLAGS.body_timeout_seconds, FLAGS.max_pixels, FLAGS.max_concurrent,
           FLAGS.poll_seconds, FLAGS.queue_timeout_seconds, FLAGS.max_batch_size, FLAGS.num_load_threads) <= 0:
        raise app.UsageError("--max_body_mb, --body_timeout_seconds, --max_pixels, --max_concurrent, --poll_seconds, "
                             "--queue_timeout_seconds, --max_batch_size and --num_load_threads must be positive")
    if min(FLAGS.max_queued, FLAGS.batch_timeout_micros) < 0:
        raise app.UsageError("--max_queued and --batch_timeout_micros must be 0 or more")
    from tfstyle.predict_queue import Batching

    batching = Batching(FLAGS.max_batch_size, FLAGS.batch_timeout_micros / 1e6) if FLAGS.enable_batching else None
    limits = serve.Limits(int(FLAGS.max_body_mb * (1 << 20)), FLAGS.body_timeout_seconds, FLAGS.max_pixels,
                          FLAGS.max_concurrent, FLAGS.max_queued, FLAGS.queue_timeout_seconds, batching)
    serve.run(FLAGS.model_base_path, FLAGS.model_name or None, FLAGS.host, FLAGS.port, FLAGS.poll_seconds, limits,
              prefer_tflite_model=FLAGS.prefer_tflite_model, load_threads=FLAGS.num_load_threads)
