"""The ``tfstyle`` command: ``tfstyle <subcommand> [flags] [args]``.

Only the chosen subcommand's module is imported (``tfstyle.commands``), so
subcommands may define flags with the same names, and ``--help`` or a bad flag
answers before TensorFlow loads. Process-wide settings for TensorFlow are made
here, in the entry point, and nowhere in the library.
"""

import importlib
import os
import sys

from tfstyle.commands import SUBCOMMANDS

HELP = ("-h", "--help", "-help", "--helpshort")


def usage():
    lines = ["usage: tfstyle <subcommand> [flags] [args]", "", "subcommands:"]
    lines += [f"  {name:14s} {text}" for name, (_, text) in SUBCOMMANDS.items()]
    lines += ["", "tfstyle <subcommand> --help shows a subcommand's flags."]
    return "\n".join(lines)


def command_help(name, module):
    """The subcommand's description and its flags (those it defines and the shared ones it uses)."""
    from absl import flags

    defined = flags.FLAGS.flags_by_module_dict()
    text = [(module.__doc__ or "").strip(), "", "flags:"]
    text += [flags.FLAGS.module_help(m).strip() for m in (module.__name__, "tfstyle.commands.common") if m in defined]
    return "\n".join(text) + "\n"


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in (*HELP, "help"):
        print(usage())
        return 0 if len(argv) >= 2 else 2
    name = argv[1]
    if name not in SUBCOMMANDS:
        print(f"error: unknown subcommand '{name}'\n\n{usage()}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    module = importlib.import_module(SUBCOMMANDS[name][0])
    if any(arg in HELP for arg in argv[2:]):
        try:
            print(f"usage: tfstyle {name} [flags] [args]\n\n{command_help(name, module)}", flush=True)
        except BrokenPipeError:  # `tfstyle train --help | head`: the reader has gone, as with any Unix tool
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    from absl import app

    app.run(module.main, argv=[f"tfstyle {name}", *argv[2:]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
