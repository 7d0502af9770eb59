"""DICOM PS3.15 Annex E, Table E.1-1 (revision 2024b): the Application Level Confidentiality Profile, as data.

The table is read from ``imaging/dicom/data/confidentiality_profile_attributes.json``, the standard's table
as machine-readable data (innolitics/dicom-standard, MIT; source, commit and licence in
``imaging/dicom/data/README.md`` and ``LICENSE.txt``). Each entry keeps the attribute's name, its basic
profile action and the options this project applies:

* ``temporal``: *Retain Longitudinal Temporal Information with Modified Dates* says C (kept, shifted);
* ``patient_characteristic``: *Retain Patient Characteristics* says K;
* ``clean_descriptor``: *Clean Descriptors* says C (kept only when it holds nothing identifying);
* ``clean_graphics``: *Clean Graphics* says C.

Action codes (PS3.15 E.1.1): D dummy value, Z zero length (or dummy), X remove, K keep, C clean, U replace
UID consistently. Compound codes (``X/Z``, ``X/D``, ``Z/D``, ``X/Z/D``, ``X/Z/U*``) depend on the IOD's
attribute type; :func:`resolve_action` resolves them without IOD knowledge.

Patterns of the table: ``(50XX,XXXX)`` curve data, ``(60XX,3000)`` overlay data, ``(60XX,4000)`` overlay
comments, and ``(GGGG,EEEE) where GGGG is odd`` (private attributes): all removed. This implementation also
removes every other overlay attribute (60xx group: Overlay Description, Overlay Label...), stricter than the
table, because overlay text is burned-in-like and cannot be cleaned here.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

TABLE_FILE = Path(__file__).with_name("data") / "confidentiality_profile_attributes.json"
STANDARD_REVISION = "2024b"
_TAG_RE = re.compile(r"^\(([0-9A-F]{4}),([0-9A-F]{4})\)$")


@dataclass(frozen=True)
class ProfileEntry:
    tag: int
    name: str
    action: str  # as written in the standard, e.g. "X/Z/D"
    temporal: bool
    patient_characteristic: bool
    clean_descriptor: bool
    clean_graphics: bool

    @property
    def resolved(self) -> str:
        return resolve_action(self.action)


def _load(path: Path = TABLE_FILE) -> tuple[dict[int, ProfileEntry], list[dict]]:
    rows = json.loads(path.read_text(encoding="utf-8"))
    table: dict[int, ProfileEntry] = {}
    patterns: list[dict] = []
    for row in rows:
        match = _TAG_RE.match(row["tag"])
        if match is None:
            patterns.append(row)
            continue
        tag = int(match.group(1) + match.group(2), 16)
        if tag in table:
            raise ValueError(f"duplicate tag {row['tag']} in {path.name}")
        table[tag] = ProfileEntry(
            tag=tag, name=row["name"], action=row["basicProfile"],
            temporal=row.get("rtnLongModifDatesOpt") == "C",
            patient_characteristic=row.get("rtnPatCharsOpt") == "K",
            clean_descriptor=row.get("cleanDescOpt") == "C",
            clean_graphics=row.get("cleanGraphOpt") == "C",
        )
    return table, patterns


#: Tag (as int) -> entry, for every non-pattern attribute of Table E.1-1.
BASIC_PROFILE: dict[int, ProfileEntry]
#: The table's pattern rows as written in the standard (repeating groups, private attributes).
PATTERNS: list[dict]
BASIC_PROFILE, PATTERNS = _load()

#: (mask, value) -> action for the table's patterns; the 60xx rule covers the whole overlay group (see above).
REPEATING_GROUP_RULES: tuple[tuple[int, int, str], ...] = (
    (0xFF000000, 0x50000000, "X"),  # (50XX,XXXX) Curve Data
    (0xFF000000, 0x60000000, "X"),  # (60XX,3000) Overlay Data, (60XX,4000) Overlay Comments, and the rest
)


def resolve_action(action: str) -> str:
    """Reduce a compound action code to one of D, Z, X, U, K.

    The standard picks among the alternatives by the attribute's type in the IOD (X for type 3, Z for type 2,
    D for type 1). Without per-IOD type tables this implementation picks, safely for CR/DX/SC images:
    Z whenever Z is allowed (empty value: as protective as removal, keeps type 2 structure), otherwise X
    when allowed (``X/D``: those attributes are type 3 in the CR, DX and SC IODs), so no dummy values are
    invented. ``X/Z/U*`` (referenced/source image sequences) resolves to Z: the sequence is emptied.
    """
    options = action.replace("*", "").split("/")
    if len(options) == 1:
        return options[0]
    if "Z" in options:
        return "Z"
    if "X" in options:
        return "X"
    return options[0]


def profile_action(tag: int) -> str | None:
    """The resolved action for a tag, including the patterns and private tags; None if not listed."""
    entry = BASIC_PROFILE.get(tag)
    if entry is not None:
        return entry.resolved
    if (tag >> 16) % 2 == 1:
        return "X"
    for mask, value, action in REPEATING_GROUP_RULES:
        if tag & mask == value:
            return action
    return None
