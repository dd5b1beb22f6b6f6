"""``python train.py`` as users run it: bad input, skipped files, resume after SIGKILL, multi-worker."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, TRAIN_DIR
from images_zoo import BAD_FILES, make_zoo

pytestmark = pytest.mark.slow  # subprocesses, conversions or servers: the quick tier skips them

TINY_FLAGS = ["--vgg_weights=random", "--image_size=32", "--style_size=32", "--batch_size=2", "--preview_every=0"]


def train_command(*flags):
    return [sys.executable, os.path.join(REPO, "train.py"), *flags]


def run_train(*flags, env=None, timeout=240):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run(train_command(*flags), capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in errors[0]


def test_unknown_style_lists_the_valid_names(tmp_path):
    result = run_train("--style=monet", f"--data_dir={TRAIN_DIR}", f"--runs_dir={tmp_path}", *TINY_FLAGS)
    assert_one_line_error(result, "unknown style 'monet'", "mosaic", "the_scream")


def test_missing_data_dir(tmp_path):
    result = run_train("--style=mosaic", f"--data_dir={tmp_path}/nowhere", f"--runs_dir={tmp_path}", *TINY_FLAGS)
    assert_one_line_error(result, f"{tmp_path}/nowhere: no such directory")


def test_missing_imagenet_weights_say_where_the_file_goes(tmp_path):
    flags = [f for f in TINY_FLAGS if not f.startswith("--vgg_weights")]
    result = run_train("--style=mosaic", f"--data_dir={TRAIN_DIR}", f"--runs_dir={tmp_path}", "--vgg_weights=imagenet", *flags,
                       env={"KERAS_HOME": str(tmp_path / "keras"), "TFSTYLE_VGG19_WEIGHTS": ""})
    assert_one_line_error(result, os.path.join(str(tmp_path), "keras", "models", "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"))


def test_trains_offline_on_the_packaged_loss_network_by_default(tmp_path):
    from tfstyle import vgg

    painting = tmp_path / "painting.jpg"
    os.link(os.path.join(REPO, "tfstyle", "styles", "mosaic.jpg"), painting)
    flags = [f for f in TINY_FLAGS if not f.startswith("--vgg_weights")] + ["--style_levels=1"]  # 32 px: no pyramid
    result = run_train(f"--style={painting}", f"--data_dir={TRAIN_DIR}", f"--runs_dir={tmp_path}", "--steps=1", *flags,
                       env={"KERAS_HOME": str(tmp_path / "keras"), "TFSTYLE_VGG19_WEIGHTS": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"loss network: {vgg.PACKAGED_BLOCKS_1_TO_3}" in result.stderr
    assert f"loss recipe for VGG19 blocks 1-3, pyramid ({vgg.PACKAGED_BLOCKS_1_TO_3})" in result.stderr
    assert json.load(open(tmp_path / "painting" / "config.json"))["vgg_weights"] == vgg.PACKAGED_BLOCKS_1_TO_3


def test_a_missing_loss_network_file_is_one_line_before_any_recipe(tmp_path):
    flags = [f for f in TINY_FLAGS if not f.startswith("--vgg_weights")]
    result = run_train("--style=mosaic", f"--data_dir={TRAIN_DIR}", f"--runs_dir={tmp_path}", f"--vgg_weights={tmp_path}/no.npz",
                       *flags)
    assert_one_line_error(result, f"{tmp_path}/no.npz: no such VGG19 weights file")
    assert "loss recipe" not in result.stderr


def test_folder_with_bad_files_trains_and_reports_skipped(tmp_path):
    zoo = make_zoo(str(tmp_path / "photos"), os.path.join(TRAIN_DIR, sorted(os.listdir(TRAIN_DIR))[0]))
    os.remove(os.path.join(zoo, "one_pixel.png"))  # flat, like blank.png; covered by the all-unusable test
    flags = [f for f in TINY_FLAGS if not f.startswith("--preview_every")]
    result = run_train("--style=candy", f"--data_dir={zoo}", f"--runs_dir={tmp_path}/runs", "--steps=6", "--checkpoint_every=3",
                       "--preview_every=3", "--accum_steps=2", *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipped 4 unreadable image file(s)" in result.stderr
    for name in BAD_FILES:
        assert name in result.stderr
    assert result.stderr.count("animated.gif: animated image with 2 frames, using the first") == 1
    config = json.load(open(tmp_path / "runs" / "candy" / "config.json"))
    assert config["final_step"] == 6 and config["skipped_files"] == 4
    run = tmp_path / "runs" / "candy"
    assert os.path.exists(run / "transformer.weights.h5")
    assert sorted(os.listdir(run / "previews")) == ["step_0000003.png", "step_0000006.png"]
    assert sorted(os.listdir(run / "checkpoints")) == ["transformer_step0000003.weights.h5", "transformer_step0000006.weights.h5"]
    assert os.listdir(run / "logs" / "previews") and os.listdir(run / "logs" / "train")


def test_folder_of_only_unusable_images_ends_in_one_line_not_a_hang(tmp_path):
    """Files that pass the header scan but fail to decode (a truncated JPEG) must not be filtered forever."""
    zoo = make_zoo(str(tmp_path / "zoo"), os.path.join(TRAIN_DIR, sorted(os.listdir(TRAIN_DIR))[0]))
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("empty.jpg", "truncated.jpg", "blank.png", "one_pixel.png"):
        os.rename(os.path.join(zoo, name), bad / name)
    (bad / "text.jpg").write_text("not an image")
    result = run_train("--style=mosaic", f"--data_dir={bad}", f"--runs_dir={tmp_path}/runs", "--steps=2", *TINY_FLAGS,
                       timeout=120)
    assert_one_line_error(result, f"{bad}: none of its", "can be used")


@pytest.mark.parametrize("flag, message", [
    ("--batch_size=0", "flag --batch_size=0: 0 is not a positive integer"),
    ("--image_size=7", "flag --image_size=7: 7 is not integer >= 16"),
    ("--steps=-3", "flag --steps=-3"),
    ("--lr=-1", "flag --lr=-1"),
    ("--precision=fp8", "flag --precision=fp8"),
])
def test_bad_flags_end_in_one_line_before_tensorflow_loads(tmp_path, flag, message):
    result = run_train("--style=mosaic", f"--data_dir={TRAIN_DIR}", f"--runs_dir={tmp_path}", *TINY_FLAGS, flag)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "Flags parsing error" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr[-1000:]
    assert not os.path.exists(tmp_path / "mosaic")


def test_steps_need_not_be_a_multiple_of_checkpoint_every_and_progress_is_logged(tmp_path):
    result = run_train("--style=mosaic", f"--data_dir={TRAIN_DIR}", f"--runs_dir={tmp_path}", "--steps=5",
                       "--checkpoint_every=2", "--log_every=2", *[f for f in TINY_FLAGS if "preview" not in f],
                       "--preview_every=4")
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "mosaic"
    assert sorted(os.listdir(run / "checkpoints"))[-1] == "transformer_step0000005.weights.h5"
    assert sorted(os.listdir(run / "previews")) == ["step_0000004.png", "step_0000005.png"]
    assert json.load(open(run / "config.json"))["final_step"] == 5
    # Progress reaches a log file too (stderr is a pipe here): steps, speed, time left.
    for step in (2, 4, 5):
        assert f"step {step}/5  loss " in result.stderr
    assert "img/s  ETA " in result.stderr
    assert f"wrote {run / 'transformer.weights.h5'}" in result.stdout
    again = run_train("--style=mosaic", f"--data_dir={TRAIN_DIR}", f"--runs_dir={tmp_path}", "--steps=5",
                      "--checkpoint_every=2", *TINY_FLAGS)
    assert again.returncode == 0 and "step 5/5" not in again.stderr  # finished: nothing trained again


def test_resume_after_sigkill_continues_the_step_counter(tmp_path):
    flags = ["--style=mosaic", f"--data_dir={TRAIN_DIR}", f"--runs_dir={tmp_path}", "--steps=40", "--checkpoint_every=2", *TINY_FLAGS]
    backup = tmp_path / "mosaic" / "backup" / "training_metadata.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(train_command(*flags), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while not backup.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert backup.exists(), "no checkpoint was written before the kill"
    killed_at = json.load(open(backup))["epoch"] * 2
    assert 2 <= killed_at < 40, "the first run finished before it could be killed"

    result = run_train(*flags)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from the checkpoint" in result.stderr
    resumed_at = int(result.stderr.split("resuming from the checkpoint")[1].split("at step ")[1].split()[0])
    assert resumed_at >= killed_at
    assert json.load(open(tmp_path / "mosaic" / "config.json"))["final_step"] == 40


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_training_ends_with_identical_weights(tmp_path):
    """Two worker processes on 127.0.0.1, each with its own TF_CONFIG, as on two machines."""
    from tfstyle.transformer import build_transformer

    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": tf_config}
        log = open(tmp_path / f"worker{index}.log", "w")
        flags = ["--style=mosaic", f"--data_dir={TRAIN_DIR}", f"--runs_dir={tmp_path}", "--steps=2", "--checkpoint_every=2",
                 *TINY_FLAGS]
        processes.append(subprocess.Popen(train_command(*flags), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        codes = [p.wait(timeout=300) for p in processes]
    finally:
        for p in processes:
            p.kill()
    logs = [open(tmp_path / f"worker{i}.log").read() for i in range(2)]
    assert codes == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    assert "strategy multi_worker (CollectiveAllReduceStrategy) with 2 replica(s)" in logs[0]
    weights = []
    for path in (tmp_path / "mosaic" / "transformer.weights.h5", tmp_path / "mosaic" / "worker1" / "transformer.weights.h5"):
        net = build_transformer()
        initial = net.get_weights()
        net.load_weights(str(path))
        assert any(not np.array_equal(a, b) for a, b in zip(initial, net.get_weights()))
        weights.append(net.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
