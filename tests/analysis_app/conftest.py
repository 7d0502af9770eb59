import pytest

from analysis.simulation import SimulationParams, simulate_trial
from tests.factories.trial import PASSWORD


@pytest.fixture(autouse=True)
def _no_draft_tasks(monkeypatch):
    """Enrolment queues drafts after commit; analysis tests do not need the model to run (simulated trials store
    ready drafts before enrolment)."""
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)


def small_simulated_trial(code: str = "SMALL", lock: bool = False, **kw) -> dict:
    """A quick simulated trial (8 cases) whose people can log in with the factories' password."""
    params = dict(code=code, cases=8, readers=6, centers=2, experts=2, seed=7, lock=lock, password=PASSWORD)
    params.update(kw)
    return simulate_trial(SimulationParams(**params))


@pytest.fixture
def small_trial(db):
    return small_simulated_trial()


@pytest.fixture
def make_small_trial(db):
    return small_simulated_trial
