"""``python export.py [flags]`` is ``tfstyle export [flags]`` (see ``tfstyle export --help``)."""

import sys

from tfstyle.cli import main

if __name__ == "__main__":
    sys.exit(main([sys.argv[0], "export", *sys.argv[1:]]))
