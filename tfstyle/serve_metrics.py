"""What ``tfstyle serve`` reports on ``GET /metrics``: Prometheus text format, via ``prometheus-client``.

* ``tfstyle_predict_requests_total{model, code}``: predict requests answered, by HTTP status
  (``model`` is empty for unknown names, so clients cannot add label values at will);
* ``tfstyle_predict_latency_seconds{model}``: arrival to answer, a histogram;
* ``tfstyle_queue_wait_seconds``: admission to a worker's start, a histogram;
* ``tfstyle_batch_rows``: rows (images) per model call, a histogram (above 1 only with batching);
* ``tfstyle_queue_depth``, ``tfstyle_model_calls_running``, ``tfstyle_predictions_admitted``: gauges
  read from the queue when scraped.

Each app gets its own ``CollectorRegistry``, so apps in one process (the tests) count apart.
"""

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class ServeMetrics:
    def __init__(self, queue):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        on = {"registry": self.registry}
        self.requests = Counter("tfstyle_predict_requests", "Predict requests answered, by model and HTTP status.",
                                ["model", "code"], **on)
        self.latency = Histogram("tfstyle_predict_latency_seconds", "Predict requests: arrival to answer.",
                                 ["model"], buckets=LATENCY_BUCKETS, **on)
        self.queue_wait = Histogram("tfstyle_queue_wait_seconds", "Predictions: time waiting for a worker.",
                                    buckets=LATENCY_BUCKETS, **on)
        self.batch_rows = Histogram("tfstyle_batch_rows", "Rows (images) per model call.", buckets=ROW_BUCKETS, **on)
        Gauge("tfstyle_queue_depth", "Predictions waiting for a worker.", **on).set_function(lambda: len(queue.waiting))
        Gauge("tfstyle_model_calls_running", "Model calls in progress.", **on).set_function(lambda: queue.running)
        Gauge("tfstyle_predictions_admitted", "Predictions admitted and not yet answered (running, waiting, "
              "being parsed or waiting for their model to load).", **on).set_function(lambda: queue.admitted)

    def model_call_started(self, waits, rows):
        for wait in waits:
            self.queue_wait.observe(wait)
        self.batch_rows.observe(rows)

    def request_answered(self, model, code, seconds):
        self.requests.labels(model, str(code)).inc()
        self.latency.labels(model).observe(seconds)

    def exposition(self):
        """(body, content type) for ``GET /metrics``."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
