import keras
import numpy as np
import tensorflow as tf

from tfstyle import losses
from tfstyle.vgg import VGGPreprocess


def numpy_gram(f):
    b, h, w, c = f.shape
    flat = f.reshape(b, h * w, c)
    return np.einsum("bnc,bnd->bcd", flat, flat) / (c * h * w)


def test_gram_matrix_matches_numpy():
    f = np.random.default_rng(0).normal(size=(2, 5, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(losses.gram_matrix(f).numpy(), numpy_gram(f), rtol=1e-5, atol=1e-6)


def test_gram_matrix_of_float16_features_does_not_overflow():
    # block1 features of a 256 px image reach ~1000; their float16 products overflow.
    f = np.full((1, 64, 64, 4), 1000.0, np.float16)
    gram = losses.gram_matrix(tf.constant(f))
    assert gram.dtype == tf.float32
    np.testing.assert_allclose(gram.numpy(), 1000.0**2 / 4, rtol=1e-3)


def test_content_loss_matches_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 2, 4, 4, 3)).astype(np.float32)
    expected = ((a - b) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(losses.content_loss(a, b).numpy(), expected, rtol=1e-5)


def test_style_loss_matches_numpy():
    rng = np.random.default_rng(2)
    feats = {"l1": rng.normal(size=(2, 6, 6, 3)).astype(np.float32), "l2": rng.normal(size=(2, 3, 3, 5)).astype(np.float32)}
    targets = {"l1": numpy_gram(rng.normal(size=(1, 8, 8, 3))), "l2": numpy_gram(rng.normal(size=(1, 4, 4, 5)))}
    expected = sum(((numpy_gram(feats[k]) - targets[k]) ** 2).mean(axis=(1, 2)) for k in feats)
    np.testing.assert_allclose(losses.style_loss(feats, targets).numpy(), expected, rtol=1e-5)


def test_total_variation_matches_numpy():
    x = np.random.default_rng(3).uniform(0, 255, size=(2, 5, 6, 3)).astype(np.float32)
    expected = ((x[:, 1:] - x[:, :-1]) ** 2).mean(axis=(1, 2, 3)) + ((x[:, :, 1:] - x[:, :, :-1]) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(losses.total_variation_loss(x).numpy(), expected, rtol=1e-5)
    assert float(losses.total_variation_loss(np.full((1, 4, 4, 3), 7.0, np.float32))[0]) == 0.0


def test_vgg_preprocessing_is_keras_preprocess_input():
    x = np.random.default_rng(4).uniform(0, 255, size=(2, 3, 4, 3)).astype(np.float32)
    expected = keras.applications.vgg19.preprocess_input(x.copy())
    np.testing.assert_allclose(VGGPreprocess()(x).numpy(), expected, rtol=1e-6, atol=1e-4)
