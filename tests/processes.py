"""Subprocess helpers shared by the tests that run real services (a Celery worker, gunicorn, redis-server):
ports, waiting with a timeout, stopping a process group, and a real `celery worker -Q gpu`."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout: float, what: str, log: Path | None = None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise AssertionError(f"Timed out waiting for {what}.\n{tail}")


def app_database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def stop_group(proc: subprocess.Popen, grace: float = 10) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        except ProcessLookupError:
            pass


class CeleryWorker:
    """A real `celery worker -Q gpu` subprocess (one prefork child) on the test database; ``queues``: another
    queue list (``celery``, the default queue: analysis and imaging tasks)."""

    def __init__(self, broker_url: str, log: Path, media_root: Path | None = None, queues: str = "gpu"):
        env = dict(os.environ)  # DJANGO_SETTINGS_MODULE passes through: config.settings_test
        env.update(CELERY_BROKER_URL=broker_url, DATABASE_URL=app_database_url(),
                   MEDIA_ROOT=str(media_root or settings.MEDIA_ROOT), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-c", "1", "-P", "prefork",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"],
            cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def child_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def stop(self) -> None:
        stop_group(self.proc, grace=20)
