"""`make demo` runs on SQLite with Celery tasks in-process: migrate and seed the demo exactly that way, in a
subprocess with its own SQLite file (the rest of the suite runs on PostgreSQL, which hid a PostgreSQL-only lock in
the import once)."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_demo_migrates_and_seeds_on_sqlite(tmp_path):
    db = tmp_path / "db.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DATABASE_URL"))}
    env.update({"DATABASE_URL": f"sqlite:///{db}", "MEDIA_ROOT": str(tmp_path / "media"),
                "DJANGO_SETTINGS_MODULE": "config.settings"})  # what `make demo` uses
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True,
                   timeout=600)
    out = subprocess.run([sys.executable, "manage.py", "seed_demo", "--port", "8000"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert "Demo trial DEMO-CXR seeded: 24 cases" in out.stdout
    with sqlite3.connect(db) as con:
        cases = con.execute("SELECT count(*) FROM trial_case").fetchone()[0]
        images = con.execute("SELECT count(*) FROM trial_image").fetchone()[0]
        reads_done = con.execute("SELECT count(*) FROM reading_read WHERE status = 'done'").fetchone()[0]
        drafts_ready = con.execute("SELECT count(*) FROM inference_draft WHERE status = 'ready'").fetchone()[0]
    assert cases == 24 and images >= 24 and reads_done > 0 and drafts_ready > 0
