from pathlib import Path

import pandas as pd
import pytest

REF = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "reference-stats"


@pytest.fixture(scope="session")
def ref() -> Path:
    if not (REF / "README.md").exists():
        pytest.fail(f"reference data missing: expected {REF} (shared/data/reference-stats next to the repo)")
    return REF


@pytest.fixture(scope="session")
def read_ref(ref):
    def _read(rel: str) -> pd.DataFrame:
        path = ref / rel
        if not path.exists():
            pytest.fail(f"reference file missing: {path}")
        return pd.read_csv(path)

    return _read
