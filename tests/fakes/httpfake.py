#!/usr/bin/env python3
"""tests/fakes/httpfake.py - a plain HTTP(S) test server for the http plugin's tests.

Python stdlib only. Binds 127.0.0.1 on a port the kernel picks and writes that port to
--port-file once it is listening, so tests never collide. Routes:
  /echo                   the request as JSON: method, path, query, headers, body
  /status/N[?retry_after=S&body=TEXT]   answers status N (with Retry-After when given)
  /redirect/N             a chain of N 302s ending at /echo
  /redirect-to?url=U&code=C   one redirect to U
  /chunked?n=N            N bytes with Transfer-Encoding: chunked
  /large?n=N              N bytes with Content-Length
  /stream?n=N             N bytes, no length, connection closed at the end
  /slow?ms=M              waits M ms, then answers "slow"
  /json, /badjson         application/json, well-formed or not
  /binary                 bytes 0..255, application/octet-stream
  /nul                    "a", NUL, "b" as text/plain
  /gzip                   a gzip-encoded text body
  /drop                   closes the connection without answering
With --tls-cert/--tls-key it speaks HTTPS. Every request is appended to --log as JSON.
"""
import argparse
import gzip
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG_LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "httpfake/1"

    def log_message(self, fmt, *args):  # keep the test output quiet
        pass

    def _body_in(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, code, body=b"", ctype="text/plain", extra=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _record(self, body):
        if not self.server.log_path:
            return
        rec = {"method": self.command, "path": self.path,
               "headers": {k.lower(): v for k, v in self.headers.items()},
               "body": body.decode("utf-8", "replace")}
        with LOG_LOCK, open(self.server.log_path, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def _handle(self):
        body = self._body_in()
        self._record(body)
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        parts = u.path.strip("/").split("/")
        route = parts[0]
        if route == "echo":
            out = {"method": self.command, "path": u.path,
                   "query": urllib.parse.parse_qs(u.query, keep_blank_values=True),
                   "headers": {k.lower(): v for k, v in self.headers.items()},
                   "body": body.decode("utf-8", "replace")}
            self._send(200, json.dumps(out).encode(), "application/json")
        elif route == "status":
            code = int(parts[1])
            extra = {}
            if "retry_after" in q:
                extra["Retry-After"] = q["retry_after"]
            self._send(code, q.get("body", "status %d" % code).encode(), extra=extra)
        elif route == "redirect":
            n = int(parts[1])
            loc = "/redirect/%d" % (n - 1) if n > 1 else "/echo"
            self._send(302, b"", extra={"Location": loc})
        elif route == "redirect-to":
            self._send(int(q.get("code", "302")), b"", extra={"Location": q["url"]})
        elif route == "chunked":
            n = int(q.get("n", "100000"))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            sent = 0
            while sent < n:
                k = min(4096, n - sent)
                self.wfile.write(b"%x\r\n" % k + b"c" * k + b"\r\n")
                sent += k
            self.wfile.write(b"0\r\n\r\n")
        elif route == "large":
            n = int(q.get("n", "1000000"))
            self._send(200, b"x" * n)
        elif route == "stream":
            n = int(q.get("n", "1000000"))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"s" * n)
            self.close_connection = True
        elif route == "slow":
            time.sleep(int(q.get("ms", "2000")) / 1000.0)
            self._send(200, b"slow")
        elif route == "json":
            self._send(200, b'{"ok": true, "items": [1, 2, 3], "name": "caf\\u00e9"}',
                       "application/json; charset=utf-8")
        elif route == "badjson":
            self._send(200, b'{"ok": tru', "application/json")
        elif route == "nul":
            self._send(200, b"a\x00b", "text/plain")
        elif route == "binary":
            self._send(200, bytes(range(256)), "application/octet-stream")
        elif route == "gzip":
            self._send(200, gzip.compress(b"hello gzip " * 100), "text/plain",
                       {"Content-Encoding": "gzip"})
        elif route == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._send(404, b"no such route")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.log_path = a.log
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
