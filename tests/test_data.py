import os

import numpy as np
import pytest

from conftest import TRAIN_DIR
from images_zoo import BAD_FILES, DEEP16, make_zoo
from tfstyle import data
from tfstyle.images import ImageError, list_images, load_image


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return make_zoo(str(tmp_path_factory.mktemp("zoo")), list_images(TRAIN_DIR)[0])


def test_list_images_is_recursive_and_filters_extensions(zoo):
    names = {os.path.relpath(p, zoo) for p in list_images(zoo)}
    assert os.path.join("nested", "deeper.webp") in names
    assert "notes.txt" not in names
    assert len(names) == 14


@pytest.mark.parametrize("name,shape", [("gray.png", (40, 50, 3)), ("rgba.png", (40, 50, 3)), ("deep16.png", (40, 50, 3)),
                                        ("cmyk.jpg", (40, 50, 3)), ("rotated.jpg", (60, 20, 3))])
def test_odd_images_load_as_upright_8bit_rgb(zoo, name, shape):
    image = load_image(os.path.join(zoo, name))
    assert image.shape == shape and image.dtype == np.uint8


def test_sixteen_bit_values_are_scaled_not_clipped(zoo):
    image = load_image(os.path.join(zoo, "deep16.png"))
    np.testing.assert_array_equal(image[..., 0], DEEP16 >> 8)
    assert image.max() == 255


def test_transparent_pixels_become_white(tmp_path):
    from PIL import Image

    path = str(tmp_path / "clear.png")
    Image.new("RGBA", (4, 4), (10, 20, 30, 0)).save(path)
    assert np.all(load_image(path) == 255)


@pytest.mark.parametrize("name,problem", [("empty.jpg", "empty file"), ("garbage.jpg", "not a readable image"),
                                          ("truncated.jpg", "truncated")])
def test_unusable_files_raise_one_line_errors_naming_the_file(zoo, name, problem):
    with pytest.raises(ImageError) as e:
        load_image(os.path.join(zoo, name))
    assert str(e.value).startswith(os.path.join(zoo, name) + ": ")
    assert problem in str(e.value) and "\n" not in str(e.value)


def test_pipeline_skips_and_counts_unusable_files(zoo):
    skipped = data.SkippedFiles()
    ds = data.folder_dataset(zoo, image_size=32, batch_size=2, skipped=skipped, shuffle_seed=0)
    batches = [b.numpy() for b in ds.take(12)]  # 24 crops: every file comes up at least twice
    assert all(b.shape == (2, 32, 32, 3) and b.dtype == np.float32 for b in batches)
    assert all(np.isfinite(b).all() and b.min() >= 0 and b.max() <= 255 for b in batches)
    assert sorted(os.path.basename(p) for p in skipped.reasons) == sorted(BAD_FILES + ("one_pixel.png",))


def test_flat_crops_are_dropped():
    import tensorflow as tf

    flat = tf.data.Dataset.from_tensors(tf.fill((40, 40, 3), tf.constant(200, tf.uint8))).repeat(3)
    textured = tf.data.Dataset.from_tensors(tf.cast(tf.reshape(tf.range(40 * 40 * 3) % 256, (40, 40, 3)), tf.uint8))
    batches = list(data._batch(flat.concatenate(textured), 32, 1))
    assert len(batches) == 1 and batches[0].numpy().std() > 1


def test_random_crop_upscales_small_images():
    import tensorflow as tf

    crop = data.random_crop(tf.zeros((8, 12, 3), tf.uint8), 32)
    assert crop.shape == (32, 32, 3)


def test_missing_or_empty_folder_is_a_data_error(tmp_path):
    with pytest.raises(data.DataError, match="no such directory"):
        data.folder_dataset(str(tmp_path / "nope"), 32, 2)
    with pytest.raises(data.DataError, match="no readable images"):
        data.folder_dataset(str(tmp_path), 32, 2)


def test_tfds_pipeline_on_mocked_coco(monkeypatch):
    """The TFDS path, on tfds' own mock of coco/2017 (the real data needs a download)."""
    import tensorflow_datasets as tfds

    monkeypatch.setattr(data, "reachable", lambda url, timeout=5.0: True)  # the mock "downloads" nothing

    with tfds.testing.mock_data(num_examples=6):
        batch = next(iter(data.tfds_dataset("coco/2017", image_size=32, batch_size=3)))
    assert batch.shape == (3, 32, 32, 3)


def test_unknown_tfds_dataset_is_a_data_error():
    with pytest.raises(data.DataError, match="no_such_dataset"):
        data.tfds_dataset("no_such_dataset", 32, 2)


def test_tfds_dataset_not_downloaded_fails_at_once_when_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "reachable", lambda url, timeout=5.0: False)
    with pytest.raises(data.DataError) as e:
        data.tfds_dataset("coco/2017", 64, 2, data_dir=str(tmp_path))
    message = str(e.value)
    assert "'coco/2017': not downloaded in" in message and "cannot be reached" in message and "--data_dir" in message


def test_reachable_is_false_for_a_closed_port():
    assert not data.reachable("http://127.0.0.1:9/", timeout=1.0)
