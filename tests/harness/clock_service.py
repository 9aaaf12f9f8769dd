"""A stand-in service for the host-fault tests: serves ``/health`` and ``/now`` (its own
``time.time()``) on CUTOVER_PORT, and writes nothing. Run by the process runtime in a
service's place, so it gets exactly the environment (libfaketime, data dir) the service would.
Standard library only, and no ``time.sleep`` (libfaketime 0.9.10 breaks it: faketime.py)."""

from __future__ import annotations

import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"now": time.time(), "data_dir": os.environ.get("CUTOVER_DATA_DIR")})
        self.send_response(200 if self.path in ("/health", "/now") else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["CUTOVER_PORT"])), _Handler).serve_forever()
