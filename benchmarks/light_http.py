"""A minimal asyncio HTTP/1.1 client for the load benchmarks (issue 19; docs/performance.md "The web tier").

The realistic load generator runs on the same 2 cores as the server it measures, so its own CPU per request is
taken from gunicorn: this client does only what the benchmark needs, on ``asyncio.open_connection``:

* one host, a bounded pool of keep-alive connections: an idle one is reused (the most recent first), a new one is
  opened while fewer than ``max_connections`` exist, otherwise the request waits for a free one;
* the request line, headers and body written with one ``writer.write``; JSON bodies; no cookie jar (each caller
  sends its own ``Cookie`` header);
* the response read as status line + headers, then a ``Content-Length`` body, a chunked body, or (neither) a body
  up to the server's close;
* an idle connection older than ``keepalive_expiry`` (set it below the server's keep-alive) or closed by the server
  is dropped before use; a response with ``Connection: close`` closes its connection after it is read;
* a request on a reused connection that the server closed before answering (nothing of the response read) is
  retried once on a fresh connection only if it was never sent or its method is idempotent; a POST that was sent is
  never retried (the server may have acted on it): the caller gets ``ServerDisconnected``, an error, not a silent
  second submit;
* one deadline per request (``timeout`` seconds, waiting for a connection included); when it passes, the request's
  connection is closed and ``Timeout`` raised.
"""
from __future__ import annotations

import asyncio
import json as jsonlib
import time
from collections import deque
from urllib.parse import urlsplit

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
NO_BODY_STATUS = frozenset({204, 304})


class HTTPError(Exception):
    """Base of every error this client raises."""


class ConnectError(HTTPError):
    pass


class Timeout(HTTPError):
    pass


class ServerDisconnected(HTTPError):
    """The connection ended before a whole response was read."""


class ProtocolError(HTTPError):
    """The server's bytes are not an HTTP/1.1 response this client understands."""


class _NotAnswered(Exception):
    """Internal: the connection closed before any byte of the response; ``sent``: whether the request went out."""

    def __init__(self, sent: bool):
        self.sent = sent


class Response:
    __slots__ = ("status_code", "headers", "content", "http_version")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes, http_version: str):
        self.status_code, self.headers, self.content, self.http_version = status_code, headers, content, http_version

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return jsonlib.loads(self.content)

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"


class _Conn:
    __slots__ = ("reader", "writer", "idle_since", "used")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer, self.idle_since, self.used = reader, writer, 0.0, 0

    def usable(self, now: float, expiry: float) -> bool:
        """Open, nothing unread (a server that closed it has sent its FIN: the reader is at EOF), not too old."""
        return (not self.reader.at_eof() and not self.writer.transport.is_closing()
                and not self.reader._buffer  # bytes nobody asked for (private attribute): not a clean keep-alive
                and now - self.idle_since < expiry)

    def close(self) -> None:
        self.writer.close()  # the transport closes at once; nothing to wait for


class Client:
    """``async with Client("http://127.0.0.1:8000") as c: r = await c.request("GET", "/path")``."""

    def __init__(self, base_url: str, *, max_connections: int = 100, timeout: float = 30.0,
                 keepalive_expiry: float = 20.0, headers: dict[str, str] | None = None):
        u = urlsplit(base_url)
        if u.scheme != "http" or not u.hostname:
            raise ValueError(f"only http://host[:port] is supported, not {base_url!r}")
        self.host, self.port = u.hostname, u.port or 80
        self.prefix = u.path.rstrip("/")
        self.timeout, self.keepalive_expiry = timeout, keepalive_expiry
        host_header = self.host if self.port == 80 else f"{self.host}:{self.port}"
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in
                              {"Host": host_header, "Accept": "*/*", "User-Agent": "cxr-light-http",
                               **(headers or {})}.items())
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: deque[_Conn] = deque()
        self._open: set[_Conn] = set()
        self.opened = 0  # connections opened (for tests and the benchmark's report)
        self.retries = 0  # requests sent again on a fresh connection

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for c in list(self._open):
            c.close()
        self._open.clear()
        self._idle.clear()

    async def get(self, url: str, **kw) -> Response:
        return await self.request("GET", url, **kw)

    async def post(self, url: str, **kw) -> Response:
        return await self.request("POST", url, **kw)

    async def request(self, method: str, url: str, *, json=None, content: bytes | None = None,
                      headers: dict[str, str] | None = None) -> Response:
        method = method.upper()
        body = content if json is None else jsonlib.dumps(json, separators=(",", ":")).encode()
        data = self._encode(method, url, body, headers, json is not None)
        try:
            async with asyncio.timeout(self.timeout):
                async with self._slots:
                    return await self._send(method, data)
        except TimeoutError:
            raise Timeout(f"no whole response to {method} {url} within {self.timeout} s") from None

    def _encode(self, method: str, url: str, body: bytes | None, headers: dict | None, is_json: bool) -> bytes:
        lines = [f"{method} {self.prefix}{url} HTTP/1.1\r\n", self._fixed]
        if headers:
            lines.extend(f"{k}: {v}\r\n" for k, v in headers.items())
        if body is not None:
            if is_json:
                lines.append("Content-Type: application/json\r\n")
            lines.append(f"Content-Length: {len(body)}\r\n")
        elif method in ("POST", "PUT", "PATCH"):
            lines.append("Content-Length: 0\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        return head + body if body else head

    async def _send(self, method: str, data: bytes) -> Response:
        """One request holding a pool slot: on a reused connection, then (once, when allowed) on a fresh one."""
        conn, reused = self._take()
        if conn is None:
            conn = await self._connect()
        try:
            return await self._exchange(conn, method, data)
        except _NotAnswered as exc:
            if not reused:
                raise ServerDisconnected("the server closed a new connection without answering") from None
            if exc.sent and method not in IDEMPOTENT:
                raise ServerDisconnected(f"the server closed a kept-alive connection after the {method} was sent; "
                                         "not sent again (it may have been acted on)") from None
        self.retries += 1
        conn = await self._connect()
        try:
            return await self._exchange(conn, method, data)
        except _NotAnswered:
            raise ServerDisconnected("the server closed a new connection without answering") from None

    def _take(self) -> tuple[_Conn | None, bool]:
        now = time.monotonic()
        idle = self._idle
        while idle and now - idle[0].idle_since >= self.keepalive_expiry:  # the oldest first: expired ones
            self._drop(idle.popleft())
        while idle:
            c = idle.pop()  # the most recently used: the others age out
            if c.usable(now, self.keepalive_expiry):
                return c, True
            self._drop(c)
        return None, False

    def _drop(self, c: _Conn) -> None:
        self._open.discard(c)
        c.close()

    async def _connect(self) -> _Conn:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        except OSError as exc:
            raise ConnectError(f"{self.host}:{self.port}: {exc}") from None
        c = _Conn(reader, writer)
        self._open.add(c)
        self.opened += 1
        return c

    async def _exchange(self, c: _Conn, method: str, data: bytes) -> Response:
        """Write the request, read the response; the connection goes back to the pool only after a whole response
        that allows keep-alive, and is closed on any error or cancellation (the per-request timeout)."""
        keep = False
        try:
            c.writer.write(data)
            if c.writer.transport.is_closing():  # the write failed at once: no byte went out
                raise _NotAnswered(sent=False)
            try:
                await c.writer.drain()  # the bytes were handed to the socket: from here on, maybe received
            except ConnectionError:
                raise _NotAnswered(sent=True) from None
            try:
                head = await c.reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise _NotAnswered(sent=True) from None
                raise ServerDisconnected("the connection closed inside the response head") from None
            except ConnectionError:
                raise _NotAnswered(sent=True) from None
            except asyncio.LimitOverrunError:
                raise ProtocolError("response head too long") from None
            response, keep = await self._read_response(c.reader, method, head)
            c.used += 1
            return response
        except ConnectionError as exc:  # reading the body
            raise ServerDisconnected(f"connection error: {exc}") from None
        except asyncio.IncompleteReadError:
            raise ServerDisconnected("the connection closed inside the response body") from None
        finally:
            if keep:
                c.idle_since = time.monotonic()
                self._idle.append(c)
            else:
                self._drop(c)

    async def _read_response(self, reader: asyncio.StreamReader, method: str, head: bytes
                             ) -> tuple[Response, bool]:
        lines = head[:-4].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {lines[0][:80]!r}")
        version, status = parts[0], int(parts[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise ProtocolError(f"bad header line {line[:80]!r}")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if 100 <= status < 200:  # an interim response (never asked for: no Expect header): the real one follows
            return await self._read_response(reader, method, await reader.readuntil(b"\r\n\r\n"))
        connection = headers.get("connection", "").lower()
        keep = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        if method == "HEAD" or status in NO_BODY_STATUS:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        elif "content-length" in headers:
            try:
                n = int(headers["content-length"])
            except ValueError:
                raise ProtocolError(f"bad Content-Length {headers['content-length']!r}") from None
            body = await reader.readexactly(n) if n else b""
        else:  # delimited by the server's close
            body, keep = await reader.read(), False
        return Response(status, headers, body, version), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {size_line[:40]!r}") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
                pass
            return b"".join(out)
        out.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise ProtocolError("chunk not followed by CRLF")
