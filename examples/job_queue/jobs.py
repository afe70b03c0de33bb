"""RQ jobs on ``snapkv serve``: plain functions, as RQ wants them.

RQ stores each call (the function's dotted name and pickled arguments) in
a hash, queues its id in a list, and a worker process imports this module
to run it. The outcome goes to a stream (XADD), which
``job.latest_result(timeout=...)`` waits on (XREAD BLOCK); failed jobs keep
their traceback in the failed registry. See README.md for the commands.
"""

from __future__ import annotations


def word_count(text: str) -> dict[str, int]:
    """How often each word occurs."""
    counts: dict[str, int] = {}
    for word in text.lower().split():
        counts[word] = counts.get(word, 0) + 1
    return counts


def parse_int(text: str) -> int:
    """Fails on bad input: the job lands in the failed registry with its traceback."""
    return int(text)
