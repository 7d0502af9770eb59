"""Fixtures for the pure imaging tests (no database, no Django)."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DICOM = ROOT / "fixtures" / "dicom"
PNG = ROOT / "fixtures" / "cxr-png"


@pytest.fixture(scope="session")
def chest_png() -> Path:
    return PNG / "00000001_000.png"


@pytest.fixture(scope="session")
def dicom_dir() -> Path:
    return DICOM
