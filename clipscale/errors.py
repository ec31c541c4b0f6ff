"""One exception base for every error clipscale reports to its user.

Each error class of the project (bad config, unreadable shard, unreachable storage, an impossible
curation threshold, ...) derives from ``ClipscaleError``, so the command line catches them in one
place (``clipscale.cli.main``): one exit code, one message on stderr, no traceback. Errors outside
this family are faults of the code, and keep their traceback.
"""
from __future__ import annotations

EXIT_ERROR = 2   # the exit code of every ClipscaleError (argparse's own for bad arguments too)


class ClipscaleError(Exception):
    """An error in the user's input or environment; the message names the file, field or location."""


class ConfigError(ClipscaleError, ValueError):
    """An invalid configuration; the message names the file (if any) and the field."""


class NotFound(ClipscaleError, FileNotFoundError):
    """A file or folder the user named does not exist (the message names it)."""


class CheckpointError(ClipscaleError, ValueError):
    """A checkpoint that cannot be loaded, resumed from or written; the message names the file."""
