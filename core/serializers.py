"""Output serializers without a per-request copy (issue 19; docs/performance.md, "Output serializers").

A DRF serializer deep-copies its declared fields every time it is instantiated: for the reading room's answers (a
heartbeat's three fields, a rating task's nested reports) that copy cost more CPU than the representation itself
(a sixth of a heartbeat's). An output serializer's plain fields hold no per-request state, so one instance per class
can represent every answer: ``represent(TaskSerializer, payload)`` is ``TaskSerializer(payload).data`` as a plain
dict (the same JSON). Only for output serializers that use no ``context`` (input serializers validate per request
and keep their errors: instantiate those as usual).
"""
from __future__ import annotations

import threading
from typing import Any

from rest_framework import serializers

_shared: dict[type, serializers.BaseSerializer] = {}
_lock = threading.Lock()


def represent(serializer_class: type[serializers.BaseSerializer], instance: Any) -> Any:
    """``serializer_class(instance).data``, by one shared instance of the class (built, and its fields bound, once)."""
    shared = _shared.get(serializer_class)
    if shared is None:
        with _lock:
            shared = _shared.get(serializer_class)
            if shared is None:
                shared = serializer_class()
                shared.fields  # noqa: B018 - bind the fields once, under the lock
                _shared[serializer_class] = shared
    return shared.to_representation(instance)
