"""Helpers of the fault tests: a gunicorn server on the test database, PostgreSQL restarts, a throwaway Redis, a
real Celery worker. Every helper that stops a service has a way to bring it back, used in `finally` blocks."""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from tests.processes import (  # noqa: F401  (re-exported for the fault tests)
    ROOT,
    CeleryWorker,
    app_database_url,
    free_port,
    port_open,
    stop_group,
    wait_until,
)


class GunicornServer:
    """`gunicorn config.wsgi` on 127.0.0.1 against the test database, DEBUG off, persistent connections."""

    def __init__(self, log: Path, workers: int = 2, threads: int = 4, extra_env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = dict(os.environ)  # DJANGO_SETTINGS_MODULE passes through: config.settings_test
        env.update(
            DATABASE_URL=app_database_url(), DEBUG="false", SECRET_KEY="reliability-" + secrets.token_hex(24),
            AUDIT_SIGNING_KEY=settings.AUDIT_SIGNING_KEY,  # tests/reliability/conftest.py: verified in this process
            ALLOWED_HOSTS="127.0.0.1,localhost", SECURE_SSL_REDIRECT="false", CELERY_BROKER_URL="",
            CONN_MAX_AGE="60", LOG_LEVEL="ERROR", MEDIA_ROOT=str(settings.MEDIA_ROOT), PYTHONUNBUFFERED="1",
        )
        env.update(extra_env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "-w", str(workers), "-k", "gthread", "--threads",
             str(threads), "-b", f"127.0.0.1:{self.port}", "--timeout", "30", "--graceful-timeout", "3",
             "--error-logfile", "-"],
            cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            wait_until(lambda: self.proc.poll() is not None or port_open("127.0.0.1", self.port), 30,
                       "gunicorn to listen", log)
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{log.read_text()[-3000:]}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        stop_group(self.proc)


# -- PostgreSQL ---------------------------------------------------------------------------------------------------
def pg_cluster() -> tuple[str, str] | None:
    """(version, name) of the local Debian PostgreSQL cluster serving the test database, if there is one."""
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        return None
    port = str(settings.DATABASES["default"].get("PORT") or 5432)
    for version in sorted(os.listdir("/etc/postgresql"), reverse=True):
        for name in sorted(os.listdir(f"/etc/postgresql/{version}")):
            conf = Path(f"/etc/postgresql/{version}/{name}/postgresql.conf")
            text = conf.read_text() if conf.is_file() else ""
            cluster_port = next((ln.split("=", 1)[1].split("#")[0].strip() for ln in text.splitlines()
                                 if ln.strip().startswith("port")), "5432")
            if cluster_port == port:
                return version, name
    return None


def pg_ctl(action: str, cluster: tuple[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action],
                          capture_output=True, text=True, timeout=timeout)


def ensure_postgres_running(cluster: tuple[str, str] | None) -> None:
    """Bring the server back if a fault left it down (called in `finally`)."""
    db = settings.DATABASES["default"]
    host, port = db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)
    if port_open(host, port):
        return
    if cluster is not None:
        pg_ctl("start", cluster)
    wait_until(lambda: port_open(host, port), 60, "PostgreSQL to come back")


# -- Redis and Celery ---------------------------------------------------------------------------------------------
class ThrowawayRedis:
    """A private redis-server (no persistence) on its own port; never the shared one on 6379."""

    def __init__(self, workdir: Path, port: int | None = None):
        self.port = port if port and not port_open("127.0.0.1", port) else free_port()
        assert self.port != 6379
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_until(lambda: port_open("127.0.0.1", self.port), 15, f"redis-server on {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, grace=5)
            self.proc = None
        wait_until(lambda: not port_open("127.0.0.1", self.port), 10, f"redis-server on {self.port} to stop")


def point_celery_at(broker_url: str | None, **conf) -> dict:
    """Switch the Celery app's broker (returns the old settings for restoring). Pools are dropped, not closed."""
    from config.celery import app

    old = {k: app.conf.get(k) for k in ("broker_url", "task_always_eager", *conf)}
    app.conf.update(broker_url=broker_url, **conf)
    app._pool = None
    app.amqp._producer_pool = None
    return old


def restore_celery(old: dict) -> None:
    from config.celery import app

    app.conf.update(**old)
    app._pool = None
    app.amqp._producer_pool = None
