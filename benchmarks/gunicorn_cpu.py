"""Gunicorn config for the load benchmark: server CPU time per request, per endpoint (`-c benchmarks/gunicorn_cpu.py`).

Gunicorn's gthread worker runs ``pre_request``, the Django app and ``post_request`` in the same pool thread, so
``time.thread_time()`` around them is the CPU this request cost in that worker (parsing, middleware, view,
serialisation, database driver; not the worker's accept loop, not PostgreSQL's own CPU). Each worker appends
``wall_time endpoint cpu_ms`` lines to ``$LOAD_CPU_DIR/cpu-<pid>.txt``; the benchmark reads them by time window.
Nothing here touches the application.
"""
from __future__ import annotations

import os
import re
import threading
import time

_ROUTES = [
    (re.compile(r"^/api/reading/trials/[^/]+/worklist/$"), "worklist"),
    (re.compile(r"^/reading/[^/]+/read/[^/]+/$"), "read page"),
    (re.compile(r"^/reading/[^/]+/next/$"), "next"),
    (re.compile(r"^/api/reading/reads/[^/]+/$"), "detail"),
    (re.compile(r"^/api/reading/reads/[^/]+/(open|heartbeat|autosave|submit)/$"), None),
    (re.compile(r"^/reading/images/[^/]+/meta\.json$"), "image meta"),
    (re.compile(r"^/reading/images/[^/]+/display\.png$"), "display image"),
    (re.compile(r"^/api/rating/[^/]+/$"), "rating worklist"),
    (re.compile(r"^/api/rating/[^/]+/[^/]+/$"), "rating task"),
    (re.compile(r"^/api/rating/[^/]+/[^/]+/(open|autosave|submit)/$"), "rating "),
]
_local = threading.local()
_lock = threading.Lock()
_files: dict[int, object] = {}


def endpoint_of(path: str) -> str:
    for pattern, name in _ROUTES:
        m = pattern.match(path)
        if m:
            if name is None:
                return m.group(1)
            return name + m.group(1) if name.endswith(" ") else name
    return "other"


def _out():
    pid = os.getpid()
    fh = _files.get(pid)
    if fh is None:
        folder = os.environ.get("LOAD_CPU_DIR")
        if not folder:
            return None
        fh = open(os.path.join(folder, f"cpu-{pid}.txt"), "a", buffering=1)  # noqa: SIM115 - kept for the worker
        _files[pid] = fh
    return fh


def pre_request(worker, req):
    _local.t0 = time.thread_time()


def post_request(worker, req, environ, resp):
    cpu = time.thread_time() - getattr(_local, "t0", time.thread_time())
    with _lock:
        fh = _out()
        if fh is not None:
            fh.write(f"{time.time():.3f} {endpoint_of(req.path).replace(' ', '_')} {cpu * 1000:.3f}\n")
