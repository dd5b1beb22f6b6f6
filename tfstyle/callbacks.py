"""Keras callbacks for training runs: safe backups, checkpoints, previews, progress lines, the last step."""

import glob
import os
import time

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

    def restore(self, model):
        """Loads the backup into ``model`` now, if there is one; returns the step it holds (0 if none).

        ``fit`` restores it again in ``on_train_begin``; loading it first tells
        whether there is anything left to train.
        """
        for path in (self._weights_path, self._prev_weights_path):
            if os.path.exists(path):
                try:
                    model.load_weights(path)
                    break
                except Exception:  # a backup cut short by a kill: try the previous one
                    continue
        return self.steps_of(model)

    def on_epoch_end(self, epoch, logs=None):
        if not np.isfinite((logs or {}).get("loss", 0.0)) or not weights_are_finite(self.model.transformer):
            logging.error("non-finite loss or weights at epoch %d: keeping the previous backup", epoch + 1)
            self.model.stop_training = True
            return
        super().on_epoch_end(epoch, logs)


def save_weights_atomically(model, path):
    """Writes ``model``'s weights to ``path`` through a temporary file, so a kill never leaves half a file.

    A multi-style transformer's row names (``model.row_names``) go into the same file.
    """
    from tfstyle import multistyle

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path.replace(".weights.h5", ".tmp.weights.h5")
    model.save_weights(tmp)
    if getattr(model, "row_names", None):
        multistyle.write_h5_row_names(tmp, model.row_names)
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
    """Every ``every`` steps, stylizes fixed photos into a grid (content row over a stylized row per style).

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

    def on_train_end(self, logs=None):
        step = self.steps_of(self.model)
        if self.every and step and step != self._last and weights_are_finite(self.model.transformer):
            self._last = step
            self.write(step)  # the last step's preview, also when --steps is no multiple of --preview_every

    def write(self, step):
        from tfstyle.transformer import style_count

        transformer = self.model.transformer
        rows = style_count(transformer)
        if rows is None:
            stylized = [transformer(self.images, training=False).numpy()]
        else:  # one row of the grid per style row of the network
            n = int(self.images.shape[0])
            stylized = [transformer([self.images, tf.one_hot([r] * n, rows)], training=False).numpy()
                        for r in range(rows)]
        content = self.images.numpy()
        grid = np.concatenate([np.concatenate(list(batch), axis=1) for batch in [content, *stylized]], axis=0)
        save_image(os.path.join(self.directory, f"step_{step:07d}.png"), grid)
        if self.writer:
            with self.writer.as_default():
                tf.summary.image("preview", grid[None] / 255.0, step=step)
            self.writer.flush()


class StopAtStep(keras.callbacks.Callback):
    """Ends ``fit`` once the optimizer has made ``steps`` updates, inside an epoch if need be.

    The epoch then ends as usual, so the last step is checkpointed and backed up
    even when ``--steps`` is no multiple of ``--checkpoint_every``.
    """

    def __init__(self, steps, steps_of):
        super().__init__()
        self.steps = steps
        self.steps_of = steps_of

    def on_train_batch_end(self, batch, logs=None):
        if self.steps_of(self.model) >= self.steps:
            self.model.stop_training = True


def format_duration(seconds):
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class ProgressLog(keras.callbacks.Callback):
    """Every ``every`` steps, one log line: step, losses, seconds per step, images/s and the time left.

    Written through absl logging, so it reads the same on a terminal, in a log
    file under ``nohup`` and in CI. Speeds are measured since this process
    started training (a resumed run does not count the steps it restored).
    """

    def __init__(self, total_steps, batch_size, steps_of, every=10):
        super().__init__()
        self.total_steps = total_steps
        self.batch_size = batch_size
        self.steps_of = steps_of
        self.every = every
        self._start = None
        self._last = None

    def on_train_begin(self, logs=None):
        self._start = (time.perf_counter(), self.steps_of(self.model))
        logging.info("training steps %d to %d", self._start[1] + 1, self.total_steps)

    def on_train_batch_end(self, batch, logs=None):
        step = self.steps_of(self.model)
        if not self.every or step == self._last or (step % self.every and step < self.total_steps):
            return
        self._last = step
        elapsed = time.perf_counter() - self._start[0]
        done = step - self._start[1]
        per_step = elapsed / max(1, done)
        logs = logs or {}
        losses = "  ".join(f"{k} {float(logs[k]):.4g}" for k in sorted(logs, key=lambda k: (k != "loss", k)))
        logging.info("step %d/%d  %s  %.2f s/step  %.2f img/s  ETA %s", step, self.total_steps, losses, per_step,
                     self.batch_size / per_step, format_duration(per_step * (self.total_steps - step)))
