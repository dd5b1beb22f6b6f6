"""Start-up of ``tfstyle serve``: seconds until it first answers, and until every model is AVAILABLE.

    python bench/serve_start.py --model_base_path=saved_models
    python bench/serve_start.py --model_base_path=saved_models --server_flags="--num_load_threads=4"

Starts the server on a free loopback port, asks ``GET /v1/models/NAME`` for every model folder
every 0.1 s, and prints one JSON line: the seconds to the first answer (with the states then) and
to all AVAILABLE. Stops after ``--max_seconds``.
"""

import argparse
import http.client
import json
import os
import shlex
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
from serve_load import REPO, free_port  # noqa: E402


def states(port, names):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        found = {}
        for name in names:
            conn.request("GET", f"/v1/models/{name}")
            response = conn.getresponse()
            body = json.loads(response.read())
            found[name] = body["model_version_status"][0]["state"] if response.status == 200 else response.status
        return found
    finally:
        conn.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_base_path", default="saved_models")
    parser.add_argument("--server_flags", default="", help="more `tfstyle serve` flags")
    parser.add_argument("--max_seconds", type=float, default=300)
    args = parser.parse_args(argv)
    names = sorted(n for n in os.listdir(args.model_base_path) if os.path.isdir(os.path.join(args.model_base_path, n)))
    port = free_port()
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "tfstyle", "serve", f"--model_base_path={args.model_base_path}",
                             f"--port={port}", *shlex.split(args.server_flags)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO})
    first = first_states = available = None
    try:
        while time.monotonic() < start + args.max_seconds and proc.poll() is None:
            try:
                now = states(port, names)
            except OSError:
                now = None
            if now is not None and first is None:
                first, first_states = time.monotonic() - start, sorted(set(map(str, now.values())))
            if now is not None and all(s == "AVAILABLE" for s in now.values()):
                available = time.monotonic() - start
                break
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(30)
    common.emit({"bench": "serve_start", **common.machine(), "models": len(names), "server_flags": args.server_flags,
                 "first_answer_s": round(first, 1) if first else None, "states_at_first_answer": first_states,
                 "all_available_s": round(available, 1) if available else None})


if __name__ == "__main__":
    main()
