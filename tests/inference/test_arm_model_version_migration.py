"""A database from before the move keeps each AI arm's model version: inference/0003 copies trial.Arm.model_version
into inference.ArmModelVersion before trial/0010 drops the column (docs/architecture.md)."""
from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("trial", "0009_import_settings_and_review"), ("inference", "0002_initial")]
AFTER = [("trial", "0010_arm_model_version_moved"), ("inference", "0003_arm_model_version")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_arm_model_versions_are_copied_and_restored():
    old = _migrate(BEFORE)
    Trial, Arm = old.get_model("trial", "Trial"), old.get_model("trial", "Arm")
    ModelVersion = old.get_model("inference", "ModelVersion")
    trial = Trial.objects.create(code="mig", title="Migration")
    mv = ModelVersion.objects.create(name="janus-pro-cxr-old", backend="janus", weights_path="/weights")
    ai = Arm.objects.create(trial=trial, code="ai_assisted", name="AI", is_ai=True, model_version=mv)
    plain = Arm.objects.create(trial=trial, code="unassisted", name="Unassisted")
    try:
        new = _migrate(AFTER)
        links = new.get_model("inference", "ArmModelVersion").objects.all()
        assert [(link.arm_id, link.model_version_id) for link in links] == [(ai.pk, mv.pk)]
        assert plain.pk not in {link.arm_id for link in links}
        # And back: the column is refilled from the links, so a rollback loses nothing either.
        old = _migrate(BEFORE)
        assert old.get_model("trial", "Arm").objects.get(pk=ai.pk).model_version_id == mv.pk
    finally:
        _migrate(_leaf_nodes())


def _leaf_nodes():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()
