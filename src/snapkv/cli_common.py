"""What the ``snapkv`` command's modules share: the exit statuses and :class:`InputError`.

Exit status (stable, for scripts): 0 success; 1 the data is the problem; 2
the input is the problem (bad arguments, options, config or operations);
141 (128 + SIGPIPE) the reader of the output went away.
"""

from __future__ import annotations

__all__ = ["EXIT_DATA", "EXIT_OK", "EXIT_PIPE", "EXIT_USAGE", "InputError"]

EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_PIPE = 0, 1, 2, 141


class InputError(Exception):
    """Input that cannot be used (operations, options, a config file).

    Its message is the one line printed, after ``snapkv <command>: error:``.
    """
