"""The load generator's own CPU per request, httpx.AsyncClient vs benchmarks/light_http.py (docs/performance.md
"The web tier"), without Django: both clients against the same trivial HTTP/1.1 server in another process.

Usage:
    .venv/bin/python benchmarks/light_http_cpu.py [--requests 4000] [--concurrency 50] [--connections 50]

Each of ``--concurrency`` asyncio tasks sends, in turn, a GET and a POST with a small JSON body and a Cookie header
(the realistic benchmark's mix: mostly small POSTs), over one shared client with ``--connections`` keep-alive
connections. Printed per client: requests/s and this process's CPU ms per request (time.process_time: user +
system, the server's CPU is in the other process).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import light_http

SERVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = b'{"ok": true, "next": "r_0123456789abcdef", "already_submitted": false}'

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_GET(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    do_POST = do_GET

s = ThreadingHTTPServer(("127.0.0.1", 0), H)
s.daemon_threads = True
print(s.server_address[1], flush=True)
s.serve_forever()
"""


async def drive(kind: str, url: str, n: int, concurrency: int, connections: int) -> tuple[float, float, int]:
    if kind == "light":
        client, errors = light_http.Client(url, max_connections=connections, timeout=30), (light_http.HTTPError,)
    else:
        import httpx  # optional: only to compare

        client = httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(
            max_connections=connections, max_keepalive_connections=connections))
        errors = (httpx.HTTPError,)
    per_task, failed = n // concurrency, 0
    headers = {"Cookie": "sessionid=abcdefghijklmnopqrstuvwxyz012345; csrftoken=0123456789",
               "X-CSRFToken": "0123456789"}

    async def person(i: int, count: int) -> None:
        nonlocal failed
        for k in range(count):
            try:
                if k % 2:
                    r = await client.request("POST", f"/api/reading/reads/r_{i}/autosave/", headers=headers,
                                             json={"findings_text": "Draft: lungs clear " * 3, "seconds": 3})
                else:
                    r = await client.request("GET", f"/api/reading/trials/T/worklist/?p={i}", headers=headers)
                r.json()
            except errors:
                failed += 1

    async with client:
        await asyncio.gather(*(person(i, 4) for i in range(concurrency)))  # connections opened, code warm
        c0, w0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(person(i, per_task) for i in range(concurrency)))
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return cpu, wall, failed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=4000)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--clients", default="httpx,light")
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    out = {}
    try:
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        for kind in a.clients.split(","):
            cpu, wall, failed = asyncio.run(drive(kind, url, a.requests, a.concurrency, a.connections))
            n = a.requests // a.concurrency * a.concurrency
            out[kind] = {"requests": n, "failed": failed, "rps": round(n / wall, 1),
                         "client_cpu_ms_per_request": round(1000 * cpu / n, 3),
                         "client_cpu_cores": round(cpu / wall, 2)}
            print(f"{kind:6} {n} requests ({failed} failed), {n / wall:.0f} req/s, "
                  f"client CPU {1000 * cpu / n:.3f} ms per request ({cpu / wall:.2f} cores)", flush=True)
    finally:
        server.terminate()
        server.wait(10)
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))
    return 0 if all(v["failed"] == 0 for v in out.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
