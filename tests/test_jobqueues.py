"""Real job queues on ``snapkv serve``: Celery and RQ, each with a worker process of its own.

Three processes per test, as in production: ``snapkv serve`` (a subprocess
on a free loopback port; in memory, but for the restart test), the queue's own worker (``celery
worker`` / ``rq worker``, a subprocess started from its command line) and
this test, which enqueues and reads results through the queue's public
API. What passes here is not a model of Celery or RQ but the libraries
themselves, with every command they send: kombu's transport (LPUSH, BRPOP
on several queues, MULTI/EXEC, and its Lua: the unacked mutex's release,
binding deadlines by ``redis.call('TIME')`` and ``ZADD GT``), the result
backend (SETEX, PUBLISH to the waiting caller's SUBSCRIBE, a chord's
counter), RQ's registries (sorted sets, WATCH, LMOVE) and its result
streams (XADD, XREVRANGE, XREAD BLOCK).

Celery's app is examples/job_queue/tasks.py and RQ's jobs are
examples/job_queue/jobs.py, the README's example, so what the README shows
is what is tested. Every wait has a deadline and every process started
here is stopped by its pid.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from serving import serving
from support import wait_until

redis = pytest.importorskip("redis")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "job_queue"
MEMORY_ONLY = ("--save", "", "--appendonly", "no")
#: Bounds a hang, never a pause: results arrive in well under a second.
DEADLINE = 20.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """The ``redis://`` URL of a fresh ``snapkv serve`` process."""
    with serving(tmp_path, *MEMORY_ONLY) as port:
        yield f"redis://127.0.0.1:{port}/0"


def worker_env(url: str, *paths: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SNAPKV_URL=url, PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), env.get("PYTHONPATH", "")])
    return env


def load_example(name: str) -> ModuleType:
    """examples/job_queue/<name>.py, under the name its worker imports it by.

    Celery names each task by its module (``-A tasks``) and RQ stores a job's
    function by its dotted name, so the caller's module must carry the name
    the worker process finds on its path.
    """
    spec = importlib.util.spec_from_file_location(name, EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def process(argv: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> Iterator[Any]:
    """A worker process, stopped at the end (SIGTERM: a warm shutdown; SIGKILL if it hangs)."""
    with log.open("wb") as out:
        child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(DEADLINE)


# ------------------------------------------------------------------ Celery


@pytest.fixture
def celery_app(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The example's tasks module, imported here as the caller, with a worker running it."""
    pytest.importorskip("celery")
    monkeypatch.setenv("SNAPKV_URL", server)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    tasks = load_example("tasks")
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tasks",
        "worker",
        "--pool=solo",
        "--concurrency=1",
        "--loglevel=INFO",
        "--hostname=snapkv-test@%h",
        # Neighbour discovery waits a second for replies no other worker sends.
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
    ]
    log = tmp_path / "celery-worker.log"
    with process(argv, cwd=EXAMPLE, env=worker_env(server), log=log) as worker:
        yield tasks
        assert worker.poll() is None, f"the worker died:\n{log.read_text()}"
    tasks.app.close()


def test_celery_runs_tasks_and_returns_their_results(celery_app: Any, server: str) -> None:
    tasks = celery_app
    result = tasks.add.delay(2, 3)
    assert result.get(timeout=DEADLINE) == 5
    assert result.successful() and result.state == "SUCCESS"
    counted = tasks.word_count.delay("to be or not to be")
    assert counted.get(timeout=DEADLINE) == {"to": 2, "be": 2, "or": 1, "not": 1}

    # The outcome lives in snapkv under Celery's key, with the backend's expiry.
    r = redis.Redis.from_url(server)
    try:
        stored = r.get(f"celery-task-meta-{result.id}")
        assert stored is not None and b'"status": "SUCCESS"' in stored
        assert 0 < r.ttl(f"celery-task-meta-{result.id}") <= 3600
        assert r.llen("celery") == 0  # the queue is drained
    finally:
        r.close()


def test_celery_task_that_raises_reaches_the_caller_with_its_traceback(celery_app: Any) -> None:
    tasks = celery_app
    result = tasks.parse_int.delay("not a number")
    with pytest.raises(ValueError, match="invalid literal for int"):
        result.get(timeout=DEADLINE)
    assert result.state == "FAILURE"
    assert "ValueError: invalid literal for int()" in result.traceback
    assert "parse_int" in result.traceback
    # The worker goes on after a failure.
    assert tasks.parse_int.delay("42").get(timeout=DEADLINE) == 42


def test_celery_chain_and_chord_pass_results_between_tasks(celery_app: Any) -> None:
    from celery import chain, chord

    tasks = celery_app
    chained = chain(tasks.add.s(1, 2), tasks.add.s(10), tasks.add.s(100))()
    assert chained.get(timeout=DEADLINE) == 113
    # A chord's header results are counted in the backend (the Redis backend's
    # INCR/RPUSH of each part) before the body runs once with all of them.
    joined = chord(tasks.add.s(i, i) for i in range(5))(tasks.total.s())
    assert joined.get(timeout=DEADLINE) == sum(2 * i for i in range(5))


# ---------------------------------------------------------------------- RQ


@dataclass
class RQ:
    """An RQ queue on the server, the example's jobs module, and where the worker logs."""

    queue: Any
    jobs: ModuleType
    url: str
    log: Path


@pytest.fixture
def rq(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RQ]:
    pytest.importorskip("rq")
    from rq import Queue

    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    connection = redis.Redis.from_url(server)
    log = tmp_path / "rq-worker.log"
    yield RQ(Queue("jobs", connection=connection), load_example("jobs"), server, log)
    connection.close()


#: What ``rq worker --burst`` logs once the queues are empty and every job ran.
BURST_DONE = "done, quitting"


@contextmanager
def rq_worker(rq: RQ) -> Iterator[None]:
    """``rq worker --burst``: a real worker process that runs what is queued, then quits.

    Waited for until it logs that it is done, not until it exits: its
    teardown stops redis-py's pub/sub thread, which can then wait out its
    60 s read (a race between ``PubSubWorkerThread.stop`` and the thread
    reading the UNSUBSCRIBE confirmation; redis-server shows it too), so a
    worker still there is stopped like any other, by SIGTERM.
    """
    log = rq.log
    argv = [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", rq.url, rq.queue.name]
    with process(argv, cwd=EXAMPLE, env=worker_env(rq.url, EXAMPLE), log=log) as worker:
        yield
        wait_until(
            lambda: worker.poll() is not None or BURST_DONE in log.read_text(),
            timeout=DEADLINE,
            what="rq worker --burst to finish the queue",
        )
    assert BURST_DONE in log.read_text(), log.read_text()


def test_rq_worker_runs_jobs_in_order_while_the_caller_waits_for_results(rq: RQ) -> None:
    texts = ["to be or not to be", "a rose is a rose", "snapkv"]
    queued = [rq.queue.enqueue(rq.jobs.word_count, text) for text in texts]
    assert rq.queue.count == 3
    with rq_worker(rq):
        # Asked while the worker starts: XREAD BLOCK on each job's result stream.
        results = [job.latest_result(timeout=int(DEADLINE)) for job in queued]
    assert [r.return_value for r in results] == [
        {"to": 2, "be": 2, "or": 1, "not": 1},
        {"a": 2, "rose": 2, "is": 1},
        {"snapkv": 1},
    ]
    for job in queued:
        job.refresh()
    for earlier, later in itertools.pairwise(queued):
        assert earlier.ended_at <= later.started_at  # one worker, first in first out
    assert rq.queue.count == 0


def test_rq_records_results_failures_dependencies_and_retries(rq: RQ) -> None:
    from rq import Retry
    from rq.job import JobStatus
    from rq.registry import FailedJobRegistry, FinishedJobRegistry

    parse_int, word_count = rq.jobs.parse_int, rq.jobs.word_count
    done = rq.queue.enqueue(parse_int, "7")
    after = rq.queue.enqueue(word_count, "x x", depends_on=done)
    failed = rq.queue.enqueue(parse_int, "boom")
    retried = rq.queue.enqueue(parse_int, "again", retry=Retry(max=2))
    with rq_worker(rq):
        pass
    log = rq.log.read_text()

    assert done.get_status() == JobStatus.FINISHED, log
    assert done.return_value() == 7
    assert after.get_status() == JobStatus.FINISHED and after.return_value() == {"x": 2}
    after.refresh()
    done.refresh()
    assert after.started_at >= done.ended_at  # the dependent job waited for its parent
    assert set(FinishedJobRegistry(queue=rq.queue).get_job_ids()) == {done.id, after.id}

    assert failed.get_status() == JobStatus.FAILED
    exc_string = failed.latest_result().exc_string
    assert "ValueError: invalid literal for int() with base 10: 'boom'" in exc_string
    assert "parse_int" in exc_string  # the worker's traceback, kept in the stream
    assert set(FailedJobRegistry(queue=rq.queue).get_job_ids()) == {failed.id, retried.id}
    retried.refresh()
    assert retried.retries_left == 0
    assert log.count("jobs.parse_int('again')") == 3  # the first run and two retries


def test_rq_jobs_queued_before_a_kill_9_run_after_the_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The queue is data like any other: journaled before each reply, replayed at start."""
    pytest.importorskip("rq")
    from rq import Queue
    from rq.job import Job

    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    jobs = load_example("jobs")
    data = tmp_path / "data"
    data.mkdir()
    durable = ("--appendonly", "yes", "--appendfsync", "always", "--save", "")
    texts = ["kept across a crash", "and this one"]
    with serving(data, *durable) as port:  # ends with SIGKILL
        connection = redis.Redis(port=port)
        ids = [Queue("jobs", connection=connection).enqueue(jobs.word_count, t).id for t in texts]
        connection.close()
    with serving(data, *durable) as port:
        url = f"redis://127.0.0.1:{port}/0"
        connection = redis.Redis.from_url(url)
        try:
            queue = Queue("jobs", connection=connection)
            assert queue.job_ids == ids
            with rq_worker(RQ(queue, jobs, url, tmp_path / "rq-worker.log")):
                pass
            results = [Job.fetch(i, connection=connection).return_value() for i in ids]
        finally:
            connection.close()
    assert results == [
        {"kept": 1, "across": 1, "a": 1, "crash": 1},
        {"and": 1, "this": 1, "one": 1},
    ]
