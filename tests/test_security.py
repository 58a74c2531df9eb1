"""Security rules of DESIGN.md s.7: credentials never in the repository, Grafana reads as the read-only
user, SQL never interpolates event or user values, and Kafka / ClickHouse security settings reach the
clients from the environment.

The scans read every tracked file (and every line ever added in the history), so a leaked secret fails
CI even after it was deleted again. Known test dummies (credentials of the stand-ins) are listed
explicitly below, each with its file, so a new literal needs a conscious decision.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import orjson
import pytest
import yaml
from clickhouse_stand_in import StandIn
from confluent_kafka.admin import AdminClient
from conftest import broker_kinds
from fuzz_support import INJECTIONS, injected_records
from worker_support import WorkerProcess, raw_counts, wait_all_done

from ioc.broker import LocalBroker, free_port
from models.events import FAMILIES, SERVICE_CENTER
from models.schema import parse_time
from models.settings import Settings, bootstrap_servers
from simulators.replay import make_producer
from sinks.client import connect
from sinks.migrate import ensure_reader, migrate
from sinks.writer import ClickHouseWriter
from streams.checkpoints import load_checkpoints
from streams.decode import DeadLetter, MessageBatch
from streams.pipeline import deadletter_rows, pipelines

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- no credentials in the repository

SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret key": re.compile(r"(?i)aws_secret_access_key\s*[=:]\s*\S{20,}"),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    "Grafana token": re.compile(r"\b(?:glsa|glc)_[A-Za-z0-9_+/=]{32,}"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+"),
}
# user:password@ in a URL or DSN (clickhouse://, https://, kafka://, postgres://...).
URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@'\"]+:([^\s/@'\"]+)@")
# password = "literal", "token": 'literal', READER_PASSWORD: "literal" (code, YAML, JSON, TOML).
QUOTED_SECRET = re.compile(
    r"(?i)\b\w*(?:password|passwd|secret|token|api_?key)\w*['\"]?[ \t]*[=:][ \t]*(?:\"([^\"\n]*)\"|'([^'\n]*)')")
# PASSWORD=literal lines (env files, shell, Dockerfiles, properties).
ENV_SECRET = re.compile(r"(?m)^[ \t]*(?:export[ \t]+)?[A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY)[A-Z0-9_]*"
                        r"[ \t]*=[ \t]*([^\s#'\"]+)")
# password: literal (unquoted YAML, TOML, ini, properties).
CONFIG_SECRET = re.compile(r"(?im)^[ \t]*[\w.-]*(?:password|passwd|secret|token|api_?key)[\w.-]*[ \t]*[:=][ \t]*"
                           r"([^\s#'\"{\[][^\s#]*)")
CONFIG_FILES = (".yml", ".yaml", ".toml", ".ini", ".cfg", ".conf", ".properties")
# Values that are not credentials: references to the environment, names of variables, placeholders.
PLACEHOLDER = re.compile(r"^(?:\$\{.*|\$[A-Za-z_]\w*|\{.*|[A-Z][A-Z0-9_]*|change-me[\w-]*|\*+|<[^>]+>|\.\.\.|.{0,2})$")
# Test dummies for the stand-ins and for the redaction/quoting tests: (file, value). Nothing real.
KNOWN_DUMMIES = {
    ("tests/test_dashboards_deploy.py", "stand-in-token"),
    ("tests/test_dashboards_deploy.py", "reader-secret-for-tests"),
    ("tests/test_dashboards_deploy.py", "not-the-token"),
    ("tests/test_dashboards_deploy.py", "stand-in-admin"),
    ("tests/test_sink.py", "secret"),
    ("tests/test_models.py", "s3cret"),
    ("tests/test_sink_http.py", "s3cr'et"),
    ("tests/test_sink_http.py", "pa'ss\\\\word"),
    ("tests/test_sink_http.py", "guess"),
}
DOCS = (".md", ".example", ".txt", ".rst")


# This file holds the bait the scanner must catch (test_the_scanner_finds_what_it_looks_for).
SELF = "tests/test_security.py"


def secret_findings(path: str, text: str) -> list[str]:
    """What in one file's text looks like a credential (a dummy or placeholder is no finding)."""
    if path == SELF:
        return []
    found = [f"{path}: {name}" for name, pattern in SECRET_PATTERNS.items() if pattern.search(text)]
    for match in URL_PASSWORD.finditer(text):
        value = match.group(1)
        if not PLACEHOLDER.match(value) and (path, value) not in KNOWN_DUMMIES:
            found.append(f"{path}: password in a URL ({match.group(0)[:60]})")
    if path.endswith(DOCS):  # docs and .env.example may show `PASSWORD=change-me`-style examples
        return found
    literals = [(m.group(0), m.group(1) if m.group(1) is not None else m.group(2))
                for m in QUOTED_SECRET.finditer(text)]
    if not path.endswith(".py"):  # in Python, `X_SECRET = ...` is code; its literals are caught above
        literals += [(m.group(0), m.group(1)) for m in ENV_SECRET.finditer(text)]
    if path.endswith(CONFIG_FILES):
        literals += [(m.group(0), m.group(1)) for m in CONFIG_SECRET.finditer(text)]
    for where, value in literals:
        if not PLACEHOLDER.match(value) and (path, value) not in KNOWN_DUMMIES:
            found.append(f"{path}: {where[:80]!r}")
    return found


def tracked_files() -> list[str]:
    return subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout.split("\0")[:-1]


def test_no_credentials_in_tracked_files() -> None:
    findings: list[str] = []
    for path in tracked_files():
        file = ROOT / path
        if not file.is_file() or file.stat().st_size > 5_000_000:
            continue
        data = file.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary (images, PDFs among the seeds)
        findings += secret_findings(path, data.decode("utf-8", "replace"))
    assert not findings, "credentials in the repository:\n" + "\n".join(findings)


def test_no_credentials_ever_added_in_the_history() -> None:
    """A secret deleted in a later commit is still in the repository: scan every added line."""
    log = subprocess.run(["git", "log", "-p", "--no-color", "--format=commit %H", "--no-ext-diff"], cwd=ROOT,
                         check=True, capture_output=True).stdout.decode("utf-8", "replace")
    findings: list[str] = []
    path = ""
    added: dict[str, list[str]] = {}
    for line in log.splitlines():
        if line.startswith("+++ b/"):
            path = line[6:]
        elif line.startswith("+") and not line.startswith("+++"):
            added.setdefault(path, []).append(line[1:])
    for path, lines in added.items():
        findings += secret_findings(path, "\n".join(lines))
    assert not findings, "credentials in the git history:\n" + "\n".join(sorted(set(findings)))


def test_the_scanner_finds_what_it_looks_for() -> None:
    """The scan above passing means something only if these are caught."""
    leaks = {
        "key.pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIE...", "a.py": 'password = "hunter22"',
        "b.yaml": "clickhouse_password: Tr0ub4dor&3", "c.env": "IOC_CLICKHOUSE_PASSWORD=s3cr3t-prod",
        "d.py": 'DSN = "clickhouse://ioc:hunter22@ch:8123/ioc"', "e.sh": "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        "f.py": 'token = "ghp_' + "a" * 36 + '"', "g.md": "see http://admin:letmein@grafana:3000",
    }
    for path, text in leaks.items():
        assert secret_findings(path, text), path
    clean = {"a.py": "password=settings.clickhouse_password", "b.yaml": 'password: "${IOC_CLICKHOUSE_READER_PASSWORD}"',
             ".env.example": "IOC_GRAFANA_PASSWORD=change-me-admin", "c.md": "IOC_CLICKHOUSE_PASSWORD=...",
             "d.py": 'redact("http://u:***@ch:8123")', "e.yml": 'X_PASSWORD: "${X_PASSWORD:?set it in .env}"'}
    for path, text in clean.items():
        assert not secret_findings(path, text), (path, secret_findings(path, text))


def test_secret_files_are_ignored_and_never_tracked() -> None:
    tracked = tracked_files()
    assert not [p for p in tracked if Path(p).name == ".env" or p.endswith((".pem", ".key", ".p12", ".jks"))
                or Path(p).name in ("id_rsa", "id_ed25519", "credentials.json")]
    ignored = subprocess.run(["git", "check-ignore", ".env"], cwd=ROOT, capture_output=True, text=True)
    assert ignored.stdout.strip() == ".env"


def test_settings_print_no_secret() -> None:
    """Secrets come from env or files and never show in a repr (logs, tracebacks, the demo's output)."""
    secret_fields = [f.name for f in fields(Settings) if any(w in f.name for w in ("password", "token"))]
    assert secret_fields and all(not f.repr for f in fields(Settings) if f.name in secret_fields)
    settings = Settings(**{name: f"leak-{name}" for name in secret_fields})  # type: ignore[arg-type]
    assert "leak-" not in repr(settings)


# ---------------------------------------------------------------- Grafana reads as the read-only user


def test_grafana_datasource_is_the_read_only_user_from_its_environment() -> None:
    provisioning = ROOT / "deploy/grafana/provisioning/datasources"
    sources = [s for f in sorted(provisioning.glob("*.y*ml")) for s in yaml.safe_load(f.read_text())["datasources"]]
    clickhouse = [s for s in sources if s["type"] == "grafana-clickhouse-datasource"]
    assert clickhouse
    for source in clickhouse:
        assert source["jsonData"]["username"] == "${IOC_CLICKHOUSE_READER_USER}"
        assert source["secureJsonData"] == {"password": "${IOC_CLICKHOUSE_READER_PASSWORD}"}
    # Prometheus (the workers' metrics, compose's internal network): no credentials to hold at all.
    others = [s for s in sources if s not in clickhouse]
    assert [s["type"] for s in others] == ["prometheus"]
    assert all("secureJsonData" not in s and "basicAuth" not in s for s in others)
    grafana = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]["environment"]
    assert "IOC_CLICKHOUSE_PASSWORD" not in grafana and "IOC_CLICKHOUSE_USER" not in grafana  # not the writer
    assert all(str(v).startswith("${") or (k.startswith("GF_") and "PASSWORD" not in k)
               for k, v in grafana.items() if "PASSWORD" in k or "USER" in k)


class RecordingClient:
    """Records the statements `ensure_reader` sends (a server's access management, not a stand-in's)."""

    uri = "http://clickhouse:8123"

    def __init__(self) -> None:
        self.statements: list[str] = []

    def command(self, sql: str) -> str:
        self.statements.append(sql)
        return "ioc" if sql.startswith("SELECT currentDatabase()") else ""


def test_the_reader_can_only_select_and_its_password_cannot_break_out() -> None:
    client = RecordingClient()
    password = "p'); GRANT ALL ON *.* TO ioc_reader; --\\"
    report = ensure_reader(client, Settings(clickhouse_reader_password=password))  # type: ignore[arg-type]
    assert report.startswith("ok")
    grants = [s for s in client.statements if s.startswith("GRANT")]
    assert grants == ["GRANT SELECT ON `ioc`.* TO `ioc_reader_role`", "GRANT `ioc_reader_role` TO `ioc_reader`"]
    assert any(s.endswith("SETTINGS readonly = 2") for s in client.statements)
    with_password = [s for s in client.statements if "sha256_password BY" in s]
    escaped = "'p\\'); GRANT ALL ON *.* TO ioc_reader; --\\\\'"  # one literal: quote and backslash escaped
    assert with_password and all(s.endswith(f"BY {escaped}") for s in with_password)
    with pytest.raises(ValueError):
        ensure_reader(client, Settings(clickhouse_reader_user="r`; DROP", clickhouse_reader_password="x"))  # type: ignore[arg-type]


# ---------------------------------------------------------------- SQL never interpolates values

CLIENT_CALLS = {"query", "command", "query_arrow", "query_df", "query_np", "raw_query", "query_rows", "insert"}
# Names an f-string SQL may interpolate in the worker, sink and briefing code, and why that is safe.
SAFE_NAMES = {
    "CHECKPOINT_TABLE": "streams.checkpoints: a constant (group, topic and partitions are bound)",
    "SEEN_IDS_TABLE": "streams.checkpoints: a constant (group, topic, partition and offsets are bound)",
    "table": "sinks.rollups: a name from the constant ROLLUP_TABLES",
    "name": "sinks.dimensions: a dimension table of our own reference module",
    "ttl": "sinks.migrate: built from int(days) (TTL takes no parameters)",
}


def interpolations(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, expression) of every value interpolated into an f-string passed to a ClickHouse call."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in CLIENT_CALLS and node.args):
            continue
        for part in ast.walk(node.args[0]):
            if isinstance(part, ast.FormattedValue):
                yield node.lineno, ast.unparse(part.value)


def test_sql_sent_by_the_worker_sink_and_briefing_interpolates_no_value() -> None:
    """Values go as bound parameters (`{name:Type}`) or Arrow inserts; identifiers only through
    `sinks.sql.identifier` (validated) and constants. A new interpolation fails here until reviewed."""
    offenders = []
    for folder in ("streams", "sinks", "briefing", "models", "ioc"):
        for file in sorted((ROOT / folder).rglob("*.py")):
            for line, expr in interpolations(ast.parse(file.read_text())):
                safe = expr in SAFE_NAMES or re.fullmatch(r"(identifier|string_literal)\(.*\)", expr)
                if not safe:
                    offenders.append(f"{file.relative_to(ROOT)}:{line}: {{{expr}}}")
    assert not offenders, "f-string SQL with values (bind them as parameters):\n" + "\n".join(offenders)


def test_http_stand_in_sql_injection_in_keys_is_stored_verbatim(tmp_path: Path) -> None:
    """Hostile keys through the pipelines and the writer into ClickHouse over HTTP (the production path):
    stored byte for byte, no statement of theirs ran, every table intact."""
    t0 = parse_time("2025-07-14T08:00:00Z")
    settings = Settings()
    with StandIn(tmp_path / "store.chdb") as server:
        dsn = f"{server.dsn}/ioc"
        migrate(dsn, settings)
        client = connect(dsn, settings)
        tables_before = sorted(r[0] for r in client.query("SHOW TABLES").result_rows)
        by_topic = pipelines(settings)
        with ClickHouseWriter(dsn, settings) as writer:
            for family in FAMILIES.values():
                pipeline = by_topic[family.topic]
                values = [orjson.dumps(r) for r in injected_records(family, t0)] + [b"{'; DROP TABLE raw_network"]
                out = pipeline.process(MessageBatch.of([(v, 0, i, None) for i, v in enumerate(values)]))
                assert out.events_valid == len(INJECTIONS) and len(out.dead) == 1
                writer.add_many([(t, rows) for t, rows in out.rows if rows.num_rows])
                writer.add("deadletters", deadletter_rows(out.dead, t0))
                writer.add_many([(t, rows) for t, rows in pipeline.close_all().rows if rows.num_rows])
        assert sorted(r[0] for r in client.query("SHOW TABLES").result_rows) == tables_before
        for family in FAMILIES.values():
            stored = client.query(f"SELECT event_id, {family.key_field} FROM raw_{family.name} FINAL "
                                  f"ORDER BY event_id").result_rows
            expected = sorted((r["event_id"], r[family.key_field]) for r in injected_records(family, t0))
            assert sorted(stored) == expected  # verbatim, and nothing else in the table
            keys = {r[0] for r in client.query(f"SELECT DISTINCT {family.key_field} FROM agg_{family.name} FINAL"
                                               ).result_rows}
            assert keys == {text[:32] for text in INJECTIONS}
            one = client.query(f"SELECT count() FROM raw_{family.name} FINAL WHERE {family.key_field} = {{k:String}}",
                               parameters={"k": INJECTIONS[0][:32]}).result_rows
            assert one == [(1,)]  # a bound parameter finds the hostile key as data
        assert client.query("SELECT count() FROM deadletters FINAL").result_rows == [(3,)]
        # The checkpoint lookup binds the consumer group (IOC_APP_ID) too.
        assert load_checkpoints(client, "x') OR 1=1 --", SERVICE_CENTER.topic, [0, 1]) == {}
        client.close()


# ---------------------------------------------------------------- Kafka and ClickHouse security from env


def test_kafka_security_settings_reach_the_worker_and_the_producers() -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    from streams.credentials import broker_credentials

    env = {"IOC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "IOC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
           "IOC_KAFKA_SASL_USERNAME": "ioc-worker", "IOC_KAFKA_SASL_PASSWORD": "from-env"}
    settings = Settings.from_env(env)
    auth = credentials_to_aiokafka_auth(broker_credentials(settings))  # what Faust hands aiokafka
    assert (auth["security_protocol"], auth["sasl_mechanism"], auth["sasl_plain_username"],
            auth["sasl_plain_password"]) == ("SASL_SSL", "SCRAM-SHA-512", "ioc-worker", "from-env")
    assert isinstance(auth["ssl_context"], ssl.SSLContext) and auth["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert settings.kafka_client_config("k:9093") == {  # replay and the other librdkafka clients
        "bootstrap.servers": "k:9093", "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "ioc-worker", "sasl.password": "from-env"}
    plain = credentials_to_aiokafka_auth(broker_credentials(Settings.from_env({})))
    assert plain == {"security_protocol": "PLAINTEXT"}
    tls = credentials_to_aiokafka_auth(broker_credentials(Settings.from_env({"IOC_KAFKA_SECURITY_PROTOCOL": "SSL"})))
    assert tls["security_protocol"] == "SSL"
    with pytest.raises(ValueError, match="confluent"):  # that driver would silently connect without them
        broker_credentials(Settings.from_env(env | {"IOC_FAUST_TRANSPORT": "confluent"}))
    with pytest.raises(ValueError):
        broker_credentials(Settings.from_env({"IOC_KAFKA_SECURITY_PROTOCOL": "SASL_SSLL"}))


def test_the_worker_app_is_built_with_the_credentials(tmp_path: Path) -> None:
    """make_app passes them to Faust (checked in a subprocess: make_app opens a chDB store)."""
    code = (
        "from models.settings import Settings; from streams.app import make_app\n"
        "app, worker = make_app(Settings.from_env())\n"
        "c = app.conf.broker_credentials\n"
        "print(type(c).__name__, c.username, c.mechanism.value, c.protocol.value)\n"
    )
    env = {"IOC_DATA_DIR": str(tmp_path), "IOC_BROKER_URL": "kafka://127.0.0.1:1",
           "IOC_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'store.chdb'}", "IOC_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
           "IOC_KAFKA_SASL_MECHANISM": "PLAIN", "IOC_KAFKA_SASL_USERNAME": "ioc-worker",
           "IOC_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "kafka-password")}
    (tmp_path / "kafka-password").write_text("from-a-file\n")
    result = subprocess.run([sys.executable, "-c", code], env=os.environ | env, capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["SASLCredentials", "ioc-worker", "PLAIN", "SASL_PLAINTEXT"]


class TlsProxy:
    """TLS termination in front of the plain-HTTP stand-in: what a ClickHouse server on :8443 looks like."""

    def __init__(self, backend_port: int, cert: Path, key: Path):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.backend_port = backend_port
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()  # a client that does not trust us hangs up during the handshake
            return
        backend = socket.create_connection(("127.0.0.1", self.backend_port))
        threading.Thread(target=_pipe, args=(backend, tls), daemon=True).start()
        _pipe(tls, backend)

    def close(self) -> None:
        self.sock.close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def test_http_stand_in_clickhouse_tls_and_credentials_come_from_env(tmp_path: Path) -> None:
    """`IOC_CLICKHOUSE_CA_CERT` verifies the server, `IOC_CLICKHOUSE_USER` / `_PASSWORD_FILE` log in;
    without the CA the client refuses the server instead of sending the password to it."""
    cert, key = self_signed(tmp_path)
    (tmp_path / "ch-password").write_text("w'riter\n")
    with StandIn(tmp_path / "tls.chdb", auth=("ioc_writer", "w'riter")) as server:
        proxy = TlsProxy(server.port, cert, key)
        try:
            dsn = f"https://127.0.0.1:{proxy.port}/ioc"
            env = {"IOC_CLICKHOUSE_DSN": dsn, "IOC_CLICKHOUSE_USER": "ioc_writer",
                   "IOC_CLICKHOUSE_PASSWORD_FILE": str(tmp_path / "ch-password"), "IOC_CLICKHOUSE_CA_CERT": str(cert)}
            settings = Settings.from_env(env)
            migrate(settings.clickhouse_dsn, settings)
            with ClickHouseWriter(settings.clickhouse_dsn, settings) as writer:
                writer.add("deadletters", deadletter_rows([DeadLetter("t", 0, 1, "undecodable", "", b"x")], 0))
            client = connect(settings.clickhouse_dsn, settings)
            assert client.query("SELECT count() FROM deadletters").result_rows == [(1,)]
            client.close()
            untrusted = Settings.from_env({k: v for k, v in env.items() if k != "IOC_CLICKHOUSE_CA_CERT"})
            with pytest.raises(Exception, match=r"(?i)certificate|ssl"):
                connect(dsn, untrusted)
            insecure = Settings.from_env(env | {"IOC_CLICKHOUSE_VERIFY_TLS": "false", "IOC_CLICKHOUSE_CA_CERT": ""})
            with pytest.warns(Warning, match="Unverified HTTPS"):  # an explicit opt-out, for a lab
                lab = connect(dsn, insecure)
            lab.close()
        finally:
            proxy.close()



@pytest.fixture(scope="module", params=broker_kinds())
def broker_kind(request: pytest.FixtureRequest) -> str:
    """The session's broker kinds (IOC_TEST_BROKER) without conftest's shared `broker`: every test
    here starts its own (empty topics), so a shared one would only cost a broker start."""
    return str(request.param)


# ---------------------------------------------------------------- a worker on a SASL listener, end to end


@dataclass
class SaslKafka(LocalBroker):
    """Apache Kafka with a second listener that requires SASL/PLAIN (the plain one stays for the
    test's own admin calls). The password is made up per run: nothing to leak."""

    sasl_port: int = 0
    password: str = ""

    @property
    def sasl_url(self) -> str:
        return f"kafka://127.0.0.1:{self.sasl_port}"

    def _kafka_command(self) -> list[str]:
        command = super()._kafka_command()  # writes server.properties for the plain listener
        props = self.workdir / "server.properties"
        lines = []
        for line in props.read_text().splitlines():
            key = line.partition("=")[0]
            if key in ("listeners", "advertised.listeners"):
                line = f"{line},SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}"
            elif key == "listener.security.protocol.map":
                line = f"{line},SASL_PLAINTEXT:SASL_PLAINTEXT"
            lines.append(line)
        lines += ["sasl.enabled.mechanisms=PLAIN", "listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN",
                  "listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain."
                  f'PlainLoginModule required user_ioc-worker="{self.password}";']
        props.write_text("\n".join(lines) + "\n")
        return command


@pytest.mark.slow
@pytest.mark.broker
def test_a_worker_authenticates_to_kafka_with_sasl_from_its_environment(broker_kind: str, tmp_path: Path) -> None:
    if broker_kind != "kafka":
        pytest.skip("SASL listeners are configured on Apache Kafka")
    password = uuid.uuid4().hex
    kafka = SaslKafka("kafka", tmp_path / "broker", sasl_port=free_port(), password=password)
    kafka.start()
    (tmp_path / "kafka-password").write_text(password + "\n")
    env = {"IOC_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "IOC_KAFKA_SASL_MECHANISM": "PLAIN",
           "IOC_KAFKA_SASL_USERNAME": "ioc-worker", "IOC_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "kafka-password")}
    dsn = f"chdb://{tmp_path / 'store.chdb'}"
    worker = WorkerProcess(tmp_path / "w", kafka.sasl_url, dsn, f"sasl-{uuid.uuid4().hex[:6]}", env).start()
    try:
        for wrong in ({}, {"IOC_KAFKA_SASL_PASSWORD_FILE": "", "IOC_KAFKA_SASL_PASSWORD": password[::-1]}):
            settings = Settings.from_env(env | wrong)  # the listener refuses clients without the password
            admin = AdminClient(settings.kafka_client_config(bootstrap_servers(kafka.sasl_url)) | {
                "socket.timeout.ms": 5000})
            if wrong:
                with pytest.raises(Exception, match=r"(?i)auth|sasl|transport|timed out"):
                    admin.list_topics(timeout=8)
            else:
                assert SERVICE_CENTER.topic in admin.list_topics(timeout=20).topics
        worker.wait_ready()
        records = injected_records(SERVICE_CENTER, parse_time("2025-07-14T08:00:00Z"))
        producer = make_producer(kafka.sasl_url, Settings.from_env(env))  # replay's producer, same settings
        for record in records:
            producer.produce(SERVICE_CENTER.topic, key=record["center_id"].encode(), value=orjson.dumps(record))
        assert producer.flush(60) == 0
        wait_all_done([worker], len(records), timeout_s=120)
    finally:
        worker.stop()
        kafka.stop()
    final, distinct, _ = raw_counts(dsn, SERVICE_CENTER.name)
    assert final == distinct == len(records)
