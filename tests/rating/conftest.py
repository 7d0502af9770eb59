import pytest


@pytest.fixture(autouse=True)
def _no_draft_tasks(monkeypatch):
    """Enrolment queues drafts after commit; rating tests do not need the model to run."""
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)
