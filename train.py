"""``python train.py [flags]`` is ``tfstyle train [flags]`` (see ``tfstyle train --help``)."""

import sys

from tfstyle.cli import main

if __name__ == "__main__":
    sys.exit(main([sys.argv[0], "train", *sys.argv[1:]]))
