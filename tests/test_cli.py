"""The ``tfstyle`` command: every subcommand's help, and flags checked before TensorFlow loads."""

import os
import subprocess
import sys

import pytest

from conftest import REPO, run_tfstyle
from tfstyle.commands import SUBCOMMANDS

# A flag of each subcommand's own that its --help must show.
OWN_FLAG = {"styles": "--saved_models", "stylize": "--tile_size", "train": "--checkpoint_every", "export": "--calibration_dir",
            "serve": "--max_concurrent", "evaluate": "--gatys_iterations", "gatys": "--iterations",
            "qat": "--calibration_crops"}


def tfstyle(*args):
    return run_tfstyle(*args, timeout=120)


def test_help_lists_every_subcommand():
    result = tfstyle("--help")
    assert result.returncode == 0
    for name, (_, text) in SUBCOMMANDS.items():
        assert f"  {name:9s} {text}" in result.stdout
    assert set(OWN_FLAG) == set(SUBCOMMANDS)


def test_unknown_subcommand_is_a_usage_error():
    result = tfstyle("paint")
    assert result.returncode == 2 and result.stderr.startswith("error: unknown subcommand 'paint'")


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_subcommand_help_shows_its_description_and_flags_without_loading_tensorflow(name):
    module = SUBCOMMANDS[name][0]
    code = (f"import sys, {module} as m; from tfstyle.cli import command_help; "
            f"text = command_help('{name}', m); "
            "assert m.__doc__.strip().splitlines()[0] in text, 'no description'; print(text); "
            "assert not {'tensorflow', 'keras'} & set(sys.modules), 'TensorFlow imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert OWN_FLAG[name] in result.stdout
    shown = tfstyle(name, "--help")
    assert shown.returncode == 0 and OWN_FLAG[name] in shown.stdout


def test_python_scripts_are_the_same_commands():
    for script, flag in (("train.py", "--checkpoint_every"), ("export.py", "--calibration_dir")):
        result = subprocess.run([sys.executable, os.path.join(REPO, script), "--help"], capture_output=True, text=True,
                                cwd=REPO, timeout=120)
        assert result.returncode == 0 and flag in result.stdout
