"""A stand-in for a ClickHouse server: ClickHouse's HTTP interface in front of a chDB store.

No ClickHouse server can be installed on this machine, but the sink must also be tested on the HTTP
code path of clickhouse-connect (the one used in production). This module serves a chDB store on a
loopback port, speaking enough of ClickHouse's HTTP protocol for clickhouse-connect: the query in the
body or in the `query` parameter (INSERT data after the statement, or in the body when the statement
is in the URL), `database`, `default_format` and per-query settings as URL parameters, bound
parameters as `param_*`, multipart form bodies, compressed request bodies, `/ping`, the
`X-ClickHouse-*` response headers and exception codes. The engine is the real one (chDB), so result
bytes in every format (Native, Arrow, JSON...) are produced by ClickHouse itself and passed through.

It is not a server: one query at a time, no users (an expected `user:password` can be required to
test that credentials are sent), no sessions, no response compression, no progress headers.

Runs as its own process (chDB allows one engine per process and one process per store), so tests can
kill it mid-insert and start it again on the same port:

    with StandIn(tmp_path / "store.chdb") as server:     # starts, waits for /ping
        dsn = server.dsn                                 # http://127.0.0.1:PORT
        server.kill(); server.start()                    # a connection drop, same port and store
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
import zlib
from base64 import b64decode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

# URL parameters that steer the HTTP layer rather than being ClickHouse settings of the query.
TRANSPORT_PARAMS = frozenset(
    {
        "query", "database", "default_format", "query_id", "session_id", "session_timeout", "session_check",
        "user", "password", "quota_key", "compress", "decompress", "buffer_size", "wait_end_of_query",
        "client_protocol_version", "role", "enable_http_compression", "send_progress_in_http_headers",
        "http_headers_progress_interval_ms", "http_zlib_compression_level",
        "http_native_compression_disable_checksumming_on_decompress",
    }
)
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
# An INSERT whose data follows its statement: everything up to `FORMAT name`, then the data.
_INSERT_WITH_DATA = re.compile(rb"^\s*(INSERT\s+INTO\s.*?)\bFORMAT\s+(\w+)[ \t]*(?:\r?\n)?", re.IGNORECASE | re.DOTALL)
_SETTINGS_CLAUSE = re.compile(r"\bSETTINGS\b", re.IGNORECASE)
_RESULT_STATEMENT = re.compile(r"^\s*(\(\s*)*(SELECT|WITH|SHOW|DESC|DESCRIBE|EXISTS|EXPLAIN|CHECK)\b", re.IGNORECASE)
_ERROR_CODE = re.compile(r"\bCode:\s*(\d+)")
# ClickHouse's own mapping of a few exception codes to HTTP statuses; everything else is 500.
_HTTP_STATUS = {
    62: 400, 27: 400, 36: 400, 38: 400, 41: 400, 43: 400, 44: 400, 47: 400, 53: 400, 117: 400,
    60: 404, 81: 404, 46: 404, 516: 403, 497: 403, 164: 403, 202: 503, 209: 504,
}


def _decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "lz4":
        import lz4.frame

        return lz4.frame.decompress(body)
    if encoding == "zstd":
        from backports import zstd

        return zstd.decompress(body)
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Engine:
    """The chDB store, one query at a time, each on a fresh connection handle (cheap, ~0.2 ms) so
    that per-request settings and USE never leak into the next request."""

    def __init__(self, path: str):
        import chdb

        self._chdb = chdb
        self.path = path
        self._keep = chdb.connect(path)  # holds the engine open between requests
        self._lock = threading.Lock()
        self.timezone = self._keep.query("SELECT timezone()", "TabSeparated").bytes().decode().strip()
        self.tmp = Path(tempfile.mkdtemp(prefix="standin-"))

    def close(self) -> None:
        with self._lock:
            self._keep.close()

    def execute(
        self, sql: str, data: bytes | None, database: str | None, settings: dict[str, str], params: dict[str, str],
        default_format: str,
    ) -> tuple[bytes, str | None, dict[str, str]]:
        """Run one statement; return (body, result format or None, summary)."""
        with self._lock:
            conn = self._chdb.connect(self.path)
            try:
                if database:
                    conn.query(f"USE `{database.replace('`', '')}`", "TabSeparated")
                for key, value in settings.items():
                    conn.query(f"SET {key} = {_quote(value)}", "TabSeparated")
                if data is not None:
                    return self._insert(conn, sql, data)
                match = _TRAILING_FORMAT.search(sql)
                fmt = match.group(1) if match else default_format
                result = conn.query(sql, fmt, params=params)
                produces_rows = bool(match) or bool(_RESULT_STATEMENT.match(sql))
                summary = {"read_rows": str(result.rows_read()), "read_bytes": str(result.bytes_read()),
                           "written_rows": "0", "written_bytes": "0", "result_rows": "0", "result_bytes": "0",
                           "elapsed_ns": str(int(result.elapsed() * 1e9))}
                return result.bytes() or b"", fmt if produces_rows else None, summary
            finally:
                conn.close()

    def _insert(self, conn, statement: str, data: bytes) -> tuple[bytes, str | None, dict[str, str]]:
        match = _TRAILING_FORMAT.search(statement)
        if match is None:  # INSERT ... VALUES with the values in the body
            result = conn.query(f"{statement} {data.decode()}", "TabSeparated")
            return b"", None, {"written_rows": str(result.rows_read())}
        head = statement[: match.start()].rstrip()
        fmt = match.group(1)
        settings_at = _SETTINGS_CLAUSE.search(head)
        cut = settings_at.start() if settings_at else len(head)
        table_part, settings_part = head[:cut], head[cut:]  # FROM INFILE goes before SETTINGS
        path = self.tmp / f"{uuid.uuid4().hex}.{fmt.lower()}"
        path.write_bytes(data)
        try:
            sql = f"{table_part} FROM INFILE {_quote(str(path))} {settings_part} FORMAT {fmt}"
            result = conn.query(sql, "TabSeparated")
        finally:
            path.unlink(missing_ok=True)
        rows = str(result.rows_read())
        return b"", None, {"read_rows": rows, "read_bytes": str(result.bytes_read()), "written_rows": rows,
                           "written_bytes": str(result.bytes_read()), "elapsed_ns": str(int(result.elapsed() * 1e9))}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ClickHouse-stand-in"
    engine: Engine
    auth: tuple[str, str] | None = None

    def log_message(self, format: str, *args: object) -> None:  # quiet: tests read their own output
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        # /ping, and GET / without a query, answer "Ok." like ClickHouse
        if url.path.rstrip("/") == "/ping" or (url.path.rstrip("/") == "" and not parse_qsl(url.query)):
            self._reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        self._handle(b"")

    def do_POST(self) -> None:
        self._handle(self._read_body())

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(chunks)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return _decompress(body, self.headers.get("Content-Encoding", ""))

    def _credentials(self, params: dict[str, str]) -> tuple[str, str]:
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = b64decode(header[6:]).decode().partition(":")
            return user, password
        return (
            self.headers.get("X-ClickHouse-User") or params.get("user", "default"),
            self.headers.get("X-ClickHouse-Key") or params.get("password", ""),
        )

    def _handle(self, body: bytes) -> None:
        query_id = ""
        try:
            params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("multipart/form-data"):
                message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                    b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
                )
                for part in message.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    if name:
                        params[str(name)] = part.get_payload(decode=True).decode()
                body = b""
            query_id = params.get("query_id") or str(uuid.uuid4())
            if self.auth is not None and self._credentials(params) != self.auth:
                raise PermissionError(
                    "Code: 516. DB::Exception: default: Authentication failed: password is incorrect, "
                    "or there is no user with such name. (AUTHENTICATION_FAILED)"
                )
            sql, data = self._split(params.get("query", ""), body)
            settings = {k: v for k, v in params.items() if k not in TRANSPORT_PARAMS and not k.startswith("param_")}
            for key in settings:
                if not _SETTING_NAME.match(key):
                    raise ValueError(f"Code: 115. DB::Exception: Unknown setting {key}. (UNKNOWN_SETTING)")
            bound = {k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")}
            result, fmt, summary = self.engine.execute(
                sql, data, params.get("database"), settings, bound, params.get("default_format", "TabSeparated")
            )
        except Exception as exc:  # every failure becomes a ClickHouse-style error response
            message = str(exc)
            match = _ERROR_CODE.search(message)
            code = int(match.group(1)) if match else 1001
            idx = message.find("Code: ")
            text = (message[idx:] if idx >= 0 else f"Code: {code}. DB::Exception: {message}").strip() + "\n"
            self._reply(_HTTP_STATUS.get(code, 500), text.encode(), {
                "Content-Type": "text/plain; charset=UTF-8",
                "X-ClickHouse-Exception-Code": str(code),
                "X-ClickHouse-Query-Id": query_id,
            })
            return
        text = fmt in (None, "TabSeparated", "TSV", "JSON", "JSONEachRow")
        headers = {
            "Content-Type": "text/plain; charset=UTF-8" if text else "application/octet-stream",
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.engine.timezone,
            "X-ClickHouse-Server-Display-Name": "chdb-stand-in",
            "X-ClickHouse-Summary": json.dumps(summary),
        }
        if fmt:
            headers["X-ClickHouse-Format"] = fmt
        self._reply(200, result, headers)

    @staticmethod
    def _split(query_param: str, body: bytes) -> tuple[str, bytes | None]:
        """(statement, insert data or None), following ClickHouse: the statement is the `query`
        parameter followed by the body; for an INSERT ... FORMAT the data is what follows FORMAT."""
        if query_param:
            if body and _TRAILING_FORMAT.search(query_param) and query_param.lstrip()[:6].upper() == "INSERT":
                return query_param, body
            if body and query_param.lstrip()[:6].upper() == "INSERT":
                return query_param, body  # INSERT ... VALUES with values in the body
            return (query_param + (" " + body.decode() if body else "")), None
        match = _INSERT_WITH_DATA.match(body)
        if match:
            statement = (match.group(1) + b"FORMAT " + match.group(2)).decode()
            return statement, body[match.end() :]
        return body.decode(), None

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(path: str, port: int, auth: tuple[str, str] | None = None) -> None:
    Handler.engine = Engine(path)
    Handler.auth = auth
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"LISTENING {server.server_address[1]}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    server.server_close()
    Handler.engine.close()


class StandIn:
    """The stand-in server as a child process (see the module docstring)."""

    def __init__(self, path: Path, port: int = 0, auth: tuple[str, str] | None = None):
        self.path = Path(path)
        self.port = port
        self.auth = auth
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def dsn(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        env = dict(os.environ)
        if self.auth:
            env["IOC_STANDIN_AUTH"] = ":".join(self.auth)
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--path", str(self.path), "--port", str(self.port)],
            stdout=subprocess.PIPE, env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()  # blocks until the engine is open and the port bound
        if not line.startswith("LISTENING "):
            self.proc.kill()
            raise RuntimeError(f"stand-in failed to start: {line!r}")
        self.port = int(line.split()[1])
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.dsn}/ping", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: the connection drops mid-request, nothing is flushed or closed cleanly."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> StandIn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    auth_env = os.environ.get("IOC_STANDIN_AUTH", "")
    auth = tuple(auth_env.split(":", 1)) if auth_env else None
    serve(args.path, args.port, auth)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
