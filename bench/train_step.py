"""Training speed: seconds per step and images/s of the real training step.

``python bench/train_step.py --precisions=float32,mixed_float16,mixed_bfloat16 --strategies=default,mirrored --jit=off,on``

Each configuration runs in its own process (a precision policy and a strategy
are process-wide): it builds ``tfstyle.training.build_model`` (the
``StyleTransferModel`` that ``train.py`` fits, with the random seeded VGG19)
and times ``fit()`` steps on a fixed batch of random 0..255 images; the first
``--warmup`` steps (tracing, XLA compilation) are not counted. ``mirrored``
splits the batch over 2 logical devices (2 logical CPUs when there is no GPU).
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("default", "mirrored")


def run_one(args):
    """Runs one configuration in this process and prints its JSON line."""
    import tensorflow as tf

    if args.strategy == "mirrored":
        gpus = tf.config.list_physical_devices("GPU")
        if len(gpus) < 2:
            # Two logical devices on the first GPU or on the CPU: the mirrored code path on one device.
            dev = gpus[0] if gpus else tf.config.list_physical_devices("CPU")[0]
            conf = tf.config.LogicalDeviceConfiguration
            if gpus:
                per = max(1024, int(args.gpu_memory_mb) // 2)
                tf.config.set_logical_device_configuration(dev, [conf(memory_limit=per), conf(memory_limit=per)])
            else:
                tf.config.set_logical_device_configuration(dev, [conf(), conf()])
    import common

    common.set_threads(args.threads)
    import keras

    from tfstyle import distribution, training

    distribution.set_precision(args.precision)
    if args.strategy == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
            d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices[:2])
    else:
        strategy = tf.distribute.get_strategy()
    config = training.TrainConfig(style="mosaic", init_from="", vgg_weights="random", image_size=args.size,
                                  batch_size=args.batch, jit_compile=args.jit == "on", precision=args.precision,
                                  lr_schedule="constant", steps=1000, style_size=args.style_size)
    model = training.build_model(config, strategy)
    images = common.random_images(args.batch, args.size)
    data = tf.data.Dataset.from_tensors(images).repeat()
    if args.strategy == "mirrored":
        data = strategy.experimental_distribute_dataset(data)

    stamps = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            stamps.append(time.perf_counter())

    start = time.perf_counter()
    model.fit(data, steps_per_epoch=args.warmup + args.steps, epochs=1, verbose=0, callbacks=[Clock()])
    steps = [b - a for a, b in zip(stamps[args.warmup - 1:], stamps[args.warmup:])] if args.warmup else \
        [stamps[0] - start] + [b - a for a, b in zip(stamps, stamps[1:])]
    steps.sort()
    median = steps[len(steps) // 2]
    common.emit({"bench": "train_step", "precision": args.precision, "strategy": args.strategy,
                 "replicas": strategy.num_replicas_in_sync, "jit_compile": args.jit == "on", "batch": args.batch,
                 "size": args.size, "threads": args.threads, "median_step_s": round(median, 4),
                 "images_per_s": round(args.batch / median, 3), "step_times_s": [round(s, 4) for s in steps],
                 "warmup_steps": args.warmup, **common.machine()})


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--precisions", default=",".join(PRECISIONS))
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--jit", default="off,on", help="comma list of off, on (jit_compile)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--style_size", type=int, default=512)
    p.add_argument("--steps", type=int, default=5, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--threads", type=int, default=0, help="TF intra-op threads (0: TF default = all cores)")
    p.add_argument("--gpu_memory_mb", type=int, default=16384, help="split between the 2 logical GPUs of 'mirrored'")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per configuration")
    p.add_argument("--quick", action="store_true", help="32 px, batch 2, 1+1 steps, float32 default and mirrored")
    p.add_argument("--one", nargs=3, metavar=("PRECISION", "STRATEGY", "JIT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.size, args.batch, args.steps, args.warmup, args.style_size = 32, 2, 1, 1, 64
    if args.one:
        args.precision, args.strategy, args.jit = args.one
        return run_one(args)
    if args.quick:
        configs = [("float32", "default", "off"), ("float32", "mirrored", "off")]
    else:
        configs = [(pr, st, j) for pr in args.precisions.split(",") for st in args.strategies.split(",")
                   for j in args.jit.split(",")]
    for pr, st, j in configs:
        if pr not in PRECISIONS or st not in STRATEGIES or j not in ("off", "on"):
            sys.exit(f"error: unknown configuration {pr}/{st}/jit={j}")
    passthrough = [f"--batch={args.batch}", f"--size={args.size}", f"--steps={args.steps}", f"--warmup={args.warmup}",
                   f"--threads={args.threads}", f"--style_size={args.style_size}", f"--gpu_memory_mb={args.gpu_memory_mb}"]
    failures = 0
    for pr, st, j in configs:
        cmd = [sys.executable, os.path.abspath(__file__), "--one", pr, st, j, *passthrough]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            line = next((ln for ln in r.stdout.splitlines() if ln.startswith("{")), None)
            if r.returncode == 0 and line:
                print(line, flush=True)
                continue
            reason = (r.stderr.strip().splitlines() or ["no output"])[-1][:300]
        except subprocess.TimeoutExpired:
            reason = f"timed out after {args.timeout} s"
        failures += 1
        print(json.dumps({"bench": "train_step", "precision": pr, "strategy": st, "jit_compile": j == "on",
                          "error": reason}), flush=True)
    return 1 if failures and args.quick else 0


if __name__ == "__main__":
    sys.exit(main() or 0)
