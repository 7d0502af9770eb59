from pathlib import Path

import pandas as pd
import pytest

# Published results kept beside the tests (the way statsmodels keeps R results); sources and licences in its README.
REF = Path(__file__).resolve().parent / "results"


@pytest.fixture(scope="session")
def ref() -> Path:
    if not (REF / "README.md").exists():
        pytest.fail(f"reference data missing: expected {REF} (tests/analysis/results)")
    return REF


@pytest.fixture(scope="session")
def read_ref(ref):
    def _read(rel: str) -> pd.DataFrame:
        path = ref / rel
        if not path.exists():
            pytest.fail(f"reference file missing: {path}")
        return pd.read_csv(path)

    return _read
