"""``python -m tfstyle <subcommand>`` is ``tfstyle <subcommand>``."""

import sys

from tfstyle.cli import main

sys.exit(main([sys.argv[0], *sys.argv[1:]]))
