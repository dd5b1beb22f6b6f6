"""The ``tfstyle`` command: ``tfstyle <subcommand> [flags] [args]``.

Each subcommand is a module with absl flags and a ``main(argv)``; only the chosen
one is imported, so subcommands may define flags with the same names.
"""

import importlib
import sys

# name -> (module, one-line help). Modules must have ``main(argv)`` for absl.app.run.
SUBCOMMANDS = {
    "stylize": ("tfstyle.stylize", "apply a trained style to photos (tfstyle stylize --style=mosaic in.jpg out.jpg)"),
}


def usage():
    lines = ["usage: tfstyle <subcommand> [flags] [args]   (tfstyle <subcommand> --help for its flags)", "", "subcommands:"]
    lines += [f"  {name:10s} {text}" for name, (_, text) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(usage())
        return 0 if len(argv) >= 2 else 2
    name = argv[1]
    if name not in SUBCOMMANDS:
        print(f"error: unknown subcommand '{name}'\n\n{usage()}", file=sys.stderr)
        return 2
    from absl import app

    module = importlib.import_module(SUBCOMMANDS[name][0])
    app.run(module.main, argv=[f"tfstyle {name}"] + argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
