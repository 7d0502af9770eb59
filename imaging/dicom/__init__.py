"""Pure (Django-free) DICOM core for case import: validate, de-identify, render, summarise.

Typical import of one file::

    inst = validate(data, filename)                       # raises DicomRefused(filename, reason_code, message)
    clean, keys, burned_in = deidentify(inst.dataset, uid_root_secret=trial_secret, date_policy="shift",
                                        pseudonym=case_code, options=DeidOptions())  # dates: per patient
    stored = to_bytes(clean)                              # the de-identified Part 10 file to store
    rendition = make_rendition(clean, pixels=inst.pixels) # display_png, display metadata (full_range() on request)
    summary = instance_summary(clean)                     # fields of the Image model
"""
from imaging.dicom.deid import (
    DeidOptions,
    DeidResult,
    KeyEntry,
    TimeShift,
    deidentify,
    patient_time_shift,
    pseudonymous_uid,
    to_bytes,
)
from imaging.dicom.rendition import Rendition, make_rendition
from imaging.dicom.summary import InstanceSummary, instance_summary
from imaging.dicom.synthetic import make_secondary_capture_cxr
from imaging.dicom.validation import REASON_CODES, DicomRefused, ValidatedInstance, validate

__all__ = [
    "REASON_CODES",
    "DeidOptions",
    "DeidResult",
    "DicomRefused",
    "InstanceSummary",
    "KeyEntry",
    "Rendition",
    "TimeShift",
    "ValidatedInstance",
    "deidentify",
    "instance_summary",
    "make_rendition",
    "make_secondary_capture_cxr",
    "patient_time_shift",
    "pseudonymous_uid",
    "to_bytes",
    "validate",
]
