"""A Celery app whose broker and result backend are ``snapkv serve``.

Celery speaks to snapkv exactly as it speaks to Redis: kombu's Redis
transport queues the tasks in lists (LPUSH, BRPOP on the worker's side),
and the Redis result backend stores each outcome under
``celery-task-meta-<id>`` and announces it on a channel of the same name
(PUBLISH; ``AsyncResult.get`` waits on SUBSCRIBE). Nothing in this file
knows it is not talking to Redis: the URL is the only change.

Run it (see README.md in this directory)::

    snapkv serve --port 6379 --dir data &
    celery -A tasks worker --pool=solo --loglevel=INFO
    python -c "import tasks; print(tasks.add.delay(2, 3).get(timeout=10))"
"""

from __future__ import annotations

import os

from celery import Celery

#: Where ``snapkv serve`` listens; the same URL serves as broker and result backend.
URL = os.environ.get("SNAPKV_URL", "redis://127.0.0.1:6379/0")

app = Celery("tasks", broker=URL, backend=URL)
app.conf.update(
    broker_connection_retry_on_startup=True,
    result_expires=3600,
    task_serializer="json",
    result_serializer="json",
)


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task
def word_count(text: str) -> dict[str, int]:
    """How often each word occurs: a result that is a JSON object, not a scalar."""
    counts: dict[str, int] = {}
    for word in text.lower().split():
        counts[word] = counts.get(word, 0) + 1
    return counts


@app.task
def parse_int(text: str) -> int:
    """Fails on bad input: the ValueError reaches the caller through the result backend."""
    return int(text)


@app.task
def total(numbers: list[int]) -> int:
    """The body of a chord: called once with every header task's result."""
    return sum(numbers)
