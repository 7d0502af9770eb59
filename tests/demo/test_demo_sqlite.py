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
    # `make demo` says what it is doing while it seeds (issue 17): each step as it starts and ends, in order.
    steps = [line for line in out.stdout.splitlines() if line.startswith("[")]
    assert [s.split("]")[0] + "]" for s in steps] == [f"[{n}/5]" for n in range(1, 6) for _ in (0, 1)]
    assert "24/24 images imported" in out.stdout and "22/22 cases enrolled" in out.stdout
    assert out.stdout.index("[1/5]") < out.stdout.index("Demo trial DEMO-CXR seeded")
    with sqlite3.connect(db) as con:
        cases = con.execute("SELECT count(*) FROM trial_case").fetchone()[0]
        images = con.execute("SELECT count(*) FROM trial_image").fetchone()[0]
        reads_done = con.execute("SELECT count(*) FROM reading_read WHERE status = 'done'").fetchone()[0]
        drafts_ready = con.execute("SELECT count(*) FROM inference_draft WHERE status = 'ready'").fetchone()[0]
    assert cases == 24 and images >= 24 and reads_done > 0 and drafts_ready > 0


def test_demo_reset_reseeds_without_touching_the_venv(tmp_path):
    """`make demo-reset` runs `seed_demo --reset`: the demo's database and media go, migrate and seed run again,
    nothing outside them is deleted; refused on a database that is not SQLite."""
    db = tmp_path / "db.sqlite3"
    media = tmp_path / "media"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DATABASE_URL"))}
    env.update({"DATABASE_URL": f"sqlite:///{db}", "MEDIA_ROOT": str(media),
                "DJANGO_SETTINGS_MODULE": "config.settings"})
    keep = tmp_path / "keep.txt"
    keep.write_text("not the demo's")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True,
                   timeout=600)
    with sqlite3.connect(db) as con:  # something the reset must remove
        con.execute("CREATE TABLE stale_marker (x int)")
    (media / "stale").mkdir(parents=True)
    out = subprocess.run([sys.executable, "manage.py", "seed_demo", "--reset", "--port", "8000"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert "Reset: deleting" in out.stdout and "Demo trial DEMO-CXR seeded: 24 cases" in out.stdout
    with sqlite3.connect(db) as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "stale_marker" not in tables
        assert con.execute("SELECT count(*) FROM trial_case").fetchone()[0] == 24
    assert not (media / "stale").exists() and keep.read_text() == "not the demo's"
    assert (ROOT / "Makefile").read_text().count("seed_demo --reset") == 1
    pg = {**env, "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}
    refused = subprocess.run([sys.executable, "manage.py", "seed_demo", "--reset"], cwd=ROOT, env=pg,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "SQLite database only" in refused.stderr
