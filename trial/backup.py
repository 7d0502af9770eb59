"""Backup and restore of a trial database and its media (docs/backup.md).

A backup is a folder: ``database.dump`` (pg_dump, custom format), ``media/`` (a copy of MEDIA_ROOT) and
``manifest.json``, which lists the SHA-256 and size of every file and what the audit log held when the backup was
taken. ``manifest.sig`` is an HMAC-SHA256 of the manifest under AUDIT_SIGNING_KEY (kept outside the database and the
backup), so a file changed and its hash rewritten in the manifest is still found.

Restore checks the manifest first and refuses a backup whose files do not match; it restores only into an empty
database, then runs ``verify_audit`` there (the audit hash chains must verify after the round trip).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.conf import settings

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
DUMP = "database.dump"
MEDIA = "media"
FORMAT = "cxr-trial-backup/1"


class BackupError(Exception):
    """The backup cannot be made, or a backup does not match its manifest."""


@dataclass(frozen=True)
class PgTarget:
    """Where pg_dump/pg_restore connect: libpq parameters (the password goes in PGPASSWORD, never on argv)."""

    name: str
    user: str = ""
    password: str = ""
    host: str = ""
    port: str = ""

    @classmethod
    def from_settings(cls, db: dict) -> PgTarget:
        if "postgresql" not in db["ENGINE"]:
            raise BackupError(f"backup needs PostgreSQL; the database engine is {db['ENGINE']}")
        return cls(name=db["NAME"], user=db.get("USER") or "", password=db.get("PASSWORD") or "",
                   host=db.get("HOST") or "", port=str(db.get("PORT") or ""))

    @classmethod
    def from_url(cls, url: str) -> PgTarget:
        u = urlparse(url)
        if u.scheme not in ("postgres", "postgresql", "pgsql"):
            raise BackupError(f"not a PostgreSQL URL: {u.scheme}://...")
        return cls(name=unquote(u.path.lstrip("/")), user=unquote(u.username or ""),
                   password=unquote(u.password or ""), host=u.hostname or "", port=str(u.port or ""))

    def args(self) -> list[str]:
        out = []
        for flag, value in (("-h", self.host), ("-p", self.port), ("-U", self.user)):
            if value:
                out += [flag, value]
        return out

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def url(self) -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"postgres://{auth}@{self.host or '127.0.0.1'}:{self.port or 5432}/{self.name}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _run(cmd: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BackupError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=settings.BASE_DIR,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def manifest_signature(manifest_bytes: bytes, key: str | None = None) -> str:
    key = settings.AUDIT_SIGNING_KEY if key is None else key
    return hmac.new(key.encode(), b"cxr-trial-backup|" + manifest_bytes, hashlib.sha256).hexdigest()


def _file_entries(root: Path) -> dict[str, dict]:
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel in (MANIFEST, SIGNATURE):
            continue
        files[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return files


def make_backup(dest: Path, *, db: PgTarget, media_root: Path, audit_summary: dict) -> dict:
    """Write a backup into ``dest`` (absent or empty). Returns the manifest."""
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty; a backup goes into a new folder")
    dest.mkdir(parents=True, exist_ok=True)
    # --no-owner/--no-privileges: the backup restores under whichever role runs pg_restore.
    _run(["pg_dump", "-Fc", "--no-owner", "--no-privileges", *db.args(), "-f", str(dest / DUMP), db.name], db.env())
    media_root = Path(media_root)
    if media_root.is_dir():
        shutil.copytree(media_root, dest / MEDIA, symlinks=False)
    else:
        (dest / MEDIA).mkdir()
    version = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True).stdout.strip()
    manifest = {
        "format": FORMAT,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code_version": _git_commit(),
        "database": db.name,
        "pg_dump": version,
        "audit": audit_summary,
        "files": _file_entries(dest),
    }
    data = json.dumps(manifest, indent=2, sort_keys=True).encode()
    (dest / MANIFEST).write_bytes(data)
    (dest / SIGNATURE).write_text(manifest_signature(data) + "\n")
    return manifest


@dataclass
class CheckResult:
    problems: list[str] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_backup(src: Path) -> CheckResult:
    """Compare a backup folder with its manifest and the manifest with its signature."""
    src = Path(src)
    result = CheckResult()
    try:
        data = (src / MANIFEST).read_bytes()
        result.manifest = json.loads(data)
    except (OSError, ValueError) as exc:
        result.problems.append(f"manifest unreadable: {exc}")
        return result
    try:
        sig = (src / SIGNATURE).read_text().strip()
    except OSError:
        sig = ""
    if not hmac.compare_digest(sig, manifest_signature(data)):
        result.problems.append("manifest signature does not verify with AUDIT_SIGNING_KEY (manifest edited, or "
                               "another key)")
    expected = result.manifest.get("files", {})
    actual = _file_entries(src)
    for rel in sorted(set(expected) | set(actual)):
        if rel not in actual:
            result.problems.append(f"{rel}: missing")
        elif rel not in expected:
            result.problems.append(f"{rel}: not in the manifest (added)")
        elif actual[rel]["sha256"] != expected[rel]["sha256"]:
            result.problems.append(f"{rel}: SHA-256 does not match the manifest (changed)")
    return result


def _database_is_empty(db: PgTarget) -> bool:
    proc = subprocess.run(
        ["psql", "-X", "-At", *db.args(), "-d", db.name, "-c",
         "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"],
        env=db.env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise BackupError(f"cannot connect to the target database {db.name}: {proc.stderr.strip()}")
    return proc.stdout.strip() == "0"


def restore_backup(src: Path, *, db: PgTarget, media_root: Path) -> CheckResult:
    """Check the backup, restore the database into the empty ``db`` and the media into ``media_root`` (absent or
    empty). Raises BackupError when the backup does not match its manifest; nothing is restored then."""
    src = Path(src)
    check = check_backup(src)
    if not check.ok:
        raise BackupError("backup does not match its manifest: " + "; ".join(check.problems))
    if not _database_is_empty(db):
        raise BackupError(f"target database {db.name} is not empty; restore goes into a new, empty database")
    media_root = Path(media_root)
    if media_root.exists() and any(media_root.iterdir()):
        raise BackupError(f"media folder {media_root} is not empty")
    _run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
          *db.args(), "-d", db.name, str(src / DUMP)], db.env())
    shutil.copytree(src / MEDIA, media_root, dirs_exist_ok=True)
    return check


def verify_audit_in(db: PgTarget) -> subprocess.CompletedProcess:
    """Run ``manage.py verify_audit`` against another database (a subprocess: Django's connection is per process)."""
    env = db.env()
    env["DATABASE_URL"] = db.url()
    return subprocess.run([sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "verify_audit"],
                          env=env, capture_output=True, text=True, cwd=settings.BASE_DIR)
