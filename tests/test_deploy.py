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


# ----- issue 27 point 5: many replicas ------------------------------------------------------------------------------
K8S = ROOT / "deploy" / "kubernetes"


def manifests() -> dict[str, dict]:
    """Every manifest kustomization.yaml applies, by kind."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    out = {}
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            assert doc["apiVersion"] and doc["metadata"]["name"], name
            out[doc["kind"]] = doc
    return out


def test_kubernetes_manifests_fit_together():
    m = manifests()
    assert set(m) == {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                      "PersistentVolumeClaim"}
    deployment = m["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert m["Service"]["spec"]["selector"].items() <= labels.items()
    assert m["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert deployment["spec"]["replicas"] >= 2 and m["PodDisruptionBudget"]["spec"]["minAvailable"] >= 1
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    cmd_port = int(re.search(r"--server\.port=(\d+)", dockerfile()).group(1))
    assert ports["http"] == cmd_port
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/_stcore/health", "port": "http"}
    env = {e["name"]: e for e in container["env"]}
    for secret in ("OPENAI_API_KEY", "PROMPTLAB_DB_URL", "PROMPTLAB_SECRET_KEY"):  # from the secret, never inline
        assert "value" not in env[secret] and env[secret]["valueFrom"]["secretKeyRef"]["name"] == "promptlab"
    user = re.search(r"useradd .*--uid (\d+)", dockerfile()).group(1)
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(user)
    mounts = {v["mountPath"] for v in container["volumeMounts"]}
    assert env["PROMPTLAB_DATA_DIR"]["value"] in mounts
    assert m["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]  # shared by every replica
    hpa = m["HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu" and hpa["spec"]["minReplicas"] >= 2
    ingress = m["Ingress"]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"  # sticky sessions
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600  # WebSockets stay open
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == m["Service"]["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in m["Service"]["spec"]["ports"]}
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    assert set(secret["stringData"]) == {"OPENAI_API_KEY", "PROMPTLAB_DB_URL", "PROMPTLAB_SECRET_KEY"}


def test_compose_replicas_profile_is_two_apps_on_one_database_behind_a_sticky_proxy():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    replicas = [n for n, s in services.items() if "replicas" in s.get("profiles", []) and n.startswith("app")]
    assert len(replicas) == 2
    for name in replicas:
        assert services[name]["environment"] == services["app"]["environment"]  # one database, one secret key
        assert services[name]["volumes"] == services["app"]["volumes"]           # one data volume
    proxy = services["proxy"]
    assert "replicas" in proxy["profiles"] and set(proxy["depends_on"]) == set(replicas)
    (mount,) = proxy["volumes"]
    config = (ROOT / mount.split(":")[0].removeprefix("./")).read_text()
    servers = re.findall(r"^\s*server (\S+) (\S+):(\d+) check cookie (\S+)", config, re.M)
    assert sorted(s[1] for s in servers) == sorted(replicas) and {s[2] for s in servers} == {"8501"}
    assert re.search(r"^\s*cookie \S+ insert", config, re.M)          # sticky by cookie
    assert re.search(r"^\s*timeout tunnel 1h", config, re.M)          # WebSockets
    assert "option httpchk GET /_stcore/health" in config
