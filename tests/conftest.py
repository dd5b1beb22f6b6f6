"""Shared test setup: quiet TensorFlow, two logical CPUs for MirroredStrategy, tiny fixtures."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Must happen before TensorFlow initializes its devices: lets MirroredStrategy run on one CPU.
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")


def synthetic_photos(directory, count, size, extension, seed):
    """Writes ``count`` photo-like images (smooth colour fields with hard-edged shapes and grain) of ``size`` (w, h)."""
    from PIL import Image, ImageDraw

    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        field = Image.fromarray(rng.uniform(0, 255, (5, 7, 3)).astype(np.uint8)).resize(size, Image.BICUBIC)
        draw = ImageDraw.Draw(field)
        for _ in range(6):
            x0, y0 = rng.integers(0, size[0] - 40), rng.integers(0, size[1] - 40)
            box = [x0, y0, x0 + rng.integers(20, size[0] // 2), y0 + rng.integers(20, size[1] // 2)]
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
        grain = rng.normal(0, 6, (size[1], size[0], 3))
        image = np.clip(np.asarray(field, np.float32) + grain, 0, 255).astype(np.uint8)
        Image.fromarray(image).save(os.path.join(directory, f"synthetic{i:02d}{extension}"))
    return directory


def photo_dirs():
    """(train, eval) folders: ../shared/data's photos, else synthetic ones of the same sizes.

    The tests need photos only as realistic inputs (they use the random VGG19), so a
    plain clone without ../shared runs them on synthetic photos; set
    TFSTYLE_TEST_SYNTHETIC_PHOTOS=1 to use those even where ../shared exists.
    """
    train, evaluation = (os.path.join(SHARED_DATA, "content", name) for name in ("train", "eval"))
    if os.path.isdir(train) and os.path.isdir(evaluation) and not os.environ.get("TFSTYLE_TEST_SYNTHETIC_PHOTOS"):
        return train, evaluation
    import tempfile

    base = os.path.join(tempfile.gettempdir(), "tfstyle-test-photos-v1")
    if not os.path.isdir(os.path.join(base, "eval")):
        synthetic_photos(os.path.join(base, "train"), 24, (481, 321), ".jpg", seed=1)
        synthetic_photos(base + ".tmp-eval", 6, (768, 512), ".png", seed=2)
        os.replace(base + ".tmp-eval", os.path.join(base, "eval"))
    return os.path.join(base, "train"), os.path.join(base, "eval")


TRAIN_DIR, EVAL_DIR = photo_dirs()


def run_python(*argv, cwd=REPO, timeout=300):
    """Runs ``python ARGV`` in a child process, TensorFlow's logs quiet; returns the CompletedProcess.

    The child imports this repo's ``tfstyle`` whatever ``cwd`` is (PYTHONPATH).
    """
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.pathsep.join(
        p for p in (REPO, os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def run_tfstyle(*args, cwd=REPO, timeout=300):
    """``python -m tfstyle ARGS`` (``run_python``)."""
    return run_python("-m", "tfstyle", *args, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="session")
def random_loss_network():
    """A seeded random VGG19 loss network (explicitly not ImageNet: tests say nothing about quality)."""
    from tfstyle import vgg

    return vgg.build_loss_network("random", seed=0)


@pytest.fixture
def float32_policy():
    """Restores the float32 policy after a test that changes it."""
    import keras

    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def photo_batch():
    """Four 32x32 crops of real photos, float32 0..255."""
    from tfstyle.images import list_images, load_image

    crops = [load_image(p)[100:132, 100:132] for p in list_images(TRAIN_DIR)[:4]]
    return np.stack(crops).astype(np.float32)
