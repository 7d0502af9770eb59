"""The realistic load benchmark's HTTP client (benchmarks/light_http.py) against a real HTTP/1.1 server on a local
socket (Python's threaded http.server): keep-alive reuse and the pool limit, a connection the server closed while
idle, Content-Length, chunked and close-delimited bodies, ``Connection: close``, the per-request timeout, and the
rule that a POST already sent is never sent again (docs/performance.md "The web tier")."""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.util
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _light_http():
    spec = importlib.util.spec_from_file_location("light_http", ROOT / "benchmarks" / "light_http.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lh = _light_http()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.conn_id, self.served = next(self.server.ids), 0

    def log_message(self, *args):  # quiet
        pass

    def _record(self) -> bytes:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.served += 1
        with self.server.lock:
            self.server.log.append((self.conn_id, self.served, self.command, self.path, body,
                                    self.headers.get("Cookie")))
        return body

    def _send(self, status: int, body: bytes, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _answer(self) -> None:
        body = self._record()
        path, _, query = self.path.partition("?")
        if path == "/drop-second" and self.served > 1:  # read, then closed unanswered (a keep-alive expiry race)
            self.close_connection = True
            return
        if path == "/slow":
            time.sleep(float(query.split("=")[1]))
        if path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b'{"parts": ', b"[1, 2, 3]", b"}"):
                self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")
            return
        if path == "/eof":  # no length: the body ends at the server's close
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until the end")
            self.close_connection = True
            return
        payload = json.dumps({"conn": self.conn_id, "nth": self.served, "body": body.decode()}).encode()
        self._send(200, payload, {"Connection": "close"} if path == "/close" else {"X-Mixed-Case": "Yes"})

    do_GET = do_POST = _answer


@contextlib.contextmanager
def serving(idle_timeout: float | None = None):
    """A threaded HTTP/1.1 server on 127.0.0.1; ``idle_timeout``: it closes a connection idle that long."""
    handler = type("H", (Handler,), {"timeout": idle_timeout})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.ids, server.lock, server.log = itertools.count(1), threading.Lock(), []
    server.handle_error = lambda request, address: None  # a slow answer to a client that gave up: a broken pipe
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run(coro):
    # A browser test earlier in the same process leaves Playwright's event loop running in this thread, where
    # asyncio.run refuses to start; the client gets a thread (and a loop) of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_keep_alive_reuse_headers_json_and_cookie_header():
    async def go(url):
        async with lh.Client(url, max_connections=4) as c:
            rs = [await c.get("/len", headers={"Cookie": f"sessionid=s{i}"}) for i in range(3)]
            r = await c.post("/len", json={"seconds": 15})
            return rs + [r], c.opened

    with serving() as (server, url):
        rs, opened = run(go(url))
    assert opened == 1
    assert [r.json()["nth"] for r in rs] == [1, 2, 3, 4]
    assert {r.json()["conn"] for r in rs} == {1}
    assert rs[0].status_code == 200 and rs[0].headers["x-mixed-case"] == "Yes"
    assert rs[0].headers["content-length"] == str(len(rs[0].content))
    assert json.loads(rs[3].json()["body"]) == {"seconds": 15}
    assert [entry[5] for entry in server.log] == ["sessionid=s0", "sessionid=s1", "sessionid=s2", None]


def test_pool_limit_waits_for_a_free_connection():
    async def go(url):
        async with lh.Client(url, max_connections=2) as c:
            t = time.perf_counter()
            rs = await asyncio.gather(*(c.get("/slow?s=0.2") for _ in range(6)))
            return rs, time.perf_counter() - t, c.opened

    with serving() as (server, url):
        rs, wall, opened = run(go(url))
    assert [r.status_code for r in rs] == [200] * 6
    assert opened == 2 and {r.json()["conn"] for r in rs} == {1, 2}
    assert wall >= 0.55  # three rounds of two


def test_connection_closed_by_the_server_while_idle_is_not_used():
    async def go(url):
        async with lh.Client(url, keepalive_expiry=60) as c:
            first = await c.get("/len")
            await asyncio.sleep(0.6)  # the server closes it after 0.2 s idle
            second = await c.post("/len", json={"n": 1})
            return first, second, c.opened, c.retries

    with serving(idle_timeout=0.2) as (server, url):
        first, second, opened, retries = run(go(url))
    assert first.json()["conn"] == 1 and second.json()["conn"] == 2
    assert (opened, retries) == (2, 0)
    assert [(e[2], e[3]) for e in server.log] == [("GET", "/len"), ("POST", "/len")]  # the POST sent once


def test_client_expiry_closes_idle_connections_before_the_server_does():
    async def go(url):
        async with lh.Client(url, keepalive_expiry=0.1) as c:
            await c.get("/len")
            await asyncio.sleep(0.2)
            return (await c.get("/len")).json()["conn"], c.opened

    with serving() as (_, url):
        assert run(go(url)) == (2, 2)


def test_get_retried_once_on_a_fresh_connection_when_closed_unanswered():
    async def go(url):
        async with lh.Client(url) as c:
            await c.get("/len")
            r = await c.get("/drop-second")  # 2nd request on the connection: read, closed without an answer
            return r, c.retries

    with serving() as (server, url):
        r, retries = run(go(url))
    assert r.status_code == 200 and r.json()["conn"] == 2 and retries == 1
    assert [(e[0], e[3]) for e in server.log] == [(1, "/len"), (1, "/drop-second"), (2, "/drop-second")]


def test_post_sent_then_closed_unanswered_is_an_error_not_a_second_submit():
    async def go(url):
        async with lh.Client(url) as c:
            await c.post("/len", json={"first": True})
            with pytest.raises(lh.ServerDisconnected):
                await c.post("/drop-second", json={"findings_text": "once"})
            after = await c.get("/len")  # the pool still works
            return after, c.retries

    with serving() as (server, url):
        after, retries = run(go(url))
    posts = [e for e in server.log if e[3] == "/drop-second"]
    assert len(posts) == 1 and json.loads(posts[0][4]) == {"findings_text": "once"}
    assert retries == 0 and after.status_code == 200 and after.json()["conn"] == 2


def test_chunked_close_delimited_and_connection_close_bodies():
    async def go(url):
        async with lh.Client(url) as c:
            chunked = await c.get("/chunked")
            same = await c.get("/len")
            closed = await c.get("/close")
            eof = await c.get("/eof")
            last = await c.get("/len")
            return chunked, same, closed, eof, last, c.opened

    with serving() as (_, url):
        chunked, same, closed, eof, last, opened = run(go(url))
    assert chunked.json() == {"parts": [1, 2, 3]} and chunked.headers["transfer-encoding"] == "chunked"
    assert same.json()["conn"] == 1  # the chunked response ended cleanly: the connection was kept
    assert closed.json()["conn"] == 1  # answered on it, then "Connection: close": not reused
    assert eof.content == b"until the end"
    assert last.json()["conn"] == 3 and opened == 3


def test_timeout_closes_the_connection_and_the_client_goes_on():
    async def go(url):
        async with lh.Client(url, timeout=0.3) as c:
            t = time.perf_counter()
            with pytest.raises(lh.Timeout):
                await c.get("/slow?s=1.5")
            waited = time.perf_counter() - t
            still_open = len(c._open)
            r = await c.get("/len")
            return waited, still_open, r, c.opened

    with serving() as (_, url):
        waited, still_open, r, opened = run(go(url))
    assert 0.25 <= waited < 1.0
    assert still_open == 0  # the timed-out request's connection was closed, not pooled
    assert r.status_code == 200 and r.json()["conn"] == 2 and opened == 2


def test_refused_connection_is_a_connect_error():
    with serving() as (_, url):
        pass  # closed: its port now refuses

    async def go():
        async with lh.Client(url) as c:
            await c.get("/len")

    with pytest.raises(lh.ConnectError):
        run(go())
