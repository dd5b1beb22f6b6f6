"""Keras callbacks for training runs: safe backups, transformer checkpoints, preview grids."""

import glob
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfstyle.images import save_image


def weights_are_finite(model):
    return all(np.isfinite(w).all() for w in model.get_weights())


class SafeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that never overwrites a good backup with NaN weights, and says when it resumes."""

    def __init__(self, backup_dir, steps_of, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.steps_of = steps_of

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.steps_of(self.model):
            logging.info("resuming from the checkpoint in %s at step %d", self.backup_dir, self.steps_of(self.model))

    def on_epoch_end(self, epoch, logs=None):
        if not np.isfinite((logs or {}).get("loss", 0.0)) or not weights_are_finite(self.model.transformer):
            logging.error("non-finite loss or weights at epoch %d: keeping the previous backup", epoch + 1)
            self.model.stop_training = True
            return
        super().on_epoch_end(epoch, logs)


def save_weights_atomically(model, path):
    """Writes ``model``'s weights to ``path`` through a temporary file, so a kill never leaves half a file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path.replace(".weights.h5", ".tmp.weights.h5")
    model.save_weights(tmp)
    os.replace(tmp, path)


class TransformerCheckpoint(keras.callbacks.Callback):
    """Saves the transformer alone every epoch (= every ``--checkpoint_every`` steps), keeping the last few."""

    def __init__(self, directory, steps_of, keep=5):
        super().__init__()
        self.directory = directory
        self.steps_of = steps_of
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        if not weights_are_finite(self.model.transformer):
            return
        path = os.path.join(self.directory, f"transformer_step{self.steps_of(self.model):07d}.weights.h5")
        save_weights_atomically(self.model.transformer, path)
        for old in sorted(glob.glob(os.path.join(self.directory, "transformer_step*.weights.h5")))[: -self.keep]:
            os.remove(old)


class PreviewGrid(keras.callbacks.Callback):
    """Every ``every`` steps, stylizes fixed photos into a grid (content row over stylized row).

    The grid goes to ``<directory>/step_XXXXXXX.png`` and to TensorBoard as an image summary.
    """

    def __init__(self, images, directory, log_dir, every, steps_of):
        super().__init__()
        self.images = tf.convert_to_tensor(images, tf.float32)
        self.directory = directory
        self.every = every
        self.steps_of = steps_of
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "previews")) if log_dir else None
        self._last = None

    def on_train_batch_end(self, batch, logs=None):
        step = self.steps_of(self.model)
        if self.every and step and step % self.every == 0 and step != self._last:
            self._last = step
            self.write(step)

    def write(self, step):
        stylized = self.model.transformer(self.images, training=False).numpy()
        content = self.images.numpy()
        grid = np.concatenate([np.concatenate(list(content), axis=1), np.concatenate(list(stylized), axis=1)], axis=0)
        save_image(os.path.join(self.directory, f"step_{step:07d}.png"), grid)
        if self.writer:
            with self.writer.as_default():
                tf.summary.image("preview", grid[None] / 255.0, step=step)
            self.writer.flush()
