"""A fault-injecting HTTP proxy between a client and ``caveql serve``.

Every request is forwarded whole to the upstream server; the answer is read whole and then
passed back, or damaged first, by a *policy* (request number, method, path → fault name).
The faults are what networks, proxies and dying workers do to an answer:

``ok``               pass it on unchanged
``cut_after_schema`` the body ends right after the Arrow schema message, with a matching
                     ``Content-Length`` (it decodes as an empty table if nothing checks it)
``cut_close``        the same cut, sent without ``Content-Length`` and closed cleanly (a
                     close-delimited body: the client cannot tell from HTTP that it is short)
``drop_eos``         the Arrow end-of-stream marker removed, ``Content-Length`` matching
``flip``             one bit of the body flipped (headers, ``Content-Digest`` included, kept)
``flip_nodigest``    the same without ``Content-Digest`` (as the genuine service sends)
``gzip_flip``        the body gzip-encoded (``Content-Encoding: gzip``) and one bit of the
                     deflate data flipped: the CRC-32 must catch it
``short``            ``Content-Length`` announces the whole body, half is sent, then close
``reset``            half the body, then a TCP reset

Only answers with a body of ``data.arrow`` are damaged (metadata GETs pass unless the policy
says ``reset``). :func:`random_policy` draws faults at a rate from a seeded generator.
"""

from __future__ import annotations

import gzip
import http.server
import random
import socket
import struct
import threading
from collections.abc import Callable

import httpx

__all__ = ["FAULTS", "FaultProxy", "random_policy", "schema_end"]

FAULTS = ("cut_after_schema", "cut_close", "drop_eos", "flip", "flip_nodigest", "gzip_flip", "short", "reset")

Policy = Callable[[int, str, str], str]


def schema_end(body: bytes) -> int:
    """Bytes of the first IPC message (the schema) at the start of a stream body."""
    if body[:4] == b"\xff\xff\xff\xff":
        (length,) = struct.unpack("<i", body[4:8])
        return 8 + length
    (length,) = struct.unpack("<i", body[:4])  # the pre-1.0 format: no continuation token
    return 4 + length


def random_policy(rate: float, seed: int, faults: tuple[str, ...] = FAULTS) -> Policy:
    """A fault on a share ``rate`` of query answers (POSTs), drawn from ``faults``."""
    rnd = random.Random(seed)
    lock = threading.Lock()

    def policy(_n: int, method: str, _path: str) -> str:
        with lock:
            if method != "POST" or rnd.random() >= rate:
                return "ok"
            return rnd.choice(faults)

    return policy


class FaultProxy:
    """``with FaultProxy(upstream_url, policy) as p: ... p.url ...``; ``p.log`` lists
    ``(method, path, fault)`` of every request."""

    def __init__(self, upstream: str, policy: Policy | None = None, seed: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.policy: Policy = policy or (lambda _n, _m, _p: "ok")
        self.log: list[tuple[str, str, str]] = []
        self._rnd = random.Random(seed)
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=60.0)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                content = self.rfile.read(length) if length else b""
                with outer._lock:
                    n = len(outer.log)
                    fault = outer.policy(n, self.command, self.path)
                    outer.log.append((self.command, self.path, fault))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                upstream = outer._client.request(self.command, outer.upstream + self.path, headers=headers,
                                                 content=content)
                body = upstream.content  # decoded, if the upstream used a content coding
                out_headers = [(k, v) for k, v in upstream.headers.multi_items()
                               if k.lower() not in ("content-length", "content-encoding", "transfer-encoding",
                                                    "connection")]
                arrow = upstream.headers.get("content-type", "").startswith("data.arrow")
                if not arrow and fault != "reset":
                    fault = "ok"
                outer._send(self, upstream.status_code, out_headers, body, fault)

            do_GET = _handle
            do_POST = _handle

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def faults(self) -> list[str]:
        """The faults applied so far, in order (``ok`` left out)."""
        return [f for _m, _p, f in self.log if f != "ok"]

    def _flip(self, data: bytes, start: int = 0, end: int | None = None) -> bytes:
        with self._lock:
            end = len(data) if end is None else end
            i = self._rnd.randrange(start, max(start + 1, end))
            bit = 1 << self._rnd.randrange(8)
        out = bytearray(data)
        out[i] ^= bit
        return bytes(out)

    def _send(self, h: http.server.BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]],
              body: bytes, fault: str) -> None:
        length: int | None = len(body)
        if fault in ("cut_after_schema", "cut_close"):
            body = body[:schema_end(body)]
            length = None if fault == "cut_close" else len(body)
        elif fault == "drop_eos":
            body = body[:-8]
            length = len(body)
        elif fault in ("flip", "flip_nodigest"):
            body = self._flip(body)
            if fault == "flip_nodigest":
                headers = [(k, v) for k, v in headers if k.lower() != "content-digest"]
            length = len(body)
        elif fault == "gzip_flip":
            packed = gzip.compress(body, mtime=0)
            body = self._flip(packed, 10, len(packed))  # past the 10-byte gzip header: data or CRC
            headers = [(k, v) for k, v in headers if k.lower() != "content-digest"] + [("Content-Encoding", "gzip")]
            length = len(body)
        h.send_response(status)
        for k, v in headers:
            h.send_header(k, v)
        if fault in ("short", "reset"):
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            if fault == "reset":  # SO_LINGER 0: close sends RST
                h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.close_connection = True
            return
        if length is None:
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(body)
            h.wfile.flush()
            h.close_connection = True
            return
        h.send_header("Content-Length", str(length))
        h.end_headers()
        h.wfile.write(body)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._client.close()
