"""Case import: DICOM files validated, de-identified and stored; reference standards from CSV.

Every file ends imported, duplicate or refused with a reason code; nothing a file holds can raise out of
:func:`import_file` (a parser, decoder, de-identification or rendition failure is a refusal, logged here with
its traceback: docs/import.md). Each file is all-or-nothing and its own
transaction: the stored files are written to temporary names and renamed into place, then the database rows
are made in one transaction; if either step fails, what this file wrote is removed again. Files are
content-addressed by the hash of the de-identified file. Re-importing the same source file gives the same
image; the same SOP instance (its keyed pseudonymous UID) is stored once per trial, whatever its bytes.
Instances are grouped into cases by StudyInstanceUID (keyed with the trial's secret, never stored in clear).
A case whose image may carry burned-in identifiers waits in "needs review" until a coordinator confirms or
excludes it (:func:`review_case`).
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from celery import current_app, signature
from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction

from core.errors import Conflict, InvalidInput, TrialError
from core.keyed import keyed_hex
from trial import audit
from trial.import_settings import ImportSettings, parse_import_settings
from trial.models import Case, Center, Trial
from trial.services import ensure_coordinator, ensure_writable, exclude_case

from . import range_cache
from .dicom import (
    DicomRefused,
    deidentify,
    instance_summary,
    make_rendition,
    pseudonymous_uid,
    to_bytes,
    validate,
)
from .dicom.deid import DeidOptions, DeidResult
from .dicom.validation import ChestChecks, ValidatedInstance
from .models import IdentityKey, Image, ImportRefusal

logger = logging.getLogger("imaging.import")

#: Flags that put the case in "needs review" (it cannot be enrolled until a coordinator has looked).
REVIEW_FLAGS = ("burned_in_annotation", "burned_in_annotation_unknown")


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


def _settings(trial: Trial) -> ImportSettings:
    try:
        return parse_import_settings(trial.import_settings)
    except ValueError as exc:
        raise InvalidInput(f"The trial's import settings are invalid: {exc}") from exc


def _checks(s: ImportSettings) -> ChestChecks:
    return ChestChecks(
        allowed_body_parts=s.allowed_body_parts, allow_empty_body_part=s.allow_empty_body_part,
        allowed_views=s.allowed_views, allow_empty_view=s.allow_empty_view,
        presentation_only=s.presentation_only, pixel_spacing_mm=s.pixel_spacing_mm,
    )


def _refused(filename: str, code: str, message: str) -> FileResult:
    return FileResult(filename, "refused", code, message)


def _failed(filename: str, trial: Trial, code: str, step: str) -> FileResult:
    """An unexpected exception in one file: logged with its traceback, reported as a refusal."""
    logger.exception("import of %r into trial %s failed while %s", filename, trial.code, step)
    return _refused(filename, code, f"The file could not be processed ({step}); the details are in the server "
                                    "log.")


def _existing(trial: Trial, **lookup) -> Image | None:
    return Image.objects.filter(case__trial=trial, **lookup).select_related("case").first()


def _duplicate(filename: str, image: Image, message: str) -> FileResult:
    return FileResult(filename, "duplicate", "duplicate", message, case_code=image.case.code,
                      image_id=image.public_id)


def import_file(actor, trial: Trial, center: Center, filename: str, data: bytes) -> FileResult:
    """Import one DICOM file. Raises only for the request (permission, locked trial, foreign center); for
    anything about the file the result says what happened and why."""
    ensure_coordinator(actor, trial)
    ensure_writable(trial)
    if center.trial_id != trial.pk:
        raise InvalidInput("That center belongs to another trial.")
    options = _settings(trial)
    try:
        result = _import_one(actor, trial, center, filename, data, options)
    except TrialError:
        raise
    except Exception:  # noqa: BLE001 - storage or database trouble in one file never aborts the batch
        result = _failed(filename, trial, "import_failed", "storing")
    return note_refusal(trial, center, result)


def note_refusal(trial: Trial, center: Center | None, result: FileResult) -> FileResult:
    """Record a refused file by its reason (``ImportRefusal``: trial, center, reason, time; no file name or other
    identifier), for the CONSORT flow of the report (issue 20). Returns ``result``."""
    if result.status == "refused":
        ImportRefusal.objects.create(trial=trial, center=center, reason_code=str(result.reason_code or "")[:40])
    return result


def _validate(trial: Trial, filename: str, data: bytes, options: ImportSettings,
              source_sha: str) -> ValidatedInstance | FileResult:
    try:
        return validate(data, filename, allowed_modalities=tuple(sorted({"CR", "DX", *trial.allowed_modalities})),
                        max_bytes=settings.DICOM_MAX_FILE_BYTES, checks=_checks(options), sha256=source_sha)
    except DicomRefused as exc:
        return _refused(filename, exc.reason_code, exc.message)
    except Exception:  # noqa: BLE001 - validate refuses what it knows; anything else is still a refusal
        return _failed(filename, trial, "unreadable", "reading")


def _review_reason(inst: ValidatedInstance, options: ImportSettings) -> str:
    burned_in = str(inst.dataset.get("BurnedInAnnotation", "") or "").strip().upper()
    if burned_in == "YES":
        return "burned_in_annotation"
    if not burned_in and options.review_when_burned_in_absent and inst.modality in ("CR", "DX"):
        return "burned_in_annotation_unknown"
    return ""


def _import_one(actor, trial: Trial, center: Center, filename: str, data: bytes,
                options: ImportSettings) -> FileResult:
    source_sha = hashlib.sha256(data).hexdigest()
    existing = _existing(trial, source_sha256=source_sha)
    if existing is not None:
        return _duplicate(filename, existing, "Already imported.")
    inst = _validate(trial, filename, data, options, source_sha)
    if isinstance(inst, FileResult):
        return inst
    original_sop = str(inst.dataset.get("SOPInstanceUID", "") or "").strip()
    sop_pseudonym = pseudonymous_uid(original_sop, trial.secret) if original_sop else ""
    if sop_pseudonym and (existing := _existing(trial, sop_instance_uid=sop_pseudonym)) is not None:
        return _duplicate(filename, existing, "This SOP instance was already imported (from different bytes); "
                                              "the first copy is kept.")

    study_uid = str(inst.dataset.get("StudyInstanceUID", "") or f"no-study:{source_sha}")
    study_hash = _keyed(trial, "study", study_uid)
    case = Case.objects.filter(trial=trial, study_uid_hash=study_hash).select_related("center").first()
    if case is not None and case.center_id != center.pk:
        return _refused(filename, "wrong_center", f"This study was already imported at center {case.center.code}.")
    case_code = case.code if case else f"{center.code.upper()}-{study_hash[:10].upper()}"
    review = _review_reason(inst, options)
    try:
        deid = deidentify(inst.dataset, uid_root_secret=trial.secret, date_policy=trial.date_policy,
                          pseudonym=case_code, options=DeidOptions(
                              clean_descriptors=options.clean_descriptors, clean_graphics=options.clean_graphics,
                              pixels_cleared=not review),
                          keep_patient_characteristics=options.keep_patient_characteristics)
        stored = to_bytes(deid.dataset)
        summary = instance_summary(deid.dataset)
    except DicomRefused as exc:
        return _refused(filename, exc.reason_code, exc.message)
    except Exception:  # noqa: BLE001
        return _failed(filename, trial, "unreadable", "de-identifying")
    try:
        rendition = make_rendition(deid.dataset, pixels=inst.pixels, with_full_range=True)
    except Exception:  # noqa: BLE001
        return _failed(filename, trial, "rendition_failed", "rendering")
    flags = list(dict.fromkeys([*inst.flags, *([review] if review else [])]))
    return _store(actor, trial, center, filename, _Prepared(
        case_code=case_code, study_hash=study_hash, source_sha=source_sha, stored=stored, rendition=rendition,
        summary=summary, deid=deid, flags=flags, review=review))


@dataclass
class _Prepared:
    case_code: str
    study_hash: str
    source_sha: str
    stored: bytes
    rendition: object
    summary: object
    deid: DeidResult
    flags: list[str]
    review: str


def _store(actor, trial: Trial, center: Center, filename: str, p: _Prepared) -> FileResult:
    sha = hashlib.sha256(p.stored).hexdigest()
    rel = Path("images") / str(trial.pk) / sha[:2]
    root = Path(settings.MEDIA_ROOT)
    # The full range is read from the stored DICOM when a viewer asks for it (imaging/image_views.py).
    names = {"dicom": rel / f"{sha}.dcm", "display": rel / f"{sha}.display.png", "full": rel / f"{sha}.dcm"}
    written: list[Path] = []
    try:
        _write_atomic(root / names["dicom"], p.stored, written)
        _write_atomic(root / names["display"], p.rendition.display_png, written)
    except OSError as exc:
        _remove(written)
        return _refused(filename, "storage_error", f"Could not store the file ({exc.strerror or exc}); nothing was "
                                                   "saved.")
    try:
        image, dup = _save_rows(actor, trial, center, p, sha, names)
    except IntegrityError:
        _remove(written)  # imported concurrently by someone else
        image = _existing(trial, source_sha256=p.source_sha)
        if image is None:
            raise
        return _duplicate(filename, image, "Already imported.")
    except BaseException:
        _remove(written)
        raise
    if dup:
        _remove(written)
        return _duplicate(filename, image, "This SOP instance was already imported (from different bytes); the "
                                           "first copy is kept.")
    full16 = p.rendition.full16
    transaction.on_commit(lambda: cache_full_range(image=image, values=full16))
    return FileResult(filename, "imported", case_code=image.case.code, image_id=image.public_id, flags=p.flags)


def cache_full_range(*, image: Image, values: np.ndarray | None) -> bool:
    """After the import's commit: the viewer's full-range cache from the pixels the import decoded (so the stored
    DICOM is not decoded again at the first window/level; ~10 ms, docs/import.md "Speed"), and the task that encodes
    it for sending. A failure here loses nothing: the image view makes both on the first request."""
    if values is None:
        return False
    try:
        range_cache.write_raw(image.public_id, values)
    except Exception as exc:  # noqa: BLE001 - the image is committed: a cache failure must not turn it into a refusal
        logger.warning("could not write the full-range cache of image %s: %s", image.public_id, exc)
        return False
    send_encode_task(image_id=image.pk)
    return True


ENCODE_TASK = "imaging.tasks.encode_full_range"


def send_encode_task(*, image_id: int) -> bool:
    """Queue the encoding of the full range (imaging/tasks.py). Without a broker (the demo: tasks would run
    in-process, inside the import) it is not queued: the first window/level request makes it (~70 ms)."""
    if current_app.conf.task_always_eager:
        return False
    try:
        signature(ENCODE_TASK, args=(image_id,)).delay()
        return True
    except Exception as exc:  # noqa: BLE001 - broker down: the first request makes it instead
        logger.warning("could not queue the full-range encoding of image %s: %s", image_id, exc)
        return False


@transaction.atomic
def _save_rows(actor, trial: Trial, center: Center, p: _Prepared, sha: str, names: dict) -> tuple[Image, bool]:
    """(image, True) when the SOP instance was stored meanwhile (checked again under an advisory lock)."""
    ensure_writable(trial)
    if connection.vendor == "postgresql":  # one importer per SOP instance at a time
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pg_advisory_xact_lock(%s)",
                [int(_keyed(trial, "sop-lock", p.summary.sop_instance_uid)[:15], 16)],
            )
    # SQLite (the demo) has no advisory locks; it serialises every write transaction on its database lock anyway.
    same = _existing(trial, sop_instance_uid=p.summary.sop_instance_uid)
    if same is not None:
        return same, True
    case, created = Case.objects.get_or_create(
        trial=trial, study_uid_hash=p.study_hash, defaults={"center": center, "code": p.case_code}
    )
    if created:
        audit.record(actor=actor, trial=trial, action="import", obj=case, after=audit.snapshot(case))
    if p.review and not case.needs_review:
        before = audit.snapshot(case)
        case.needs_review, case.review_reason = True, p.review
        case.save(update_fields=["needs_review", "review_reason"])
        audit.record(actor=actor, trial=trial, action="review:required", obj=case, before=before,
                     after=audit.snapshot(case), reason=p.review)
    s = p.summary
    image = Image.objects.create(
        case=case, source_sha256=p.source_sha, sha256=sha, dicom_file=str(names["dicom"]),
        display_file=str(names["display"]), full_range_file=str(names["full"]),
        sop_instance_uid=s.sop_instance_uid, modality=s.modality, view_position=s.view_position,
        rows=s.rows, columns=s.columns, bits_allocated=s.bits_allocated,
        bits_stored=s.bits_stored, photometric_interpretation=s.photometric_interpretation,
        pixel_spacing=s.pixel_spacing, pixel_spacing_kind=s.pixel_spacing_kind, laterality=s.laterality,
        patient_age=s.patient_age, patient_sex=s.patient_sex, display=p.rendition.display,
        burned_in_annotation=bool(p.deid.burned_in_annotation), flags=p.flags,
    )
    audit.record(actor=actor, trial=trial, action="import", obj=image, after=audit.snapshot(image))
    if trial.keep_identity_key:
        for k in p.deid.key_entries:
            IdentityKey.objects.get_or_create(trial=trial, kind=k.kind, original=str(k.original),
                                              defaults={"pseudonym": str(k.pseudonym)})
    return image, False


def import_files(
    actor, trial: Trial, center: Center, files: Iterable[tuple[str, bytes]],
    progress: Callable[[FileResult], None] | None = None,
) -> list[FileResult]:
    """Each file in its own transaction; every file is reported. The request is checked once up front; a
    refusal that arrives mid-batch (the trial locked meanwhile) is that file's result, not an exception."""
    ensure_coordinator(actor, trial)
    ensure_writable(trial)
    results = []
    for name, data in files:
        try:
            r = import_file(actor, trial, center, name, data)
        except TrialError as exc:
            r = _refused(name, str(exc.code), exc.message)
        results.append(r)
        if progress:
            progress(r)
    return results


def _read_file(name: str, path: Path) -> tuple[str, bytes] | FileResult:
    try:
        return name, path.read_bytes()
    except OSError as exc:
        return _refused(name, "unreadable", f"could not read the file: {exc.strerror}")


#: The trial and center a pool worker imports into (set once per worker process by _worker_start).
_worker_target: dict = {}


def _worker_start(trial_pk: int, center_pk: int) -> None:
    _worker_target.update(trial=Trial.objects.get(pk=trial_pk), center=Center.objects.get(pk=center_pk))


def _worker_import(item: tuple[str, str]) -> FileResult:
    read = _read_file(item[0], Path(item[1]))
    if isinstance(read, FileResult):
        return note_refusal(_worker_target["trial"], _worker_target["center"], read)
    name, data = read
    try:
        return import_file(None, _worker_target["trial"], _worker_target["center"], name, data)
    except TrialError as exc:
        return _refused(name, str(exc.code), exc.message)


def import_paths(
    actor, trial: Trial, center: Center, paths: Iterable[tuple[str, Path]], *, jobs: int = 1,
    progress: Callable[[FileResult], None] | None = None,
) -> list[FileResult]:
    """Files from disk, as ``(name, path)``: what :func:`import_files` does, with ``jobs`` worker processes.

    Each worker imports whole files (its own database connection, its own transactions), so the work scales
    with cores; concurrent imports of one study or SOP instance are already safe (advisory lock, unique
    constraints, see _save_rows). Only the management command uses workers (actor None, a system import);
    results arrive in completion order. Workers are forked, so they share the parent's settings and
    database (docs/import.md "Speed")."""
    ensure_coordinator(actor, trial)
    ensure_writable(trial)
    items = [(name, str(path)) for name, path in paths]
    results: list[FileResult] = []

    def done(r: FileResult) -> None:
        results.append(r)
        if progress:
            progress(r)

    if jobs <= 1 or len(items) <= 1:
        for item in items:
            read = _read_file(item[0], Path(item[1]))
            if isinstance(read, FileResult):
                done(note_refusal(trial, center, read))
                continue
            try:
                r = import_file(actor, trial, center, *read)
            except TrialError as exc:
                r = _refused(item[0], str(exc.code), exc.message)
            done(r)
        return results
    if actor is not None:
        raise InvalidInput("Parallel import runs as a system import (no actor).")
    connections.close_all()  # a forked worker must open its own connection, never share the parent's socket
    with multiprocessing.get_context("fork").Pool(min(jobs, len(items)), initializer=_worker_start,
                                                  initargs=(trial.pk, center.pk)) as pool:
        for r in pool.imap_unordered(_worker_import, items, chunksize=1):
            done(r)
    return results


def _upload_files(uploads, limit: int, results: list[FileResult], trial: Trial,
                  center: Center) -> Iterable[tuple[str, bytes]]:
    for f in uploads:
        if f.size > limit:  # refused from its size, before it is read
            results.append(note_refusal(trial, center, _refused(f.name, "too_large",
                                                                f"file is {f.size} bytes, limit {limit}")))
            continue
        yield f.name, f.read()


def import_uploads(actor, trial: Trial, center: Center, uploads) -> list[FileResult]:
    """Uploaded files (Django UploadedFile), in upload order; an oversized file is refused from its size."""
    limit = settings.DICOM_MAX_FILE_BYTES
    results: list[FileResult] = []
    import_files(actor, trial, center, _upload_files(uploads, limit, results, trial, center),
                 progress=results.append)
    return results


REVIEW_DECISIONS = ("confirm", "exclude")


@transaction.atomic
def review_case(actor, case: Case, *, decision: str, reason: str = "") -> Case:
    """A coordinator has looked at a case held for review (burned-in annotation) and confirms it may be
    enrolled, or excludes it. Audited; the case's images are unchanged."""
    trial = case.trial
    ensure_coordinator(actor, trial)
    ensure_writable(trial)
    if decision not in REVIEW_DECISIONS:
        raise InvalidInput(f"Decision must be one of {', '.join(REVIEW_DECISIONS)}.")
    case = Case.objects.select_for_update().get(pk=case.pk)
    if not case.needs_review:
        raise Conflict(f"Case {case.code} is not waiting for review.")
    if decision == "exclude" and not reason:
        raise InvalidInput("Excluding a case needs a reason.")
    before = audit.snapshot(case)
    case.needs_review = False
    case.save(update_fields=["needs_review"])
    audit.record(actor=actor, trial=trial, action=f"review:{decision}", obj=case, before=before,
                 after=audit.snapshot(case), reason=reason or case.review_reason)
    if decision == "exclude":
        case = exclude_case(actor, case, reason)
    return case


def iter_dir(path: Path) -> list[Path]:
    return sorted(p for p in Path(path).rglob("*") if p.is_file() and not p.name.startswith("."))


# -- reference standard ---------------------------------------------------------------------------------------
@dataclass
class ReferenceImport:
    updated: int
    errors: list[dict]


def _library_flag(case: Case, raw: str, row: int, errors: list[dict]) -> bool | None:
    """The reference CSV's optional library column: 1 puts the case in the reference library, 0 takes it out,
    empty leaves it. An enrolled case cannot join: it is being read."""
    if raw == "":
        return None
    if raw not in ("0", "1"):
        errors.append({"row": row, "message": f"library must be 0, 1 or empty, not {raw!r}."})
        return None
    if raw == "1" and case.enrolled_at is not None:
        errors.append({"row": row, "message": f"Case {case.code} is enrolled: it cannot join the reference library."})
        return None
    return raw == "1"


@transaction.atomic
def import_reference_csv(actor, trial: Trial, text: str) -> ReferenceImport:
    """CSV columns: case, one column per trial finding (0/1 or empty), optional report, optional indication (the
    clinical indication readers see, at most 300 characters), optional library (1: the case joins the trial's
    reference library of similar cases, issue 21 item 2; only a case not enrolled). All rows or none."""
    ensure_coordinator(actor, trial)
    ensure_writable(trial)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    cols = set(reader.fieldnames or [])
    if "case" not in cols:
        return ReferenceImport(0, [{"row": 1, "message": "The CSV needs a 'case' column."}])
    codes = trial.finding_codes
    unknown = cols - set(codes) - {"case", "report", "indication", "library"}
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
        indication = " ".join((row.get("indication") or "").split())
        if len(indication) > 300:
            errors.append({"row": n, "message": "indication must be at most 300 characters."})
        library = _library_flag(case, (row.get("library") or "").strip(), n, errors)
        updates.append((case, findings, (row.get("report") or "").strip(), indication, library))
    if errors:
        transaction.set_rollback(True)
        return ReferenceImport(0, errors)
    for case, findings, report, indication, library in updates:
        before = audit.snapshot(case)
        case.reference_findings = findings
        if report:
            case.reference_report = report
        if indication:
            case.clinical_indication = indication
        if library is not None:
            case.library = library
        case.save(update_fields=["reference_findings", "reference_report", "clinical_indication", "library"])
        audit.record(actor=actor, trial=trial, action="reference:import", obj=case, before=before,
                     after=audit.snapshot(case))
    return ReferenceImport(len(updates), [])
