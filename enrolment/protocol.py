"""Declarative trial protocols (YAML or JSON), applied through the same services as the pages."""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from django.db import transaction

from core.errors import InvalidInput
from inference.models import ModelVersion
from trial import services
from trial.models import Trial


def load_protocol(path: str | Path) -> dict:
    text = Path(path).read_text()
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    if not isinstance(data, dict) or "code" not in data or "title" not in data:
        raise InvalidInput("A protocol needs at least 'code' and 'title'.")
    return data


@transaction.atomic
def apply_protocol(actor, data: dict) -> Trial:
    settings = {k: data[k] for k in services.TRIAL_SETTINGS if k in data and k != "title"}
    trial = services.create_trial(actor, code=data["code"], title=data["title"],
                                  design=data.get("design", Trial.Design.PAIRED_BY_CASE),
                                  findings=data.get("findings"), **settings)
    centers = {}
    for c in data.get("centers", []):
        centers[c["code"]] = services.add_center(actor, trial, code=c["code"], name=c.get("name", c["code"]))
    for a in data.get("arms", []):
        mv = None
        if a.get("model_version"):
            spec = a["model_version"]
            spec = {"name": spec} if isinstance(spec, str) else spec
            mv, _ = ModelVersion.objects.get_or_create(
                name=spec["name"], defaults={k: v for k, v in spec.items() if k != "name"}
            )
        services.add_arm(actor, trial, code=a["code"], name=a.get("name", a["code"]),
                         is_ai=bool(a.get("is_ai")), model_version=mv, ratio=int(a.get("ratio", 1)))
    for m in data.get("members", []):
        user = services.get_or_create_user(m["username"], email=m.get("email", ""), password=m.get("password"))
        center = centers.get(m["center"]) if m.get("center") else None
        if m.get("center") and center is None:
            raise InvalidInput(f"Member {m['username']}: unknown center {m['center']}.")
        services.add_member(actor, trial, user=user, role=m["role"], center=center,
                            experience=m.get("experience", ""))
    r = data.get("randomisation")
    if r and trial.require_signatures:
        raise InvalidInput("This protocol requires electronic signatures, and sealing the allocation list is signed: "
                           "leave out `randomisation` and generate the list on the trial page or API (signed).")
    if r:
        services.generate_allocation_list(
            actor, trial, seed=str(r["seed"]) if r.get("seed") is not None else None,
            block_sizes=r.get("block_sizes"), slots_per_stratum=r.get("slots_per_stratum"),
            stratify_by_experience=bool(r.get("stratify_by_experience", False)),
        )
    return trial
