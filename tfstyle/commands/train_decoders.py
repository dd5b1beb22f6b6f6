"""Train the decoders that make any painting a style (``--style=painting.jpg`` with no trained network).

    tfstyle train-decoders --data_dir=PHOTOS [--steps=2000] [--out=runs/decoders/wct_decoders.npz]

Three decoders learn to turn the VGG19 encoder's relu1_1, relu2_1 and relu3_1
features back into the photo (pixel + feature reconstruction, Li et al. 2017):
photos only, no paintings. The package ships decoders trained this way
(``tfstyle/weights/wct_decoders.npz``); ``tfstyle stylize --decoders=FILE``
uses others. Weights are written every --checkpoint_every steps and at the end,
as float16, with a JSON card beside them.
"""

from absl import flags

from tfstyle.commands import common

flags.DEFINE_string("data_dir", None, "Folder of training photos (searched recursively).")
flags.DEFINE_string("vgg_weights", "auto", "The encoder: VGG19 weights covering block3_conv1 ('auto': the packaged "
                    "genuine ImageNet blocks 1-3; 'random' for tests only).")
flags.DEFINE_string("out", "runs/decoders/wct_decoders.npz", "Where to write the decoders (.npz).")
flags.DEFINE_string("init_from", "", "Start from these decoders (.npz) instead of random weights.")
flags.DEFINE_integer("image_size", 192, "Training crop size in pixels.", lower_bound=16)
flags.DEFINE_integer("batch_size", 4, "Photos per step.", lower_bound=1)
flags.DEFINE_integer("steps", 2000, "Optimizer steps.", lower_bound=1)
flags.DEFINE_float("lr", 1e-3, "Adam learning rate (cosine decay to 1% over --steps).", lower_bound=0.0)
flags.DEFINE_float("feature_weight", 1.0, "Weight of the feature reconstruction loss beside the pixel loss.",
                   lower_bound=0.0)
flags.DEFINE_integer("checkpoint_every", 200, "Steps between writes of --out.", lower_bound=1)
flags.DEFINE_integer("log_every", 20, "Steps between progress lines.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the decoders' initialization (and of a random encoder).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) != 1:
        common.fail(f"unexpected arguments {argv[1:]}; usage: tfstyle train-decoders --data_dir=PHOTOS", 2)
    if not FLAGS.data_dir:
        common.fail("--data_dir is required: a folder of photos to learn reconstruction from", 2)
    import keras
    from absl import logging

    from tfstyle import callbacks, data, decoders, vgg

    keras.utils.set_random_seed(FLAGS.seed)
    skipped = data.SkippedFiles()
    try:
        encoder_weights = vgg.resolve_weights(FLAGS.vgg_weights)
        encoder = decoders.build_encoder(encoder_weights, seed=FLAGS.seed)
        nets = decoders.load_decoders(FLAGS.init_from) if FLAGS.init_from else decoders.build_decoders()
        dataset = data.folder_dataset(FLAGS.data_dir, FLAGS.image_size, FLAGS.batch_size, skipped=skipped,
                                      shuffle_seed=FLAGS.seed)
    except (vgg.LossNetworkError, decoders.DecoderError, data.DataError, OSError) as e:
        common.fail(e)
    trainer = decoders.DecoderTrainer(encoder, nets, FLAGS.feature_weight)
    schedule = keras.optimizers.schedules.CosineDecay(FLAGS.lr, FLAGS.steps, alpha=0.01)
    trainer.compile(optimizer=keras.optimizers.Adam(schedule))
    card = {"encoder": encoder_weights,
            "data_dir": FLAGS.data_dir, "image_size": FLAGS.image_size, "batch_size": FLAGS.batch_size,
            "lr": FLAGS.lr, "feature_weight": FLAGS.feature_weight, "init_from": FLAGS.init_from}

    def steps_of(model):
        return int(model.optimizer.iterations.numpy())

    class WriteDecoders(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            step = steps_of(self.model)
            due = step % FLAGS.checkpoint_every == 0 or step == FLAGS.steps
            if due and callbacks.weights_are_finite(self.model):  # a NaN step never overwrites good decoders
                losses = {k: round(float(v), 6) for k, v in (logs or {}).items()}
                decoders.save_decoders(FLAGS.out, nets, {**card, "steps": step, "losses": losses})

    try:
        trainer.fit(dataset, epochs=1, steps_per_epoch=FLAGS.steps, verbose=0,
                    callbacks=[keras.callbacks.TerminateOnNaN(), WriteDecoders(),
                               callbacks.ProgressLog(FLAGS.steps, FLAGS.batch_size, steps_of, FLAGS.log_every)])
    except data.DataError as e:
        common.fail(e, hard=True)
    if skipped.fatal:
        common.fail(skipped.fatal, hard=True)
    if not callbacks.weights_are_finite(trainer):
        common.fail(f"the loss became NaN; {FLAGS.out} holds the last finite checkpoint (lower --lr)")
    logging.info("wrote %s", FLAGS.out)
    print(f"wrote {FLAGS.out}")
