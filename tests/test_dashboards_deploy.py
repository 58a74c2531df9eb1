"""Deploying the dashboards: `ioc dashboards export` (JSON + provisioning), `ioc dashboards push`
against a local HTTP stand-in of Grafana's API (no Grafana can be installed here; the tests that
use it say `grafana_stand_in`), and docker-compose.yml (parsed; no Docker engine here either)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from grafana_stand_in import GrafanaState, grafana_stand_in
from yaml_subset import load

from dashboards import catalog
from dashboards.datasource import DATASOURCE_UID, PROMETHEUS_UID, ClickHouseEndpoint, api_datasource
from dashboards.export import DATASOURCE_FILE, PROVIDER_FILE, ExportOptions, export
from dashboards.push import connect, push
from ioc.cli import main
from models.settings import Settings

REPO = Path(__file__).resolve().parent.parent
TOKEN = "stand-in-token"  # a test credential for the stand-in, not a real secret
READER_PASSWORD = "reader-secret-for-tests"
ENDPOINT = ClickHouseEndpoint("clickhouse", 8123, "ioc")
ALL_UIDS = {spec.uid for spec in catalog.DASHBOARDS}


@pytest.fixture
def settings() -> Settings:
    return Settings(grafana_token=TOKEN, clickhouse_reader_password=READER_PASSWORD)


@pytest.fixture
def grafana() -> Iterator[tuple[GrafanaState, str]]:
    state = GrafanaState(token=TOKEN, basic=("admin", "stand-in-admin"))
    with grafana_stand_in(state) as url:
        yield state, url


# ---------------------------------------------------------------- export


def test_export_writes_models_and_provisioning_without_secrets(tmp_path: Path) -> None:
    written = export(tmp_path, ExportOptions(endpoint=ClickHouseEndpoint("ch.internal", 8443, "ioc_prod", True)))
    assert {p.relative_to(tmp_path).as_posix() for p in written} >= {
        "dashboards/ioc-wall.json", "provisioning/datasources/ioc-clickhouse.yaml",
        "provisioning/dashboards/ioc.yaml", "playlist.json"}
    models = [json.loads(p.read_text()) for p in (tmp_path / "dashboards").glob("*.json")]
    assert {m["uid"] for m in models} == ALL_UIDS

    (source,) = load((tmp_path / DATASOURCE_FILE).read_text())["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "grafana-clickhouse-datasource"
    assert (source["jsonData"]["host"], source["jsonData"]["port"], source["jsonData"]["secure"]) == \
        ("ch.internal", 8443, True)
    assert source["jsonData"]["defaultDatabase"] == "ioc_prod"
    # Credentials only as Grafana environment references (interpolated when Grafana loads the file).
    assert source["jsonData"]["username"] == "${IOC_CLICKHOUSE_READER_USER}"
    assert source["secureJsonData"] == {"password": "${IOC_CLICKHOUSE_READER_PASSWORD}"}

    (provider,) = load((tmp_path / PROVIDER_FILE).read_text())["providers"]
    assert provider["type"] == "file" and provider["folderUid"] == catalog.FOLDER_UID
    assert provider["options"]["path"] == "/etc/grafana/dashboards/ioc"


def test_no_literal_secret_in_the_repository_deployment_files() -> None:
    """Every credential in compose and provisioning is a ${VARIABLE}; .env.example has placeholders."""
    credential = re.compile(r"(PASSWORD|TOKEN|SECRET)\w*\s*[:=]\s*[\"']?([^\"'\s#]+)", re.IGNORECASE)
    files = [REPO / "docker-compose.yml", *sorted((REPO / "deploy/grafana/provisioning").rglob("*.yaml"))]
    for path in files:
        for key, value in credential.findall(path.read_text()):
            assert value.startswith("${"), f"{path.name}: {key} has a literal value"
    for line in (REPO / ".env.example").read_text().splitlines():
        if re.match(r"\w*(PASSWORD|TOKEN)\w*=", line):
            assert "change-me" in line, line


# ---------------------------------------------------------------- docker-compose.yml


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load((REPO / "docker-compose.yml").read_text())


def test_compose_parses_and_every_mounted_path_exists(compose: dict[str, Any]) -> None:
    named = set(compose["volumes"])
    mounts = [(name, v) for name, s in compose["services"].items() for v in s.get("volumes", [])]
    assert mounts
    for service, volume in mounts:
        source = volume.split(":")[0]
        if source.startswith((".", "/")):
            assert (REPO / source).resolve().exists(), f"{service}: {source} does not exist in the repository"
        else:
            assert source in named, f"{service}: named volume {source} is not declared"
    for service in compose["services"].values():
        if "build" in service:
            assert (REPO / service["build"] / "Dockerfile").exists()
        else:
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", service["image"]), service["image"]  # pinned tag


def test_compose_stack_services(compose: dict[str, Any]) -> None:
    s = compose["services"]
    assert s["kafka"]["image"].startswith("apache/kafka:3.9.")
    assert s["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert s["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert "grafana-clickhouse-datasource" in s["grafana"]["environment"]["GF_INSTALL_PLUGINS"]
    assert s["migrate"]["command"] == ["ioc", "db", "migrate"]
    # The worker scales: no fixed container name or host port, and it waits for schema and topics.
    assert "container_name" not in s["worker"] and "ports" not in s["worker"]
    assert s["worker"]["command"][:2] == ["ioc", "worker"]
    assert s["worker"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert s["worker"]["environment"]["IOC_CLICKHOUSE_DSN"].startswith("http://clickhouse:8123/")
    assert "ioc replay" in (REPO / s["simulator"]["command"][1]).read_text()
    for name in ("kafka", "clickhouse", "grafana", "worker"):
        assert s[name]["healthcheck"]["test"], name
    for name, volume in (("kafka", "kafka-data"), ("clickhouse", "clickhouse-data"), ("grafana", "grafana-data")):
        assert any(v.startswith(f"{volume}:") for v in s[name]["volumes"]), name
    # Grafana mounts exactly what `ioc dashboards export --out deploy/grafana` writes, where the
    # provider looks for it.
    provider = load((REPO / "deploy/grafana" / PROVIDER_FILE).read_text())["providers"][0]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in s["grafana"]["volumes"]
    # Secrets are interpolated from .env, which the example documents.
    env_example = (REPO / ".env.example").read_text()
    for variable in set(re.findall(r"\$\{(\w+)", json.dumps(compose))):
        assert re.search(rf"^#?\s*{variable}[=:]", env_example, re.MULTILINE), f"{variable} missing in .env.example"


def test_app_image_copies_what_exists_and_every_package_it_installs() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    sources = [src for line in dockerfile.splitlines() if line.startswith("COPY ")
               for src in line.split()[1:-1]]
    assert all((REPO / src).exists() for src in sources), sources
    for package in ("ioc", "models", "simulators", "streams", "sinks", "dashboards", "deploy"):
        assert package in sources


def test_topics_created_by_compose_are_the_models_topics() -> None:
    from models.events import ALL_TOPICS

    script = (REPO / "deploy/create_topics.py").read_text()
    assert "ALL_TOPICS" in script and len(ALL_TOPICS) == 6  # 3 families, signals, alerts, dead letters


# ---------------------------------------------------------------- push


def test_push_grafana_stand_in_creates_everything_then_a_second_push_changes_nothing(
        grafana: tuple[GrafanaState, str], settings: Settings) -> None:
    state, url = grafana
    first = push(connect(url, settings), ENDPOINT, settings)
    assert set(first.created) == {f"folder {catalog.FOLDER_UID}", f"datasource {DATASOURCE_UID}",
                                  f"playlist {catalog.PLAYLIST_UID}", *(f"dashboard {u}" for u in ALL_UIDS)}
    assert state.secrets[DATASOURCE_UID] == {"password": READER_PASSWORD}
    assert state.datasources[DATASOURCE_UID]["jsonData"]["username"] == "ioc_reader"
    assert all(d["meta"]["folderUid"] == catalog.FOLDER_UID for d in state.dashboards.values())
    playlist = state.playlists[catalog.PLAYLIST_UID]
    assert [i["value"] for i in playlist["items"]] == [i["value"] for i in catalog.playlist_model()["items"]]
    versions = {uid: d["dashboard"]["version"] for uid, d in state.dashboards.items()}

    writes_before = len(state.writes)
    second = push(connect(url, settings), ENDPOINT, settings)
    assert not second.changed and not second.skipped
    assert len(second.unchanged) == len(first.created)
    assert len(state.writes) == writes_before, state.writes[writes_before:]
    assert {uid: d["dashboard"]["version"] for uid, d in state.dashboards.items()} == versions


def test_push_grafana_stand_in_adds_the_prometheus_source_when_given(
        grafana: tuple[GrafanaState, str], settings: Settings) -> None:
    state, url = grafana
    push(connect(url, settings), ENDPOINT, settings)
    assert PROMETHEUS_UID not in state.datasources  # not asked for: left alone
    first = push(connect(url, settings), ENDPOINT, settings, prometheus_url="http://prom.internal:9090")
    assert first.created == [f"datasource {PROMETHEUS_UID}"]
    assert state.datasources[PROMETHEUS_UID]["url"] == "http://prom.internal:9090"
    assert state.datasources[PROMETHEUS_UID]["type"] == "prometheus"
    assert push(connect(url, settings), ENDPOINT, settings, prometheus_url="http://prom.internal:9090").changed is False
    moved = push(connect(url, settings), ENDPOINT, settings, prometheus_url="http://prom.other:9090")
    assert moved.updated == [f"datasource {PROMETHEUS_UID}"]
    assert state.datasources[PROMETHEUS_UID]["url"] == "http://prom.other:9090"


def test_push_grafana_stand_in_repairs_drift_only(grafana: tuple[GrafanaState, str], settings: Settings) -> None:
    state, url = grafana
    push(connect(url, settings), ENDPOINT, settings)
    state.dashboards["ioc-network"]["dashboard"]["title"] = "edited in the UI"
    state.datasources[DATASOURCE_UID]["jsonData"]["host"] = "elsewhere"
    state.playlists[catalog.PLAYLIST_UID]["interval"] = "5m"
    state.folders[catalog.FOLDER_UID]["title"] = "renamed"
    writes_before = len(state.writes)

    report = push(connect(url, settings), ENDPOINT, settings)
    assert sorted(report.updated) == sorted([f"folder {catalog.FOLDER_UID}", f"datasource {DATASOURCE_UID}",
                                             "dashboard ioc-network", f"playlist {catalog.PLAYLIST_UID}"])
    assert state.folders[catalog.FOLDER_UID]["title"] == catalog.FOLDER_TITLE
    assert state.dashboards["ioc-network"]["dashboard"]["title"] == "Network health"
    assert state.dashboards["ioc-network"]["dashboard"]["version"] == 2
    assert len(state.writes) == writes_before + 4
    assert state.secrets[DATASOURCE_UID] == {"password": READER_PASSWORD}  # kept, not re-sent


def test_push_grafana_stand_in_leaves_file_provisioned_objects_alone(
        grafana: tuple[GrafanaState, str], settings: Settings) -> None:
    """The compose stack: provisioning made the folder, data source and dashboards; push adds the
    playlist (which file provisioning cannot) and touches nothing else."""
    state, url = grafana
    state.provision_folder(catalog.FOLDER_UID, catalog.FOLDER_TITLE)
    state.provision_datasource(api_datasource(ENDPOINT, settings, with_password=True))
    for model in catalog.dashboard_models().values():
        state.provision_dashboard(model, catalog.FOLDER_UID)

    report = push(connect(url, settings), ENDPOINT, Settings(grafana_token=TOKEN))  # no reader password needed
    assert report.created == [f"playlist {catalog.PLAYLIST_UID}"] and not report.updated
    assert len(report.skipped) == 1 + len(ALL_UIDS)
    assert state.writes == [("POST", "/api/playlists")]


def test_push_grafana_stand_in_with_basic_auth_and_wrong_credentials(grafana: tuple[GrafanaState, str]) -> None:
    from grafana_client.client import GrafanaUnauthorizedError

    _, url = grafana
    basic = Settings(grafana_user="admin", grafana_password="stand-in-admin", clickhouse_reader_password="x")
    assert push(connect(url, basic), ENDPOINT, basic).created
    wrong = Settings(grafana_token="not-the-token", clickhouse_reader_password="x")
    with pytest.raises(GrafanaUnauthorizedError):
        push(connect(url, wrong), ENDPOINT, wrong)
    with pytest.raises(ValueError, match="no Grafana credentials"):
        connect(url, Settings())


def test_cli_push_grafana_stand_in_reads_credentials_from_env(
        grafana: tuple[GrafanaState, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    state, url = grafana
    secret_file = tmp_path / "reader-password"
    secret_file.write_text(READER_PASSWORD + "\n")
    monkeypatch.setenv("IOC_GRAFANA_TOKEN", TOKEN)
    monkeypatch.setenv("IOC_CLICKHOUSE_READER_PASSWORD_FILE", str(secret_file))
    monkeypatch.setenv("IOC_CLICKHOUSE_DSN", "http://clickhouse.internal:8123/ioc")
    assert main(["dashboards", "push", "--grafana-url", url]) == 0
    assert "created" in capsys.readouterr().out
    assert state.datasources[DATASOURCE_UID]["jsonData"]["host"] == "clickhouse.internal"
    assert state.secrets[DATASOURCE_UID]["password"] == READER_PASSWORD
    assert main(["dashboards", "push", "--grafana-url", url]) == 0
    assert "created" not in capsys.readouterr().out

    assert main(["dashboards", "export", "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out/dashboards/ioc-wall.json").exists()
