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
TRAIN_DIR = os.path.join(SHARED_DATA, "content", "train")
EVAL_DIR = os.path.join(SHARED_DATA, "content", "eval")


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
