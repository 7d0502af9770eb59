"""Backup and restore (issue 18 item 6, docs/backup.md): a real pg_dump of the test database plus media, restored
with pg_restore into a fresh PostgreSQL database where verify_audit must pass; a changed file is found."""
from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.factories.trial import make_trial
from trial.backup import DUMP, MANIFEST, SIGNATURE, PgTarget, check_backup, manifest_signature, sha256_file
from trial.models import AuditEntry


@pytest.fixture
def fresh_db():
    """A new, empty PostgreSQL database beside the test database, dropped afterwards."""
    base = PgTarget.from_settings(settings.DATABASES["default"])
    target = PgTarget(name=f"{base.name}_restore_{uuid.uuid4().hex[:8]}", user=base.user, password=base.password,
                      host=base.host, port=base.port)
    subprocess.run(["createdb", *target.args(), target.name], env=target.env(), check=True)
    yield target
    subprocess.run(["dropdb", "--if-exists", *target.args(), target.name], env=target.env(), check=True)


@pytest.fixture
def backed_up(transactional_db, tmp_path):
    """A trial with an audit log and a media file, committed (pg_dump sees only committed data), backed up."""
    make_trial(code="BAK")
    image = Path(settings.MEDIA_ROOT) / "images" / "BAK" / "case1.dcm"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"DICM" + bytes(range(256)) * 8)
    dest = tmp_path / "backup"
    call_command("backup", str(dest))
    return dest


@pytest.mark.requirement("BAK-1")
def test_backup_restores_into_a_fresh_database_where_the_audit_verifies(backed_up, fresh_db, tmp_path, capsys):
    manifest = json.loads((backed_up / MANIFEST).read_text())
    assert set(manifest["files"]) == {DUMP, "media/images/BAK/case1.dcm"}
    assert manifest["files"][DUMP]["sha256"] == sha256_file(backed_up / DUMP)
    n = AuditEntry.objects.count()
    assert manifest["audit"]["entries"] == n > 10 and manifest["audit"]["intact"] is True

    media = tmp_path / "restored-media"
    call_command("restore", str(backed_up), database_url=fresh_db.url(), media_root=str(media))
    out = capsys.readouterr().out
    assert f"Audit log intact: {n} entries verified." in out
    assert (media / "images/BAK/case1.dcm").read_bytes() == (
        Path(settings.MEDIA_ROOT) / "images/BAK/case1.dcm").read_bytes()
    # The restored database really holds the trial and its chains (asked directly, not through our code).
    rows = subprocess.run(
        ["psql", "-X", "-At", *fresh_db.args(), "-d", fresh_db.name, "-c",
         "SELECT (SELECT count(*) FROM trial_auditentry), (SELECT code FROM trial_trial)"],
        env=fresh_db.env(), capture_output=True, text=True, check=True).stdout.strip()
    assert rows == f"{n}|BAK"


@pytest.mark.requirement("BAK-2")
def test_tampered_media_file_is_found_and_not_restored(backed_up, fresh_db, tmp_path):
    victim = backed_up / "media/images/BAK/case1.dcm"
    victim.write_bytes(victim.read_bytes()[:-1] + b"X")
    check = check_backup(backed_up)
    assert check.problems == ["media/images/BAK/case1.dcm: SHA-256 does not match the manifest (changed)"]
    with pytest.raises(CommandError, match="does not match its manifest"):
        call_command("restore", str(backed_up), check_only=True)
    with pytest.raises(CommandError, match="case1.dcm: SHA-256"):
        call_command("restore", str(backed_up), database_url=fresh_db.url(), media_root=str(tmp_path / "m"))
    tables = subprocess.run(
        ["psql", "-X", "-At", *fresh_db.args(), "-d", fresh_db.name, "-c",
         "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"],
        env=fresh_db.env(), capture_output=True, text=True, check=True).stdout.strip()
    assert tables == "0"  # refused before anything was restored


@pytest.mark.requirement("BAK-2")
def test_tampered_dump_with_rewritten_manifest_is_found_by_the_signature(backed_up):
    dump = backed_up / DUMP
    with dump.open("ab") as fh:
        fh.write(b"\0")
    manifest = json.loads((backed_up / MANIFEST).read_text())
    manifest["files"][DUMP]["sha256"] = sha256_file(dump)  # the forger updates the hash too
    (backed_up / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    check = check_backup(backed_up)
    assert len(check.problems) == 1 and "manifest signature does not verify" in check.problems[0]
    # With the signing key the forger would need, the same manifest verifies: the signature is what caught it.
    data = (backed_up / MANIFEST).read_bytes()
    (backed_up / SIGNATURE).write_text(manifest_signature(data))
    assert check_backup(backed_up).ok


def test_restore_refuses_a_database_that_is_not_empty(backed_up, tmp_path):
    with pytest.raises(CommandError, match="not empty"):
        call_command("restore", str(backed_up), database_url=PgTarget.from_settings(
            settings.DATABASES["default"]).url(), media_root=str(tmp_path / "m"))
