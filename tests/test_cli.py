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
            "qat": "--calibration_crops", "train-decoders": "--feature_weight"}


def tfstyle(*args):
    return run_tfstyle(*args, timeout=120)


def test_help_lists_every_subcommand():
    result = tfstyle("--help")
    assert result.returncode == 0
    for name, (_, text) in SUBCOMMANDS.items():
        assert f"  {name:14s} {text}" in result.stdout
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


def test_help_into_a_closed_pipe_is_quiet():
    result = subprocess.run(f"'{sys.executable}' -m tfstyle train --help | head -1", shell=True, capture_output=True,
                            text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, timeout=120)
    assert result.stdout.startswith("usage: tfstyle train") and "BrokenPipeError" not in result.stderr, result.stderr


def test_stylize_usage_examples_have_no_runs_of_spaces():
    from tfstyle.commands import stylize

    examples = [line.strip() for line in stylize.__doc__.splitlines() if line.strip().startswith("tfstyle ")]
    assert examples and all("  " not in line and "\\" not in line for line in examples)


@pytest.mark.parametrize("flag,message", [
    ("--strength=2", "error: strength 2: must be between 0 (the photo) and 1 (the full style)"),
    ("--style=mosaic:-1,candy:1", "error: style weight of 'mosaic' is -1: weights must be >= 0"),
    ("--style_weights=1,-2", "error: style weight of 'style 2' is -2: weights must be >= 0"),
])
def test_stylize_value_errors_come_before_tensorflow_loads(flag, message, tmp_path):
    code = ("import sys\nfrom tfstyle import cli\n"
            f"try:\n    cli.main(['tfstyle', 'stylize', '{flag}', 'in.jpg', 'out.jpg'])\n"
            "except SystemExit as e:\n    print('exit', e.code)\n"
            "print('tensorflow loaded:', 'tensorflow' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(tmp_path),
                            env={**os.environ, "PYTHONPATH": REPO}, timeout=120)
    assert result.stderr.strip().splitlines()[-1] == message
    assert "exit 2" in result.stdout and "tensorflow loaded: False" in result.stdout
