"""A real HTTP server on 127.0.0.1 that behaves like an ArcGIS FeatureServer and a file host.

Tests drive the downloader against it over real sockets (no mocks): paging with
`resultOffset`/`resultRecordCount`/`exceededTransferLimit`, `returnCountOnly`,
f=geojson and f=json, and scripted faults (error statuses, Retry-After, bodies
shorter than Content-Length, connection resets, a server that never answers).
"""

from __future__ import annotations

import io
import json
import socket
import struct
import threading
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

SERVICES_PREFIX = "/arcgis/rest/services"


@dataclass
class FakeService:
    """One FeatureServer layer 0: rows of attributes (each with the object-id field)."""

    rows: list[dict[str, Any]]
    geometry: bool = True
    oid_field: str = "FID"
    max_record_count: int = 2000
    count_override: int | None = None  # returnCountOnly answers this instead of the truth
    serve_only: int | None = None  # pages are cut from only the first n rows
    repeat_on_later_pages: bool = False  # every page after the first starts with the previous row
    shapes: dict[Any, dict[str, Any]] | None = None  # object id → GeoJSON geometry (EPSG:4326)

    def fields(self) -> list[dict[str, str]]:
        names = list(self.rows[0]) if self.rows else [self.oid_field]
        return [
            {
                "name": n,
                "type": "esriFieldTypeOID" if n == self.oid_field else "esriFieldTypeString",
            }
            for n in names
        ]


@dataclass(frozen=True)
class Fault:
    """A scripted misbehaviour for one request.

    kind: status (HTTP `status`), arcgis (HTTP 200 with an ArcGIS error body of
    code `status`), truncate, reset, or trickle (headers, then a byte every 0.2 s).
    """

    kind: str
    status: int = 503
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class FakeServer:
    services: dict[str, FakeService] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    file_types: dict[str, str] = field(default_factory=dict)
    faults: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))
    hang: set[str] = field(default_factory=set)  # paths that never answer
    hits: Counter[str] = field(default_factory=Counter)
    log: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle

    def __enter__(self) -> FakeServer:
        handler = _make_handler(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def origin(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def base_url(self) -> str:
        return self.origin + SERVICES_PREFIX

    def file_url(self, name: str) -> str:
        return f"{self.origin}/files/{name}"

    def query_path(self, service: str) -> str:
        return f"{SERVICES_PREFIX}/{service}/FeatureServer/0/query"

    def add_fault(self, path: str, fault: Fault, times: int = 1) -> None:
        for _ in range(times):
            self.faults[path].append(fault)

    def total_hits(self) -> int:
        return sum(self.hits.values())

    # ---- request handling (called from handler threads)

    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            self.hits[path] += 1
            queue = self.faults.get(path)
            return queue.popleft() if queue else None


def _square(i: int) -> dict[str, Any]:
    x, y = -2.0 + 0.01 * i, 52.0
    ring = [[x, y], [x + 0.01, y], [x + 0.01, y + 0.01], [x, y + 0.01], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


def _geometry(service: FakeService, oid: Any) -> dict[str, Any] | None:
    if not service.geometry:
        return None
    if service.shapes is not None:
        return service.shapes[oid]
    return _square(int(oid))


def _make_handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            pass

        def do_GET(self) -> None:
            parsed = urlparse(self.path)
            path = parsed.path
            params = {k: v[0] for k, v in parse_qs(parsed.query).items()}
            server.log.append((path, params))
            server.agents.append(self.headers.get("User-Agent", ""))
            fault = server._next_fault(path)
            if path in server.hang:
                server._release.wait(30)
                self.close_connection = True
                return
            body, ctype = self._route(path, params)
            if fault is not None:
                self._fault(fault, body, ctype)
            elif body is None:
                self._send(404, b"<html><body>Not found</body></html>", "text/html")
            else:
                self._send(200, body, ctype)

        def _route(self, path: str, params: dict[str, str]) -> tuple[bytes | None, str]:
            if path.startswith("/files/"):
                name = path[len("/files/") :]
                if name not in server.files:
                    return None, ""
                return server.files[name], server.file_types.get(name, "application/octet-stream")
            if not path.startswith(SERVICES_PREFIX + "/"):
                return None, ""
            rest = path[len(SERVICES_PREFIX) + 1 :].split("/")
            service = server.services.get(rest[0])
            if service is None or rest[1:3] != ["FeatureServer", "0"]:
                return None, ""
            if len(rest) == 3:
                info = {
                    "objectIdField": service.oid_field,
                    "maxRecordCount": service.max_record_count,
                    "fields": service.fields(),
                }
                return json.dumps(info).encode(), "application/json"
            if rest[3:] == ["query"]:
                return json.dumps(_query(service, params)).encode(), "application/json"
            return None, ""

        def _send(self, status: int, body: bytes, ctype: str, extra: tuple = ()) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for key, value in extra:
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _fault(self, fault: Fault, body: bytes | None, ctype: str) -> None:
            body = body or b""
            if fault.kind == "arcgis":
                message = "Invalid URL" if fault.status == 400 else "Service busy"
                error = {"error": {"code": fault.status, "message": message, "details": [message]}}
                self._send(200, json.dumps(error).encode(), "application/json")
                return
            if fault.kind == "trickle":
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for i in range(len(body)):
                    if server._release.wait(0.2):
                        break
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                self.close_connection = True
                return
            if fault.kind == "status":
                self._send(fault.status, b'{"error": "busy"}', "application/json", fault.headers)
                return
            # truncate / reset: promise more bytes than are sent, then hang up
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body[: max(1, len(body) // 2)])
            self.wfile.flush()
            self.close_connection = True
            if fault.kind == "reset":
                sock = self.connection
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.wfile.close()
                self.rfile.close()
                sock.close()  # with linger 0 this sends RST, not FIN
                self.wfile = io.BytesIO()  # the handler's final flush must find an open file
                self.rfile = io.BytesIO()

    return Handler


def _query(service: FakeService, params: dict[str, str]) -> dict[str, Any]:
    rows = sorted(service.rows, key=lambda r: r[service.oid_field])
    if params.get("returnCountOnly") == "true":
        count = service.count_override if service.count_override is not None else len(rows)
        return {"count": count}
    if "orderByFields" not in params:
        return {"error": {"code": 400, "message": "resultOffset needs orderByFields"}}
    served = rows if service.serve_only is None else rows[: service.serve_only]
    offset = int(params.get("resultOffset", 0))
    n = min(
        int(params.get("resultRecordCount", service.max_record_count)), service.max_record_count
    )
    page = served[offset : offset + n]
    if service.repeat_on_later_pages and offset > 0 and page:
        page = [served[offset - 1], *page[1:]]
    exceeded = offset + n < len(served)
    if params.get("f") == "geojson":
        feats = [
            {
                "type": "Feature",
                "id": r[service.oid_field],
                "geometry": _geometry(service, r[service.oid_field]),
                "properties": dict(r),
            }
            for r in page
        ]
        out: dict[str, Any] = {"type": "FeatureCollection", "features": feats}
        if exceeded:
            out["properties"] = {"exceededTransferLimit": True}
        return out
    return {
        "objectIdFieldName": service.oid_field,
        "fields": service.fields(),
        "features": [{"attributes": dict(r)} for r in page],
        "exceededTransferLimit": exceeded,
    }
