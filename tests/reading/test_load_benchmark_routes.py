"""The realistic load benchmark (benchmarks/load_realistic.py) names each request by the server-side CPU hook's
route table (benchmarks/gunicorn_cpu.py): every URL the simulated readers and experts call must map to its own
endpoint, so a renamed route shows up here and not as "other" in the benchmark's CPU column."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]


def _hook():
    spec = importlib.util.spec_from_file_location("gunicorn_cpu", ROOT / "benchmarks" / "gunicorn_cpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_benchmark_request_maps_to_its_endpoint():
    endpoint_of = _hook().endpoint_of
    pid, code = "r_abc123", "T1"
    urls = {
        "worklist": reverse("reading-api:worklist", args=[code]),
        "read page": reverse("reading:read", args=[code, pid]),
        "detail": reverse("reading-api:detail", args=[pid]),
        "open": reverse("reading-api:open", args=[pid]),
        "heartbeat": reverse("reading-api:heartbeat", args=[pid]),
        "autosave": reverse("reading-api:autosave", args=[pid]),
        "submit": reverse("reading-api:submit", args=[pid]),
        "image meta": reverse("imaging:image-meta", args=[pid]),
        "display image": reverse("imaging:image-display", args=[pid]),
        "rating worklist": reverse("rating-worklist", args=[code]),
        "rating task": reverse("rating-task", args=[code, pid]),
        "rating open": reverse("rating-open", args=[code, pid]),
        "rating autosave": reverse("rating-autosave", args=[code, pid]),
        "rating submit": reverse("rating-submit", args=[code, pid]),
    }
    assert {name: endpoint_of(url) for name, url in urls.items()} == {name: name for name in urls}
    assert endpoint_of("/api/reading/reads/x/amend/") == "other"
