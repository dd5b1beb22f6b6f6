"""The subcommands of ``tfstyle``: one module each, with its flags and ``main(argv)``.

A module imports only absl and light tfstyle modules at import time; TensorFlow
is imported inside ``main``, so ``--help`` and flag errors answer at once.
"""

# name -> (module, one line for `tfstyle --help`), in the order a user meets them.
SUBCOMMANDS = {
    "styles": ("tfstyle.commands.styles", "list the bundled style images, shipped trained styles and your trained runs"),
    "stylize": ("tfstyle.commands.stylize", "apply a style to photos: files or folders, huge photos in tiles"),
    "train": ("tfstyle.commands.train", "train a style network on a folder of photos (or COCO)"),
    "train-decoders": ("tfstyle.commands.train_decoders", "train the decoders that make any painting a style without training"),
    "qat": ("tfstyle.commands.qat", "fine-tune a trained network so its INT8 file matches its float output"),
    "export": ("tfstyle.commands.export", "write a style's TF Serving SavedModel and INT8 / fp16 TFLite files"),
    "serve": ("tfstyle.commands.serve", "serve exports with TF Serving's REST API, and a page to try styles in a browser"),
    "evaluate": ("tfstyle.commands.evaluate", "score a trained network against Gatys' optimization on the same loss"),
    "gatys": ("tfstyle.commands.gatys", "stylize one photo by optimization (Gatys et al.): the quality baseline"),
}
