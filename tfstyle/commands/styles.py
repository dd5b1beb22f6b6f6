"""List the styles tfstyle knows: bundled style images, shipped trained styles, your runs and exports.

    tfstyle styles [--runs_dir=runs] [--saved_models=saved_models]

A style with trained weights (shipped, trained or exported) works with
`tfstyle stylize --style=NAME` right away; so does any painting without one,
through the any-painting network (seconds, no training; a trained network,
`tfstyle train --style=NAME`, follows the painting more closely).
"""

from absl import flags

from tfstyle.commands import common

common.define_runs_dir()
common.define_saved_models()
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        common.fail(f"unexpected arguments: {' '.join(argv[1:])}", 2)
    import glob
    import os

    from tfstyle import models, styles

    print("Style images bundled with tfstyle (tfstyle train --style=NAME; without a trained network, "
          "tfstyle stylize --style=NAME uses the any-painting network, as for any image file):")
    print("  " + ", ".join(styles.STYLE_NAMES))
    print("\nTrained styles shipped with tfstyle (tfstyle stylize --style=NAME works at once):")
    shipped = models.pretrained_styles()
    for name in shipped:
        card = models.pretrained_card(models.pretrained_path(name))
        print(f"  {name:14s} {card.get('summary', '')}")
    if not shipped:
        print("  (none)")
    runs = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(FLAGS.runs_dir, "*", "transformer.weights.h5")))
    print(f"\nYour trained runs in {FLAGS.runs_dir}/:")
    print("  " + (", ".join(runs) if runs else "(none)"))
    exports = sorted(name for name in (os.listdir(FLAGS.saved_models) if os.path.isdir(FLAGS.saved_models) else [])
                     if models.version_dirs(os.path.join(FLAGS.saved_models, name)))
    print(f"\nExports in {FLAGS.saved_models}/ (TF Serving's layout):")
    print("  " + (", ".join(f"{n} (v{max(models.version_dirs(os.path.join(FLAGS.saved_models, n)))})" for n in exports)
                  if exports else "(none)"))
