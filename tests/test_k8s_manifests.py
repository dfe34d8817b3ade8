"""The Kubernetes base: every pod hardened, probed and bounded, and every file in the build.

These read k8s/base as written, with no cluster and no kustomize, so they run wherever the
rest of the suite runs.
"""

import functools
import re
from pathlib import Path

import pytest
import yaml

BASE = Path(__file__).resolve().parent.parent / "k8s" / "base"
IMAGE = "podium:0.1.0"
# Each service and the name of its one port: gRPC services are probed natively, the gateway
# over HTTP.
PORT_NAMES = {"gateway": "http", "auth": "grpc", "game": "grpc", "ranking": "grpc"}
GRPC_SERVICES = [name for name, port in PORT_NAMES.items() if port == "grpc"]
POSTGRES_CLIENTS = ["auth", "game", "ranking"]
# user:password@ in a URL or DSN.
CREDENTIALS = re.compile(r"://[^/@\s]+:[^/@\s]*@")


@functools.cache
def load(path: Path) -> list[dict]:
    """Every non-empty YAML document in the file (read once; tests must not change them)."""
    with path.open() as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


def manifest_files() -> list[Path]:
    return sorted(path for path in BASE.glob("*.yaml") if path.name != "kustomization.yaml")


def objects() -> list[dict]:
    return [doc for path in manifest_files() for doc in load(path)]


def find(kind: str, name: str) -> dict:
    matches = [o for o in objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def pod_spec(name: str) -> dict:
    return find("Deployment", name)["spec"]["template"]["spec"]


def container(name: str) -> dict:
    containers = pod_spec(name)["containers"]
    assert len(containers) == 1
    return containers[0]


def env(name: str) -> dict[str, dict]:
    return {var["name"]: var for var in container(name).get("env", [])}


def port_number(name: str) -> int:
    ports = {port["name"]: port["containerPort"] for port in container(name)["ports"]}
    return ports[PORT_NAMES[name]]


def test_kustomization_lists_every_manifest_file():
    kustomization = load(BASE / "kustomization.yaml")[0]

    listed = sorted(kustomization["resources"])

    assert listed == [path.name for path in manifest_files()]
    assert not list(BASE.glob("*.yml")), "name manifests *.yaml so that the build sees them"


def test_every_document_is_a_named_object_and_none_is_a_secret():
    docs = objects()

    assert docs
    for doc in docs:
        assert doc["apiVersion"] and doc["metadata"]["name"]
        assert doc["kind"] != "Secret", "Secrets are created by hand, never kept in the repo"


def test_no_credentials_in_configmaps_or_env_values():
    values = [v for o in objects() if o["kind"] == "ConfigMap" for v in o["data"].values()]
    values += [var.get("value", "") for name in PORT_NAMES for var in env(name).values()]

    leaks = [value for value in values if CREDENTIALS.search(str(value))]

    assert not leaks


@pytest.mark.parametrize("name", PORT_NAMES)
def test_service_file_holds_its_deployment_service_and_account(name):
    docs = load(BASE / f"{name}.yaml")

    kinds = sorted((doc["kind"], doc["metadata"]["name"]) for doc in docs)

    assert kinds == [("Deployment", name), ("Service", name), ("ServiceAccount", name)]


@pytest.mark.parametrize("name", PORT_NAMES)
def test_pods_are_labelled_and_selected_by_app(name):
    deployment = find("Deployment", name)
    service = find("Service", name)

    assert deployment["spec"]["template"]["metadata"]["labels"]["app"] == name
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": name}
    assert service["spec"]["selector"] == {"app": name}


@pytest.mark.parametrize("name", PORT_NAMES)
def test_service_ports_are_named_and_lead_to_the_container(name):
    ports = find("Service", name)["spec"]["ports"]
    # gRPC services serve Prometheus metrics on a port of their own; the gateway on http.
    expected = [PORT_NAMES[name]] + (["metrics"] if name in GRPC_SERVICES else [])
    container_ports = {port["name"]: port["containerPort"] for port in container(name)["ports"]}

    assert [port["name"] for port in ports] == expected
    for port in ports:
        assert port["port"] == container_ports[port["name"]]
        assert port["targetPort"] in (port["name"], container_ports[port["name"]])


@pytest.mark.parametrize("name", PORT_NAMES)
def test_pod_runs_as_non_root_under_runtime_default_seccomp(name):
    pod = pod_spec(name)["securityContext"]
    own = container(name).get("securityContext", {})

    def effective(key):
        return own.get(key, pod.get(key))

    assert effective("runAsNonRoot") is True
    assert effective("runAsUser") == 1000
    assert pod["fsGroup"] == 1000
    assert effective("seccompProfile") == {"type": "RuntimeDefault"}


@pytest.mark.parametrize("name", PORT_NAMES)
def test_container_cannot_escalate_or_write_its_root(name):
    security = container(name)["securityContext"]

    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security.get("privileged", False) is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert not security["capabilities"].get("add")


@pytest.mark.parametrize("name", PORT_NAMES)
def test_pod_gets_no_api_token_and_its_own_account(name):
    pod = pod_spec(name)

    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == name
    assert find("ServiceAccount", name)["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", PORT_NAMES)
def test_pod_has_a_writable_tmp_and_a_30s_grace(name):
    pod = pod_spec(name)
    volumes = {volume["name"]: volume for volume in pod["volumes"]}

    tmp = [m for m in container(name)["volumeMounts"] if m["mountPath"] == "/tmp"]

    assert len(tmp) == 1
    assert "emptyDir" in volumes[tmp[0]["name"]]
    assert pod["terminationGracePeriodSeconds"] == 30


@pytest.mark.parametrize("name", PORT_NAMES)
def test_container_runs_the_service_from_the_one_image(name):
    spec = container(name)

    assert spec["image"] == IMAGE
    assert spec["command"] == ["python", "-m", name]


@pytest.mark.parametrize("name", PORT_NAMES)
def test_container_has_cpu_and_memory_requests_and_limits(name):
    resources = container(name)["resources"]

    for bound in ("requests", "limits"):
        assert set(resources[bound]) >= {"cpu", "memory"}, f"{name} {bound}"


@pytest.mark.parametrize("name", GRPC_SERVICES)
def test_grpc_service_is_probed_natively_on_its_port(name):
    spec = container(name)

    for probe in ("readinessProbe", "livenessProbe"):
        assert spec[probe]["grpc"]["port"] == port_number(name), probe


@pytest.mark.parametrize("name", GRPC_SERVICES)
def test_a_store_outage_makes_a_grpc_pod_unready_but_never_restarts_it(name):
    """Readiness asks the overall status, which a store outage turns NOT_SERVING; liveness
    asks "liveness", which only shutdown does."""
    spec = container(name)

    assert "service" not in spec["readinessProbe"]["grpc"]
    assert spec["livenessProbe"]["grpc"]["service"] == "liveness"


def test_gateway_is_ready_only_when_readyz_answers_and_has_a_liveness_probe():
    spec = container("gateway")

    ready = spec["readinessProbe"]["httpGet"]

    assert ready["path"] == "/readyz"
    assert ready["port"] in ("http", port_number("gateway"))
    assert spec["livenessProbe"]


@pytest.mark.parametrize("name", GRPC_SERVICES)
def test_grpc_service_listens_on_every_interface(name):
    listen = env(name)[f"PODIUM_{name.upper()}_LISTEN"]["value"]

    assert listen == f"0.0.0.0:{port_number(name)}"


@pytest.mark.parametrize("name", GRPC_SERVICES)
def test_grpc_service_serves_metrics_on_the_port_named_metrics(name):
    ports = {port["name"]: port["containerPort"] for port in container(name)["ports"]}

    assert env(name)["PODIUM_METRICS_PORT"]["value"] == str(ports["metrics"])
    assert ports["metrics"] != port_number(name)


def test_gateway_listens_on_every_interface_and_reaches_services_by_dns_name():
    variables = {key: var.get("value") for key, var in env("gateway").items()}

    assert variables["PODIUM_HTTP_HOST"] == "0.0.0.0"
    assert variables["PODIUM_HTTP_PORT"] == str(port_number("gateway"))
    for name in GRPC_SERVICES:
        service_port = find("Service", name)["spec"]["ports"][0]["port"]
        assert variables[f"PODIUM_{name.upper()}_TARGET"] == f"{name}:{service_port}"


@pytest.mark.parametrize("name", POSTGRES_CLIENTS)
def test_postgres_dsn_comes_from_the_secret(name):
    dsn = env(name)["PODIUM_POSTGRES_DSN"]

    assert "value" not in dsn
    assert dsn["valueFrom"]["secretKeyRef"] == {
        "name": "podium-secrets",
        "key": "PODIUM_POSTGRES_DSN",
    }


def test_migration_job_file_holds_the_job_and_its_account():
    docs = load(BASE / "migrate.yaml")
    job = find("Job", "migrate")
    spec = job["spec"]["template"]["spec"]

    kinds = sorted((doc["kind"], doc["metadata"]["name"]) for doc in docs)

    assert kinds == [("Job", "migrate"), ("ServiceAccount", "migrate")]
    assert spec["containers"][0]["command"] == ["python", "-m", "infra.migrate"]
    assert spec["containers"][0]["image"] == IMAGE
    assert spec["restartPolicy"] in ("Never", "OnFailure")


def test_auth_reads_its_signing_key_from_the_mounted_secret():
    key_dir = str(Path(env("auth")["PODIUM_JWT_PRIVATE_KEY_FILE"]["value"]).parent)
    volumes = {volume["name"]: volume for volume in pod_spec("auth")["volumes"]}

    mounts = [m for m in container("auth")["volumeMounts"] if m["mountPath"] == key_dir]

    assert len(mounts) == 1 and mounts[0]["readOnly"] is True
    assert volumes[mounts[0]["name"]]["secret"]["secretName"] == "podium-jwt"
