"""Real job queues on ``snapkv serve``: Celery and RQ, each with a worker process of its own.

Three processes per test, as in production: ``snapkv serve`` (a subprocess
on a free loopback port, memory only), the queue's own worker (``celery
worker`` / ``rq worker``, a subprocess started from its command line) and
this test, which enqueues and reads results through the queue's public
API. What passes here is not a model of Celery or RQ but the libraries
themselves, with every command they send: kombu's transport (LPUSH, BRPOP
on several queues, MULTI/EXEC, and its Lua: the unacked mutex's release,
binding deadlines by ``redis.call('TIME')`` and ``ZADD GT``), the result
backend (SETEX, PUBLISH to the waiting caller's SUBSCRIBE, a chord's
counter), RQ's registries (sorted sets, WATCH, LMOVE).

Celery's app is examples/job_queue/tasks.py, the README's example, so the
commands the README shows are the ones tested. Every wait has a deadline
and every process started here is stopped by its pid.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
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
    # Named as the worker imports it (``-A tasks``): Celery names each task by its module.
    spec = importlib.util.spec_from_file_location("tasks", EXAMPLE / "tasks.py")
    assert spec is not None and spec.loader is not None
    tasks: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)
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
        tasks.worker_log = log
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

RQ_TASKS = '''
"""RQ tasks: each also leaves a mark in the server, seen even if RQ cannot record the outcome."""

from rq import get_current_job


def record(value):
    job = get_current_job()
    job.connection.rpush("ran", value)
    return value.upper()


def fail(message):
    get_current_job().connection.rpush("ran", "fail:" + message)
    raise ValueError(message)
'''


@pytest.fixture
def rq_queue(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An RQ queue on the server, its tasks module importable here and by the worker."""
    rq = pytest.importorskip("rq")
    (tmp_path / "rq_tasks.py").write_text(textwrap.dedent(RQ_TASKS))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    connection = redis.Redis.from_url(server)
    queue = rq.Queue("jobs", connection=connection)
    queue.tmp_path = tmp_path
    queue.url = server
    yield queue
    connection.close()
    sys.modules.pop("rq_tasks", None)


def run_rq_worker(queue: Any) -> str:
    """``rq worker --burst``: a real worker process that runs what is queued, then exits."""
    tmp_path: Path = queue.tmp_path
    log = tmp_path / "rq-worker.log"
    argv = [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", queue.url, queue.name]
    with process(argv, cwd=tmp_path, env=worker_env(queue.url, tmp_path), log=log) as worker:
        wait_until(lambda: worker.poll() is not None, timeout=DEADLINE, what="rq worker --burst")
    assert worker.returncode == 0, log.read_text()
    return log.read_text()


def test_rq_worker_process_runs_the_queued_jobs_in_order(rq_queue: Any) -> None:
    import rq_tasks

    for value in ("a", "b", "c"):
        rq_queue.enqueue(rq_tasks.record, value)
    assert rq_queue.count == 3
    run_rq_worker(rq_queue)
    assert rq_queue.connection.lrange("ran", 0, -1) == [b"a", b"b", b"c"]
    assert rq_queue.count == 0


@pytest.mark.xfail(
    strict=True,
    reason="RQ records every job's outcome in a stream (XADD, XREVRANGE): snapkv has no streams",
)
def test_rq_records_results_failures_dependencies_and_retries(rq_queue: Any) -> None:
    import rq_tasks
    from rq import Retry
    from rq.job import JobStatus
    from rq.registry import FailedJobRegistry

    done = rq_queue.enqueue(rq_tasks.record, "x")
    after = rq_queue.enqueue(rq_tasks.record, "y", depends_on=done)
    failed = rq_queue.enqueue(rq_tasks.fail, "boom")
    retried = rq_queue.enqueue(rq_tasks.fail, "again", retry=Retry(max=2))
    log = run_rq_worker(rq_queue)

    assert done.get_status() == JobStatus.FINISHED, log
    assert done.return_value() == "X"
    assert after.get_status() == JobStatus.FINISHED and after.return_value() == "Y"
    assert failed.get_status() == JobStatus.FAILED
    assert "ValueError: boom" in failed.latest_result().exc_string
    assert set(FailedJobRegistry(queue=rq_queue).get_job_ids()) == {failed.id, retried.id}
    ran = rq_queue.connection.lrange("ran", 0, -1)
    assert ran.count(b"fail:again") == 3  # the first run and two retries
    assert ran.index(b"x") < ran.index(b"y")  # the dependent job ran after its parent
