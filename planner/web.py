"""HTTP for the downloader: bounded retries, a total deadline, and one clear line per failure.

Every request runs in one loop: a transient failure (HTTP 429/5xx, an ArcGIS
error body with such a code, a read timeout or a dropped connection) is retried
with the same exponential backoff, honouring Retry-After, until `retries` is
spent or the request's total deadline would pass. A host that cannot be
connected to at all fails at once ("no internet connection to <host>") and is
not tried again in the same run. ArcGIS FeatureServer services are paged
(`resultOffset`/`resultRecordCount`, ordered by the object-id field) and every
feature must arrive exactly once, matching `returnCountOnly`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlsplit

import requests
from tqdm import tqdm
from urllib3.exceptions import HTTPError, InvalidHeader, NewConnectionError
from urllib3.util.retry import Retry

import planner
from planner import sources
from planner.errors import PlannerError
from planner.fsutil import atomic_file
from planner.inputs import looks_like_html

log = logging.getLogger(__name__)

USER_AGENT = (
    f"planner/{planner.__version__} (parent-infant team coverage planner; "
    f"python-requests/{requests.__version__})"
)
TRANSIENT_STATUSES = (429, 500, 502, 503, 504)
MAX_RETRY_AFTER = 120  # seconds; a server asking for longer is treated as down
BACKOFF_MAX = 60.0
CONNECT_TIMEOUT = 10.0
RETRY_FIX = "retry later, or use `planner fetch --mirror <dir>` with the offline mirror"
OFFLINE_FIX = (
    "check the internet connection (behind a proxy, set HTTPS_PROXY), "
    "or use `planner fetch --mirror <dir>` with the offline mirror"
)
_CHUNK = 1 << 16
_HEAD = 1 << 16  # bytes kept from the start of a file for HTML sniffing and the CSV header

T = TypeVar("T")


class Transient(Exception):
    """A failure worth retrying: why, and how long the server asked us to wait."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limits:
    """How long to wait: `timeout` with no data, `deadline` per request in all, retries."""

    timeout: float = 30.0
    deadline: float = 120.0
    file_deadline: float = 1800.0
    retries: int = 5
    backoff_factor: float = 0.5

    def backoff(self, retry_number: int) -> float:
        """Exponential backoff (as urllib3's): factor × 2^(n-1), capped."""
        return min(BACKOFF_MAX, self.backoff_factor * 2 ** (retry_number - 1))


def make_session() -> requests.Session:
    """A Session naming planner and its version; retries are ours (see `Client.attempts`)."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def connect_failure(exc: BaseException) -> str | None:
    """The plain cause when `exc` means the host could not be reached at all, else None."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"no connection within {CONNECT_TIMEOUT:g} s"
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        err = stack.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, NewConnectionError):
            return re.sub(r"^(<[^>]*>|\w+Connection\(.*?\)):\s*", "", str(err))
        stack.extend(a for a in err.args if isinstance(a, BaseException))
        for linked in (getattr(err, "reason", None), err.__cause__, err.__context__):
            if isinstance(linked, BaseException):
                stack.append(linked)
    return None


def plain_reason(exc: BaseException, timeout: float) -> str:
    """A short human reason for a requests exception, the cause kept whole."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.Timeout) or "timed out" in text.lower():
        return f"no data for {timeout:g} s (read timeout)" if timeout else "read timeout"
    if "reset" in text.lower():
        return "connection reset by the server"
    if "IncompleteRead" in text or "incomplete" in text.lower():
        return "the body ended before Content-Length bytes arrived"
    return re.sub(r"<[^>]*object at 0x[0-9a-f]+>:?\s*", "", text)


class Client:
    """One fetch run's HTTP: a session, its limits, and hosts found unreachable."""

    def __init__(self, session: requests.Session, limits: Limits, show: bool) -> None:
        self.session = session
        self.limits = limits
        self.show = show
        self.unreachable: dict[str, str] = {}

    # ---- the retry loop

    def attempts(self, url: str, what: str, once: Callable[[float], T], deadline: float) -> T:
        """Call `once(seconds_left)` until it succeeds, retrying Transient failures.

        The whole loop, sleeps included, ends by `deadline` seconds from now.
        """
        host = urlsplit(url).netloc
        if host in self.unreachable:
            raise PlannerError(
                f"{what}: no internet connection to {host} ({self.unreachable[host]})",
                fix=OFFLINE_FIX,
            )
        end = time.monotonic() + deadline
        for retry_number in range(self.limits.retries + 1):
            left = end - time.monotonic()
            try:
                return once(left)
            except requests.exceptions.RequestException as exc:
                cause = connect_failure(exc)
                if cause is not None:
                    self.unreachable[host] = cause
                    raise PlannerError(
                        f"{what}: no internet connection to {host} ({cause})", fix=OFFLINE_FIX
                    ) from None
                reason, wait = plain_reason(exc, self.limits.timeout), None
            except Transient as exc:
                reason, wait = exc.reason, exc.retry_after
            if retry_number == self.limits.retries:
                break
            if wait is not None and wait > MAX_RETRY_AFTER:
                raise PlannerError(
                    f"{what}: the server asks to wait {wait:g} s ({reason})",
                    file=url,
                    fix=RETRY_FIX,
                )
            pause = self.limits.backoff(retry_number + 1) if wait is None else wait
            if time.monotonic() + pause >= end:
                raise self.out_of_time(url, what, deadline, reason)
            log.info("%s: %s; retrying in %.1f s", what, reason, pause)
            time.sleep(pause)
        raise PlannerError(
            f"{what}: still failing after {self.limits.retries} retries ({reason})",
            file=url,
            fix=RETRY_FIX,
        )

    @staticmethod
    def out_of_time(url: str, what: str, deadline: float, reason: str = "") -> PlannerError:
        cause = f" (last: {reason})" if reason else ""
        return PlannerError(
            f"{what}: no complete answer within {deadline:g} s{cause}; the server is stalled",
            file=url,
            fix=RETRY_FIX,
        )

    def response(
        self, url: str, params: Mapping[str, Any] | None, left: float
    ) -> requests.Response:
        """One GET (headers only); transient statuses raise Transient."""
        if left <= 0:
            raise Transient("out of time")
        read = min(self.limits.timeout, left)
        response = self.session.get(
            url, params=params, timeout=(min(CONNECT_TIMEOUT, left), read), stream=True
        )
        if response.status_code in TRANSIENT_STATUSES:
            header = response.headers.get("Retry-After")
            response.close()
            wait = None
            if header:
                try:
                    wait = float(Retry().parse_retry_after(header))
                except InvalidHeader:  # an unparseable header is ignored
                    wait = None
            raise Transient(f"HTTP {response.status_code} {response.reason}", wait)
        return response

    @staticmethod
    def read_body(response: requests.Response, end: float) -> bytes:
        """The whole body, giving up at `end` (monotonic) even if bytes keep trickling."""
        chunks = []
        with response:
            while True:
                if time.monotonic() > end:
                    raise Transient("the answer kept trickling past the deadline")
                try:
                    chunk = response.raw.read1(_CHUNK, decode_content=True)
                except (HTTPError, OSError) as exc:  # reset, cut short, or a read timeout
                    raise Transient(plain_reason(exc, 0)) from None
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks)

    # ---- JSON (ArcGIS)

    def json(
        self, url: str, params: Mapping[str, Any], what: str, fix_moved: str
    ) -> dict[str, Any]:
        """A JSON answer; ArcGIS error bodies are retried (transient codes) or named."""
        deadline = self.limits.deadline

        def once(left: float) -> dict[str, Any]:
            end = time.monotonic() + left
            response = self.response(url, params, left)
            status, final_url = response.status_code, response.url
            body = self.read_body(response, end)
            if status != 200:
                raise PlannerError(
                    f"{what}: HTTP {status}",
                    file=final_url,
                    fix=fix_moved if status in (400, 404, 410) else RETRY_FIX,
                )
            try:
                data = json.loads(body)
            except ValueError:
                kind = "an HTML page" if looks_like_html(body[:512]) else "not JSON"
                raise Transient(f"the answer is {kind} (first bytes {body[:60]!r})") from None
            if not isinstance(data, dict):
                raise PlannerError(f"{what}: unexpected JSON answer", file=final_url, fix=RETRY_FIX)
            error = data.get("error")
            if error is not None:
                error = error if isinstance(error, dict) else {"message": str(error)}
                code = error.get("code")
                text = "; ".join(
                    str(x) for x in [error.get("message"), *(error.get("details") or [])] if x
                )
                if code in TRANSIENT_STATUSES:
                    raise Transient(f"ArcGIS error {code}: {text}")
                moved = code in (400, 404) or "not found" in text.lower()
                raise PlannerError(
                    f"{what}: ArcGIS error {code}: {text}",
                    file=final_url,
                    fix=fix_moved if moved else RETRY_FIX,
                )
            return data

        return self.attempts(url, what, once, deadline)

    # ---- plain files

    def download_file(
        self, url: str, what: str, out: BinaryIO, fmt: str, fix_moved: str
    ) -> tuple[str, int, bytes]:
        """Stream `url` into `out`; return (sha256, size, first bytes). Checks length and HTML."""
        deadline = self.limits.file_deadline
        end = time.monotonic() + deadline

        def once(left: float) -> requests.Response:
            response = self.response(url, None, left)
            if response.status_code != 200:
                response.close()
                raise PlannerError(
                    f"{what}: HTTP {response.status_code} {response.reason}",
                    file=url,
                    fix=fix_moved if response.status_code in (400, 403, 404, 410) else RETRY_FIX,
                )
            return response

        response = self.attempts(url, what, once, deadline)
        ctype = response.headers.get("Content-Type", "")
        if "text/html" in ctype and fmt not in ("html", "htm"):
            response.close()
            raise PlannerError(
                f"{what}: the server sent an HTML page ({ctype}) instead of {fmt}",
                file=url,
                fix="the link has probably moved: get the current one from the publisher's "
                "page and edit the url in " + sources.SOURCES_FILE,
            )
        length = response.headers.get("Content-Length")
        encoded = response.headers.get("Content-Encoding", "identity") != "identity"
        expected = int(length) if (length and length.isdigit() and not encoded) else None
        digest = hashlib.sha256()
        size = 0
        head = b""
        try:
            with (
                response,
                tqdm(
                    total=expected, unit="B", unit_scale=True, desc=what, disable=not self.show
                ) as bar,
            ):
                while chunk := response.raw.read1(_CHUNK, decode_content=True):
                    if time.monotonic() > end:
                        raise self.out_of_time(url, what, deadline)
                    if len(head) < _HEAD:
                        head += chunk[: _HEAD - len(head)]
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
        except PlannerError:
            raise
        except Exception as exc:  # requests/urllib3/socket errors: a body cut short or reset
            raise PlannerError(
                f"{what}: the transfer broke off ({plain_reason(exc, self.limits.timeout)}); "
                "nothing kept",
                file=url,
                fix=RETRY_FIX,
            ) from None
        if size == 0:
            raise PlannerError(
                f"{what}: the server sent an empty (0-byte) file", file=url, fix=RETRY_FIX
            )
        if expected is not None and size != expected:
            raise PlannerError(
                f"{what}: truncated, got {size:,} of {expected:,} bytes (Content-Length)",
                file=url,
                fix=RETRY_FIX,
            )
        if looks_like_html(head):
            raise PlannerError(
                f"{what}: the server sent an HTML page instead of {fmt}",
                file=url,
                fix="the link has probably moved: get the current one from the publisher's "
                "page and edit the url in " + sources.SOURCES_FILE,
            )
        return digest.hexdigest(), size, head


# --------------------------------------------------------------------------- ArcGIS


def arcgis_features(
    client: Client,
    part: sources.OnlinePart,
    base_url: str,
    page_size: int,
    fix_moved: str,
) -> tuple[list[dict[str, Any]], list[str], bool]:
    """Every feature of an ArcGIS service exactly once: (features, field names, geojson?)."""
    service = str(part.service)
    what = f"ArcGIS service {service}"
    layer = client.json(part.layer_url(base_url), {"f": "json"}, what, fix_moved)
    oid = layer.get("objectIdField") or next(
        (f["name"] for f in layer.get("fields") or [] if f.get("type") == "esriFieldTypeOID"),
        None,
    )
    if not oid:
        raise PlannerError(
            f"{what}: layer description names no object-id field",
            file=part.layer_url(base_url),
            fix=RETRY_FIX,
        )
    page = max(1, min(page_size, int(layer.get("maxRecordCount") or page_size)))
    query = part.query_url(base_url)
    count = client.json(
        query, {"where": "1=1", "returnCountOnly": "true", "f": "json"}, what, fix_moved
    ).get("count")
    if not isinstance(count, int) or count < 0:
        raise PlannerError(f"{what}: returnCountOnly gave no count", file=query, fix=RETRY_FIX)
    geojson = part.kind == "layer"
    base_params: dict[str, Any] = {
        "where": "1=1",
        "outFields": "*",
        "orderByFields": f"{oid} ASC",
        "resultRecordCount": page,
        "f": "geojson" if geojson else "json",
        "returnGeometry": "true" if geojson else "false",
    }
    if geojson:
        base_params["outSR"] = "4326"
    features: dict[Any, dict[str, Any]] = {}
    fields: list[str] | None = None
    offset = 0
    max_pages = count // page + 3
    with tqdm(total=count, unit="feature", desc=service, disable=not client.show) as bar:
        for page_no in range(max_pages + 1):
            if page_no == max_pages:
                raise PlannerError(
                    f"{what}: still paging after {max_pages} pages for {count} features",
                    file=query,
                    fix=RETRY_FIX,
                )
            data = client.json(query, {**base_params, "resultOffset": offset}, what, fix_moved)
            batch = data.get("features")
            if not isinstance(batch, list):
                raise PlannerError(f"{what}: page without 'features'", file=query, fix=RETRY_FIX)
            if fields is None and not geojson:
                fields = [f["name"] for f in data.get("fields") or [] if "name" in f]
            for feature in batch:
                key = _object_id(feature, oid, geojson)
                if key is None:
                    raise PlannerError(
                        f"{what}: a feature at offset {offset} has no {oid}",
                        file=query,
                        fix=RETRY_FIX,
                    )
                if key in features:
                    raise PlannerError(
                        f"{what}: feature {oid}={key} arrived twice (page at offset "
                        f"{offset}); the paging is inconsistent",
                        file=query,
                        fix="retry later (the service may be updating), or use --mirror",
                    )
                features[key] = feature
            offset += len(batch)
            bar.update(len(batch))
            exceeded = data.get("exceededTransferLimit")
            if exceeded is None:
                exceeded = (data.get("properties") or {}).get("exceededTransferLimit", False)
            if not batch or not exceeded:
                break
    if len(features) != count:
        raise PlannerError(
            f"{what}: got {len(features)} features but returnCountOnly said {count}",
            file=query,
            fix="retry later (the service may be updating), or use --mirror",
        )
    ordered = [features[k] for k in sorted(features, key=_sort_key)]
    return ordered, _columns_of(ordered, geojson, fields), geojson


def _object_id(feature: Mapping[str, Any], oid: str, geojson: bool) -> Any:
    if geojson:
        props = feature.get("properties") or {}
        return props.get(oid, feature.get("id"))
    return (feature.get("attributes") or {}).get(oid)


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value))


def _columns_of(
    features: list[dict[str, Any]], geojson: bool, fields: list[str] | None
) -> list[str]:
    if fields:
        return fields
    key = "properties" if geojson else "attributes"
    seen: dict[str, None] = {}
    for feature in features:
        for name in feature.get(key) or {}:
            seen.setdefault(name, None)
    return list(seen)


def attributes(feature: Mapping[str, Any], geojson: bool) -> dict[str, Any]:
    return dict(feature.get("properties" if geojson else "attributes") or {})


def features_bytes(
    features: Iterable[dict[str, Any]], columns: list[str], geojson: bool, rename: dict[str, str]
) -> bytes:
    """The file written for a service: GeoJSON or CSV, fields spelled as registered."""
    if geojson:
        out = []
        for feature in features:
            props = {rename.get(k, k): v for k, v in attributes(feature, True).items()}
            out.append({**feature, "properties": props})
        collection = {"type": "FeatureCollection", "features": out}
        return (json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([rename.get(c, c) for c in columns])
    for feature in features:
        attrs = attributes(feature, False)
        writer.writerow(["" if attrs.get(c) is None else attrs.get(c) for c in columns])
    return buffer.getvalue().encode("utf-8")


def csv_header(head: bytes) -> list[str] | None:
    """The header row of a CSV from its first bytes (None when the header is longer)."""
    text = head.decode("utf-8-sig", errors="replace")
    if "\n" not in text:
        return None
    return next(csv.reader([text.splitlines()[0]]), [])


def write_atomic_bytes(path: Path, payload: bytes) -> str:
    """Write `payload` to `path` through a temporary sibling; return its sha256."""
    with atomic_file(path, "wb") as out:
        out.write(payload)
    return hashlib.sha256(payload).hexdigest()
