"""Errors a user can act on.

Every exception that reaches the command line as a clean one-line message derives from
:class:`PixelforgeError`. Its message says what was wrong (naming the file, key or value) and what
to do. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class PixelforgeError(Exception):
    """A user-facing error: the message says what was wrong and what to do."""

    exit_code: int = 2


class ConfigError(PixelforgeError):
    """A configuration key or value is unknown, misspelt, out of range or conflicting."""


class ImageReadError(PixelforgeError):
    """An image file could not be read safely (format, size cap, corrupt or truncated data)."""


class DataError(PixelforgeError):
    """A dataset name, folder or layout is wrong, or too many of its files are unreadable."""


class ModelLoadError(PixelforgeError):
    """A model directory, run directory or weight file is missing, tampered with or unsafe."""


class TrainingError(PixelforgeError):
    """Training cannot continue (for example, repeated non-finite losses)."""


class Interrupted(PixelforgeError):
    """Ctrl-C, after the command kept what it had done: the message says what and how to go on."""

    exit_code = 130
