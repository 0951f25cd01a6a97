"""The demo's webhook receiver: stands in for the paging, PSA and chat endpoints of
``compose/alertmanager.yml`` and appends every notification Alertmanager POSTs to a JSON
Lines file, one Alertmanager webhook payload (``receiver``, ``status``, ``alerts``, ...) a
line. GET /-/healthy answers 200, GET /-/identity ``{"pid": N}`` (who answers on the port).

``python -m mspwatch.demo.receiver --listen 127.0.0.1:9097 --output notifications.jsonl``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MAX_BODY = 4 * 1024 * 1024  # Alertmanager truncates nothing; a demo's groups are small


def make_handler(output: Path) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/-/identity":
                self._answer(200, json.dumps({"pid": os.getpid()}).encode())
                return
            self._answer(200 if self.path == "/-/healthy" else 404)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                self._answer(400)
                return
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                self._answer(400)
                return
            if not isinstance(body, dict):
                self._answer(400)
                return
            line = json.dumps(body, sort_keys=True) + "\n"
            with lock, output.open("a", encoding="utf-8") as out:
                out.write(line)
            self._answer(200)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mspwatch.demo.receiver", description=__doc__.split("\n")[0])
    p.add_argument("--listen", default="127.0.0.1:9097", help="host:port (default 127.0.0.1:9097)")
    p.add_argument("--output", type=Path, required=True, help="JSON Lines file notifications are appended to")
    args = p.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), make_handler(args.output))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
