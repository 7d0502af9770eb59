"""core.cache.RedisCache (issue 19.2): Django's Redis cache keeping one redis client per connection pool, against the
real Redis of TEST_REDIS_URL: values round-trip, the client is reused, threads share it safely."""
from __future__ import annotations

import threading
import uuid

import pytest
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

from core.cache import RedisCache


@pytest.fixture
def cache(redis_url):
    c = RedisCache(redis_url, {"KEY_PREFIX": f"test-core-cache-{uuid.uuid4().hex}"})
    yield c
    c.clear()


def test_values_round_trip_as_with_djangos_backend(cache, redis_url):
    cache.set("k", {"a": [1, 2]}, 30)
    assert cache.get("k") == {"a": [1, 2]}
    assert cache.add("k", "other") is False and cache.get("k") == {"a": [1, 2]}
    django_side = DjangoRedisCache(redis_url, {"KEY_PREFIX": cache.key_prefix})  # same keys and serializer
    assert django_side.get("k") == {"a": [1, 2]}
    cache.delete("k")
    assert cache.get("k", "gone") == "gone" and django_side.get("k") is None


def test_one_client_per_pool(cache):
    first = cache._cache.get_client("x")
    assert cache._cache.get_client("y") is first and cache._cache.get_client("z", write=True) is first


def test_threads_share_the_client(cache):
    errors = []

    def work(i: int) -> None:
        try:
            for j in range(50):
                cache.set(f"t{i}-{j}", i * j, 30)
                assert cache.get(f"t{i}-{j}") == i * j
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(cache._cache._clients) == 1
