"""Case import: DICOM files validated, de-identified and stored; reference standards from CSV.

Each file is all-or-nothing: the stored files are written to temporary names and renamed into place, then the
database rows are made in one transaction; if either step fails, what this file wrote is removed again. Files are
content-addressed by the hash of the de-identified file. Re-importing the same source file gives the same image.
Instances are grouped into cases by StudyInstanceUID (keyed with the trial's secret, never stored in clear).
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from core.errors import InvalidInput
from core.keyed import keyed_hex
from trial import audit
from trial.models import Case, Center, Trial
from trial.services import ensure_coordinator, ensure_writable

from .dicom import DicomRefused, deidentify, instance_summary, make_rendition, to_bytes, validate
from .models import IdentityKey, Image


@dataclass
class FileResult:
    filename: str
    status: str  # imported | duplicate | refused
    reason_code: str = ""
    message: str = ""
    case_code: str = ""
    image_id: str = ""
    flags: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _keyed(trial: Trial, purpose: str, value: str) -> str:
    return keyed_hex(trial.secret, purpose, value)


def date_shift_days(trial: Trial) -> int:
    """One shift per trial (keeps intervals between a patient's studies), between 1 and 10 years back."""
    return -(365 + int(_keyed(trial, "date-shift", "")[:8], 16) % 3285)


def _write_atomic(path: Path, data: bytes, written: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return  # content-addressed: same name, same bytes
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        written.append(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove(paths: list[Path]) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def import_file(actor, trial: Trial, center: Center, filename: str, data: bytes) -> FileResult:
    """Import one DICOM file; never raises for bad input: the result says what happened and why."""
    ensure_coordinator(actor, trial)
    ensure_writable(trial)
    if center.trial_id != trial.pk:
        raise InvalidInput("That center belongs to another trial.")
    source_sha = hashlib.sha256(data).hexdigest()
    existing = Image.objects.filter(case__trial=trial, source_sha256=source_sha).select_related("case").first()
    if existing is not None:
        return FileResult(filename, "duplicate", message="Already imported.", case_code=existing.case.code,
                          image_id=existing.public_id)
    try:
        inst = validate(data, filename, allowed_modalities=tuple({"CR", "DX", *trial.allowed_modalities}),
                        max_bytes=settings.DICOM_MAX_FILE_BYTES)
    except DicomRefused as exc:
        return FileResult(filename, "refused", exc.reason_code, exc.message)

    study_uid = str(inst.dataset.get("StudyInstanceUID", "") or f"no-study:{source_sha}")
    study_hash = _keyed(trial, "study", study_uid)
    case = Case.objects.filter(trial=trial, study_uid_hash=study_hash).select_related("center").first()
    if case is not None and case.center_id != center.pk:
        return FileResult(filename, "refused", "wrong_center",
                          f"This study was already imported at center {case.center.code}.")
    case_code = case.code if case else f"{center.code.upper()}-{study_hash[:10].upper()}"
    try:
        deid = deidentify(inst.dataset, uid_root_secret=trial.secret, date_policy=trial.date_policy,
                          date_shift_days=date_shift_days(trial), pseudonym=case_code)
        stored = to_bytes(deid.dataset)
        rendition = make_rendition(deid.dataset, pixels=inst.pixels)
        summary = instance_summary(deid.dataset)
    except DicomRefused as exc:
        return FileResult(filename, "refused", exc.reason_code, exc.message)
    except Exception as exc:  # a file pydicom accepted but cannot be rewritten or rendered
        return FileResult(filename, "refused", "undecodable", f"Could not process the image: {exc}")

    sha = hashlib.sha256(stored).hexdigest()
    rel = Path("images") / str(trial.pk) / sha[:2]
    root = Path(settings.MEDIA_ROOT)
    names = {"dicom": rel / f"{sha}.dcm", "display": rel / f"{sha}.display.png", "full": rel / f"{sha}.full.png"}
    written: list[Path] = []
    try:
        _write_atomic(root / names["dicom"], stored, written)
        _write_atomic(root / names["display"], rendition.display_png, written)
        _write_atomic(root / names["full"], rendition.full_range_png, written)
    except OSError as exc:
        _remove(written)
        return FileResult(filename, "refused", "storage_error",
                          f"Could not store the file ({exc.strerror or exc}); nothing was saved.")
    try:
        image = _save_rows(actor, trial, center, case_code, study_hash, source_sha, sha, names, rendition,
                           summary, deid)
    except IntegrityError:
        _remove(written)  # imported concurrently by someone else
        image = Image.objects.filter(case__trial=trial, source_sha256=source_sha).select_related("case").first()
        if image is None:
            raise
        return FileResult(filename, "duplicate", message="Already imported.", case_code=image.case.code,
                          image_id=image.public_id)
    except BaseException:
        _remove(written)
        raise
    flags = list(inst.flags) + (["burned_in_annotation_review"] if deid.burned_in_annotation else [])
    return FileResult(filename, "imported", case_code=image.case.code, image_id=image.public_id, flags=flags)


@transaction.atomic
def _save_rows(actor, trial, center, case_code, study_hash, source_sha, sha, names, rendition, summary, deid) -> Image:
    ensure_writable(trial)
    case, created = Case.objects.get_or_create(
        trial=trial, study_uid_hash=study_hash, defaults={"center": center, "code": case_code}
    )
    if created:
        audit.record(actor=actor, trial=trial, action="import", obj=case, after=audit.snapshot(case))
    image = Image.objects.create(
        case=case, source_sha256=source_sha, sha256=sha, dicom_file=str(names["dicom"]),
        display_file=str(names["display"]), full_range_file=str(names["full"]),
        sop_instance_uid=summary.sop_instance_uid, modality=summary.modality, view_position=summary.view_position,
        rows=summary.rows, columns=summary.columns, bits_allocated=summary.bits_allocated,
        bits_stored=summary.bits_stored, photometric_interpretation=summary.photometric_interpretation,
        pixel_spacing=summary.pixel_spacing, display=rendition.display,
        burned_in_annotation=bool(deid.burned_in_annotation),
    )
    audit.record(actor=actor, trial=trial, action="import", obj=image, after=audit.snapshot(image))
    if trial.keep_identity_key:
        for k in deid.key_entries:
            IdentityKey.objects.get_or_create(trial=trial, kind=k.kind, original=str(k.original),
                                              defaults={"pseudonym": str(k.pseudonym)})
    return image


def import_files(
    actor, trial: Trial, center: Center, files: Iterable[tuple[str, bytes]],
    progress: Callable[[FileResult], None] | None = None,
) -> list[FileResult]:
    results = []
    for name, data in files:
        r = import_file(actor, trial, center, name, data)
        results.append(r)
        if progress:
            progress(r)
    return results


def import_uploads(actor, trial: Trial, center: Center, uploads) -> list[FileResult]:
    """Uploaded files (Django UploadedFile): an oversized file is refused from its size, before it is read."""
    limit = settings.DICOM_MAX_FILE_BYTES
    results = []
    for f in uploads:
        if f.size > limit:
            results.append(FileResult(f.name, "refused", "too_large",
                                      f"file is {f.size} bytes, limit {limit}"))
            continue
        results.append(import_file(actor, trial, center, f.name, f.read()))
    return results


def iter_dir(path: Path) -> list[Path]:
    return sorted(p for p in Path(path).rglob("*") if p.is_file() and not p.name.startswith("."))


# -- reference standard ---------------------------------------------------------------------------------------
@dataclass
class ReferenceImport:
    updated: int
    errors: list[dict]


@transaction.atomic
def import_reference_csv(actor, trial: Trial, text: str) -> ReferenceImport:
    """CSV columns: case, one column per trial finding (0/1 or empty), optional report. All rows or none."""
    ensure_coordinator(actor, trial)
    ensure_writable(trial)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    cols = set(reader.fieldnames or [])
    if "case" not in cols:
        return ReferenceImport(0, [{"row": 1, "message": "The CSV needs a 'case' column."}])
    codes = trial.finding_codes
    unknown = cols - set(codes) - {"case", "report"}
    errors: list[dict] = []
    if unknown:
        errors.append({"row": 1, "message": f"Unknown columns: {', '.join(sorted(unknown))}."})
    cases = {c.code: c for c in Case.objects.select_for_update().filter(trial=trial)}
    updates = []
    for n, row in enumerate(reader, start=2):
        code = (row.get("case") or "").strip()
        case = cases.get(code)
        if case is None:
            errors.append({"row": n, "message": f"No case {code!r} in this trial."})
            continue
        findings = {}
        for f in codes:
            raw = (row.get(f) or "").strip()
            if raw == "":
                continue
            if raw not in ("0", "1"):
                errors.append({"row": n, "message": f"{f} must be 0, 1 or empty, not {raw!r}."})
                continue
            findings[f] = int(raw)
        updates.append((case, findings, (row.get("report") or "").strip()))
    if errors:
        transaction.set_rollback(True)
        return ReferenceImport(0, errors)
    for case, findings, report in updates:
        before = audit.snapshot(case)
        case.reference_findings = findings
        if report:
            case.reference_report = report
        case.save(update_fields=["reference_findings", "reference_report"])
        audit.record(actor=actor, trial=trial, action="reference:import", obj=case, before=before,
                     after=audit.snapshot(case))
    return ReferenceImport(len(updates), [])
