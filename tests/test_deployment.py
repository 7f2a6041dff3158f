"""The Docker Compose file and Dockerfile agree with what the code expects. (No Docker engine runs here,
so they are checked as data: service names, commands the CLI accepts, environment variables, ports.)"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.cli import _parser
from bot.config import _ENV, _SECRET_ENV

ROOT = Path(__file__).parents[1]


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_commands() -> None:
    c = compose()
    services = c["services"]
    assert set(services) == {"postgres", "migrate", "discord", "slack"}
    parser = _parser()
    for name in ("migrate", "discord", "slack"):
        args = parser.parse_args(services[name]["command"])  # the CLI accepts exactly these commands
        assert args.cmd in ("db", "run")
    assert parser.parse_args(services["discord"]["command"]).platform == "discord"
    assert parser.parse_args(services["slack"]["command"]).platform == "slack"


def test_database_url_points_at_the_postgres_service() -> None:
    c = compose()
    pg = c["services"]["postgres"]["environment"]
    for name in ("migrate", "discord", "slack"):
        url = c["services"][name]["environment"]["DATABASE_URL"]
        m = re.fullmatch(r"postgresql\+asyncpg://(\w+):\$\{POSTGRES_PASSWORD\}@postgres:5432/(\w+)", url)
        assert m and m.group(1) == pg["POSTGRES_USER"] and m.group(2) == pg["POSTGRES_DB"], url
    assert "pgdata" in c["volumes"] and any("pgdata:" in v for v in c["services"]["postgres"]["volumes"])


def test_bots_restart_wait_for_the_database_and_check_health() -> None:
    c = compose()
    for name in ("discord", "slack"):
        s = c["services"][name]
        assert s["restart"] == "unless-stopped" and s["env_file"] == ".env"
        assert s["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert s["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        port = s["environment"]["HEALTH_PORT"]
        assert f"127.0.0.1:{port}/readyz" in " ".join(s["healthcheck"]["test"])
    assert "healthcheck" in c["services"]["postgres"]
    slack = c["services"]["slack"]
    assert f"{slack['environment']['SLACK_PORT']}:3000" in slack["ports"]


def test_env_example_names_only_variables_the_code_reads() -> None:
    names = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    known = set(_ENV) | set(_SECRET_ENV) | {"POSTGRES_PASSWORD", "SLACK_CLIENT_ID"}
    assert names <= known, names - known
    assert {"DISCORD_TOKEN", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "POSTGRES_PASSWORD"} <= names


def test_dockerfile_is_pinned_small_and_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms and all(re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+(?: AS \w+)?", f) for f in froms), froms
    assert re.search(r"^USER bot$", text, re.M) and "useradd" in text
    assert 'ENTRYPOINT ["interview-bot"]' in text and "HEALTHCHECK" in text
    assert ".env" in (ROOT / ".dockerignore").read_text().split()
