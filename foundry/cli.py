"""Argument types of the platform's management commands."""

import argparse
from pathlib import Path


def file_name(value: str) -> str:
    """A command's file or directory argument: no NUL, which no path holds (argparse reports it as
    the argument's error, a CommandError through call_command, not a traceback when opened)."""
    if "\x00" in value:
        raise argparse.ArgumentTypeError("not a file name (it holds a NUL character)")
    if not value.strip():  # a script's unset variable: never the working directory
        raise argparse.ArgumentTypeError("an empty path names no file or directory")
    return value


def file_path(value: str) -> Path:
    return Path(file_name(value))
