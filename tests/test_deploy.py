"""What can be tested of the deployment files without a Docker engine: the image's own commands, run here."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from tests.browser import StreamlitApp

ROOT = Path(__file__).resolve().parent.parent


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_shape():
    text = dockerfile()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert text.index("COPY requirements.txt") < text.index("pip install") < text.index("COPY --chown")
    assert re.search(r"^USER promptlab", text, re.M) and "/_stcore/health" in text


def test_healthcheck_and_cmd_work_against_the_app(app_env):
    cmd = re.search(r'^CMD \[(.*)\]', dockerfile(), re.M).group(1)
    args = [a.strip().strip('"') for a in cmd.split(",")]
    assert args[:3] == ["streamlit", "run", "app.py"]
    app = StreamlitApp(app_env)  # the same `streamlit run app.py` the image runs
    try:
        health = re.search(r"CMD (python -c .*)$", dockerfile(), re.M).group(1)
        health = health.replace("127.0.0.1:8501", f"127.0.0.1:{app.port}")
        assert subprocess.run([sys.executable, *shlex.split(health)[1:]], timeout=30).returncode == 0
    finally:
        app.stop()


def test_compose_scrapes_the_metrics_port():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    port = compose["services"]["app"]["environment"]["PROMPTLAB_METRICS_PORT"]
    assert prom["scrape_configs"][0]["static_configs"][0]["targets"] == [f"app:{port}"]


def test_compose_shares_one_postgres_log():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["app"]["environment"]["PROMPTLAB_DB_URL"].startswith("postgresql+psycopg://")
    assert compose["services"]["app"]["depends_on"]["db"]["condition"] == "service_healthy"
