"""Django's Redis cache with one redis client per connection pool (issue 19.2; docs/performance.md).

Django's RedisCacheClient builds a new ``redis.Redis`` for every cache call (``get_client``); its constructor
fills a table of ~170 response callbacks, which costs about as much CPU as the Redis round trip itself. With
cached_db sessions every signed-in request makes at least one cache call. A ``redis.Redis`` is thread-safe (each
command takes a connection from the pool and gives it back), so one per pool serves every thread of a worker.
Same keys, values, serializer and pools as Django's backend: only the client object is kept.
"""
from __future__ import annotations

import threading

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}  # server index -> client
        self._clients_lock = threading.Lock()

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            # Under a lock: the first requests of a worker's threads arrive together, and Django's pool creation
            # is not locked either (two pools for one server otherwise).
            with self._clients_lock:
                client = self._clients.get(index)
                if client is None:
                    if index not in self._pools:
                        self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
                    client = self._clients[index] = self._client(connection_pool=self._pools[index])
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
