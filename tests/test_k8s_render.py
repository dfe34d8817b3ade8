"""Every overlay and component, rendered with `kubectl kustomize` and checked as a cluster would.

The base, each overlay, and the base with each component alone are rendered. Every object is
validated in strict mode against the Kubernetes schemas of the newest version kubernetes-validate
ships; CloudNativePG Clusters, which have no built-in schema, against k8s/schemas/. Then every
pod of every render (Podium's, and NATS, Redis, Sentinel, HAProxy and Postgres) must follow the
same rules, and the production overlay must hold what the components promise.
"""

import functools
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from gateway.config import GatewaySettings
from infra.shards import ACTION_PARTITIONS

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
KUBERNETES_VERSION = latest_version()
CNPG_SCHEMA = K8S / "schemas" / "cluster-postgresql.cnpg.io-v1.json"
# A component that patches what another brings renders together with that one.
NEEDS = {"timescaledb": ["postgres"]}
OVERLAYS = sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml"))
COMPONENTS = sorted(p.parent.name for p in (K8S / "components").glob("*/kustomization.yaml"))
RENDERS = ["base"] + [f"overlays/{o}" for o in OVERLAYS] + [f"components/{c}" for c in COMPONENTS]
PRODUCTION = "overlays/production"
PODIUM = ["gateway", "auth", "game", "ranking"]
POSTGRES_CLIENTS = ["auth", "game", "ranking", "migrate"]
LONG_RUNNING = ("Deployment", "StatefulSet")
VAR_REF = re.compile(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
USERINFO = re.compile(r"://([^/@\s]*)@")


def _kustomize(path: Path) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "kubectl is not on PATH: the k8s tests render every overlay with `kubectl kustomize`"
            " (the CI machine has /usr/bin/kubectl); install kubectl to run them",
            pytrace=False,
        )
    result = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return result.stdout


@functools.cache
def render(name: str) -> tuple[dict, ...]:
    """The objects `kubectl kustomize` makes of a render name (read-only: cached)."""
    if name.startswith("components/"):
        # A component renders only inside a kustomization: the base plus it (and what it needs),
        # built in a scratch directory that reaches k8s/ through a symlink.
        component = name.removeprefix("components/")
        parts = [f"../k8s/components/{c}" for c in [*NEEDS.get(component, []), component]]
        with tempfile.TemporaryDirectory() as scratch:
            (Path(scratch) / "k8s").symlink_to(K8S)
            combo = Path(scratch) / "combo"
            combo.mkdir()
            (combo / "kustomization.yaml").write_text(
                yaml.safe_dump({"resources": ["../k8s/base"], "components": parts})
            )
            text = _kustomize(combo)
    else:
        text = _kustomize(K8S / name)
    return tuple(doc for doc in yaml.safe_load_all(text) if doc)


def objects(name: str, kind: str) -> list[dict]:
    return [o for o in render(name) if o["kind"] == kind]


def find(name: str, kind: str, object_name: str) -> dict:
    found = [o for o in objects(name, kind) if o["metadata"]["name"] == object_name]
    assert len(found) == 1, f"{name}: expected one {kind} {object_name}, found {len(found)}"
    return found[0]


def workloads(name: str, kinds=("Deployment", "StatefulSet", "Job")) -> list[dict]:
    return [o for o in render(name) if o["kind"] in kinds]


def label(workload: dict) -> str:
    return f"{workload['kind']}/{workload['metadata']['name']}"


def pod(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def containers(workload: dict) -> list[dict]:
    return pod(workload)["containers"] + pod(workload).get("initContainers", [])


def labels_of(workload: dict) -> dict:
    return workload["spec"]["template"]["metadata"]["labels"]


def env(workload: dict) -> dict[str, dict]:
    """The first container's env entries by name."""
    return {var["name"]: var for var in pod(workload)["containers"][0].get("env", [])}


def workloads_by_name(name: str) -> dict[str, dict]:
    return {w["metadata"]["name"]: w for w in workloads(name)}


def selects(selector: dict, labels: dict) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) selects these labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        matched = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


@functools.cache
def cnpg_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(CNPG_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("name", RENDERS)
def test_every_object_validates_strictly(name):
    problems = []

    for obj in render(name):
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"].startswith("postgresql.cnpg.io/"):
            problems += [f"{where}: {e.message}" for e in cnpg_validator().iter_errors(obj)]
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            problems.append(f"{where}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problems.append(f"{where}: {error.message}")

    assert render(name)
    assert not problems, f"against Kubernetes {KUBERNETES_VERSION}:\n" + "\n".join(problems)


def test_the_cluster_schema_refuses_what_the_operator_would_ignore():
    cluster = find(PRODUCTION, "Cluster", "podium-shard-0")
    typo = json.loads(json.dumps(cluster))
    typo["spec"]["postgresql"]["synchronous"]["numbr"] = 1

    errors = [e.message for e in cnpg_validator().iter_errors(typo)]

    assert not list(cnpg_validator().iter_errors(cluster))
    assert any("numbr" in message for message in errors)


def test_production_turns_every_component_on():
    kustomization = yaml.safe_load((K8S / PRODUCTION / "kustomization.yaml").read_text())

    enabled = sorted(Path(path).name for path in kustomization["components"])

    assert enabled == COMPONENTS


@pytest.mark.parametrize("name", RENDERS)
def test_pods_run_as_non_root_users_under_runtime_default_seccomp(name):
    problems = []

    for workload in workloads(name):
        own = pod(workload).get("securityContext", {})
        for spec in containers(workload):
            security = spec.get("securityContext", {})
            where = f"{label(workload)} {spec['name']}"
            user = security.get("runAsUser", own.get("runAsUser"))
            seccomp = security.get("seccompProfile", own.get("seccompProfile"))
            if security.get("runAsNonRoot", own.get("runAsNonRoot")) is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if not isinstance(user, int) or user <= 0:
                problems.append(f"{where}: runAsUser {user!r} is not a non-root uid")
            if seccomp != {"type": "RuntimeDefault"}:
                problems.append(f"{where}: seccompProfile {seccomp!r}")

    assert workloads(name)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", RENDERS)
def test_containers_cannot_escalate_or_write_their_root(name):
    problems = []

    for workload in workloads(name):
        for spec in containers(workload):
            security = spec.get("securityContext", {})
            where = f"{label(workload)} {spec['name']}"
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: privilege escalation allowed")
            if security.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root file system writable")
            if security.get("privileged", False) is not False:
                problems.append(f"{where}: privileged")
            capabilities = security.get("capabilities", {})
            if capabilities.get("drop") != ["ALL"] or capabilities.get("add"):
                problems.append(f"{where}: capabilities {capabilities!r}")

    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", RENDERS)
def test_containers_have_cpu_and_memory_requests_and_limits(name):
    problems = [
        f"{label(workload)} {spec['name']}: {bound}"
        for workload in workloads(name)
        for spec in containers(workload)
        for bound in ("requests", "limits")
        if not {"cpu", "memory"} <= set(spec.get("resources", {}).get(bound, {}))
    ]

    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", RENDERS)
def test_long_running_containers_have_readiness_and_liveness_probes(name):
    problems = [
        f"{label(workload)} {spec['name']}: no {probe}"
        for workload in workloads(name, LONG_RUNNING)
        for spec in pod(workload)["containers"]
        for probe in ("readinessProbe", "livenessProbe")
        if probe not in spec
    ]

    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", RENDERS)
def test_long_running_pods_spread_across_zones(name):
    problems = []

    for workload in workloads(name, LONG_RUNNING):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        zonal = [
            constraint
            for constraint in pod(workload).get("topologySpreadConstraints", [])
            if constraint["topologyKey"] == "topology.kubernetes.io/zone"
            and selects(constraint["labelSelector"], labels)
        ]
        if not zonal:
            problems.append(f"{label(workload)}: no zone spread over its own pods")

    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", RENDERS)
def test_pods_get_a_grace_period_and_no_api_token(name):
    problems = []

    for workload in workloads(name):
        spec = pod(workload)
        if spec.get("terminationGracePeriodSeconds", 0) < 30:
            problems.append(f"{label(workload)}: grace period under 30 s")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{label(workload)}: mounts a Kubernetes API token")

    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", [n for n in RENDERS if not n.startswith("components/")])
def test_gateway_grace_period_covers_its_drain(name):
    gateway = find(name, "Deployment", "gateway")
    override = env(gateway).get("PODIUM_DRAIN_GRACE_SECONDS", {}).get("value")
    drain = float(override or GatewaySettings.model_fields["drain_grace_seconds"].default)

    grace = pod(gateway)["terminationGracePeriodSeconds"]

    # After the drain the gateway still sends pending results and closes every socket.
    assert grace >= drain + 10


@pytest.mark.parametrize("name", RENDERS)
def test_only_volumes_are_writable(name):
    problems = []

    for workload in workloads(name):
        volumes = {v["name"]: v for v in pod(workload).get("volumes", [])}
        claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
        for volume in volumes.values():
            if "hostPath" in volume:
                problems.append(f"{label(workload)}: hostPath volume {volume['name']}")
        for spec in containers(workload):
            for mount in spec.get("volumeMounts", []):
                source = volumes.get(mount["name"], {})
                writable = not mount.get("readOnly", False)
                if writable and mount["name"] not in claims and "emptyDir" not in source:
                    problems.append(f"{label(workload)}: {mount['mountPath']} is writable")

    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", RENDERS)
def test_images_are_pinned_to_a_version(name):
    images = [spec["image"] for w in workloads(name) for spec in containers(w)]
    images += [c["spec"]["imageName"] for c in objects(name, "Cluster")]

    unpinned = [i for i in images if ":" not in i.rsplit("/", 1)[-1] or i.endswith(":latest")]

    assert images
    assert not unpinned


@pytest.mark.parametrize("name", RENDERS)
def test_env_references_name_variables_defined_before_them(name):
    config = {k for m in objects(name, "ConfigMap") for k in m.get("data", {})}
    problems = []

    for workload in workloads(name):
        for spec in containers(workload):
            # Kubernetes expands $(VAR) only from variables defined earlier in the container.
            defined = set(config) if spec.get("envFrom") else set()
            for var in spec.get("env", []):
                for ref in VAR_REF.findall(var.get("value", "")):
                    if ref not in defined:
                        problems.append(f"{label(workload)}: {var['name']} uses $({ref})")
                if var["name"] in defined - config:
                    problems.append(f"{label(workload)}: {var['name']} is set twice")
                defined.add(var["name"])

    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", RENDERS)
def test_no_secret_objects_and_no_credentials_in_values(name):
    values = [v for m in objects(name, "ConfigMap") for v in m.get("data", {}).values()]
    values += [
        var.get("value", "")
        for workload in workloads(name)
        for spec in containers(workload)
        for var in spec.get("env", [])
    ]

    # A password inside a URL may only be a reference to a variable from a Secret.
    leaks = [
        value
        for value in values
        for userinfo in USERINFO.findall(value)
        if ":" in userinfo and not VAR_REF.fullmatch(userinfo.split(":", 1)[1])
    ]

    assert not objects(name, "Secret"), "Secrets are made by hand, never kept in the repo"
    assert not leaks


def documented_secrets() -> set[str]:
    readme = (K8S / "README.md").read_text()
    return set(re.findall(r"create secret generic ([a-z0-9-]+)", readme))


@pytest.mark.parametrize("name", RENDERS)
def test_every_secret_referenced_is_documented_or_made_by_cloudnative_pg(name):
    made = {f"{c['metadata']['name']}-app" for c in objects(name, "Cluster")}
    referenced = set()

    for workload in workloads(name):
        for spec in containers(workload):
            for var in spec.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add(ref["name"])
        for volume in pod(workload).get("volumes", []):
            if "secret" in volume:
                referenced.add(volume["secret"]["secretName"])

    assert referenced
    assert referenced <= made | documented_secrets()


def test_dev_runs_one_of_everything_without_operators():
    name = "overlays/dev"

    counts = {label(w): w["spec"].get("replicas", 1) for w in workloads(name, LONG_RUNNING)}

    assert set(counts) >= {"StatefulSet/nats", "Deployment/redis", "StatefulSet/postgres"}
    assert set(counts.values()) == {1}
    for kind in ("Cluster", "HorizontalPodAutoscaler", "NetworkPolicy"):
        assert not objects(name, kind), kind


@pytest.mark.parametrize("name", ["overlays/dev", PRODUCTION])
def test_jetstream_syncs_every_write_to_a_volume(name):
    conf = find(name, "ConfigMap", "nats-config")["data"]["nats.conf"]
    nats = find(name, "StatefulSet", "nats")
    claims = {c["metadata"]["name"] for c in nats["spec"]["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in pod(nats)["containers"][0]["volumeMounts"]}

    store = re.search(r"store_dir:\s*(\S+)", conf).group(1)

    assert re.search(r"^\s*sync_interval:\s*always\s*$", conf, re.M)
    assert any(store.startswith(path) and mounts[path] in claims for path in mounts)


def test_nats_is_a_three_server_cluster_with_a_route_to_each():
    conf = find(PRODUCTION, "ConfigMap", "nats-config")["data"]["nats.conf"]
    nats = find(PRODUCTION, "StatefulSet", "nats")
    headless = find(PRODUCTION, "Service", nats["spec"]["serviceName"])
    replicas = nats["spec"]["replicas"]

    routes = re.findall(r"nats://([a-z0-9-]+)\.([a-z0-9-]+):6222", conf)
    lame_duck = [int(s) for s in re.findall(r"lame_duck_\w+:\s*(\d+)s", conf)]

    assert replicas == 3
    assert routes == [(f"nats-{i}", headless["metadata"]["name"]) for i in range(replicas)]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert pod(nats)["terminationGracePeriodSeconds"] > sum(lame_duck)


def test_podium_keeps_its_streams_on_every_nats_server():
    config = find(PRODUCTION, "ConfigMap", "podium-config")["data"]
    nats = find(PRODUCTION, "StatefulSet", "nats")
    dev = find("overlays/dev", "ConfigMap", "podium-config")["data"]

    assert int(config["PODIUM_STREAM_REPLICAS"]) == nats["spec"]["replicas"]
    assert "PODIUM_STREAM_REPLICAS" not in dev


def test_redis_has_a_replica_three_sentinels_and_a_proxy_podium_uses():
    nodes = find(PRODUCTION, "StatefulSet", "redis-node")
    sentinels = find(PRODUCTION, "StatefulSet", "redis-sentinel")
    scripts = find(PRODUCTION, "ConfigMap", "redis-scripts")["data"]
    proxy = find(PRODUCTION, "Service", "redis")
    proxy_pods = find(PRODUCTION, "Deployment", "redis-proxy")

    servers = re.findall(r"server (redis-node-\d+) \"\1\.redis-node\.", scripts["haproxy.cfg"])
    sentinel_loop = "for i in " + " ".join(str(i) for i in range(sentinels["spec"]["replicas"]))

    assert nodes["spec"]["replicas"] == 2
    assert sentinels["spec"]["replicas"] == 3
    assert "sentinel monitor podium $master 6379 2" in scripts["start-sentinel.sh"]
    assert sentinel_loop in scripts["start-redis.sh"]
    assert sentinel_loop in scripts["start-sentinel.sh"]
    assert servers == [f"redis-node-{i}" for i in range(nodes["spec"]["replicas"])]
    assert selects({"matchLabels": proxy["spec"]["selector"]}, labels_of(proxy_pods))
    for name in ("auth", "game", "ranking"):
        url = env(find(PRODUCTION, "Deployment", name))["PODIUM_REDIS_URL"]["value"]
        assert url == "redis://:$(REDIS_PASSWORD)@redis:6379/0"


def test_every_shard_is_a_cloudnative_pg_cluster_with_a_synchronous_standby():
    clusters = [c["metadata"]["name"] for c in objects(PRODUCTION, "Cluster")]

    for cluster in objects(PRODUCTION, "Cluster"):
        synchronous = cluster["spec"]["postgresql"]["synchronous"]
        assert cluster["spec"]["instances"] >= 2
        assert synchronous["number"] >= 1 and synchronous["dataDurability"] == "required"
        assert cluster["spec"]["inheritedMetadata"]["labels"]["app"] == "postgres"

    assert clusters == [f"podium-shard-{i}" for i in range(len(clusters))]
    assert ACTION_PARTITIONS % len(clusters) == 0
    for name in POSTGRES_CLIENTS:
        variables = env(workloads_by_name(PRODUCTION)[name])
        shards = VAR_REF.findall(variables["PODIUM_POSTGRES_SHARDS"]["value"])
        secrets = [variables[ref]["valueFrom"]["secretKeyRef"] for ref in shards]
        assert secrets == [{"name": f"{c}-app", "key": "uri"} for c in clusters], name


def test_timescaledb_is_preloaded_and_created_in_every_shard():
    for cluster in objects(PRODUCTION, "Cluster"):
        spec = cluster["spec"]

        assert "timescaledb" in spec["postgresql"]["shared_preload_libraries"]
        assert "timescaledb" in spec["imageName"]
        assert any(
            "CREATE EXTENSION" in sql and "timescaledb" in sql
            for sql in spec["bootstrap"]["initdb"]["postInitApplicationSQL"]
        )


def test_podium_deployments_are_autoscaled_and_leave_the_count_to_the_autoscaler():
    autoscalers = {
        h["spec"]["scaleTargetRef"]["name"]: h
        for h in objects(PRODUCTION, "HorizontalPodAutoscaler")
    }

    for name in PODIUM:
        deployment = find(PRODUCTION, "Deployment", name)
        assert "replicas" not in deployment["spec"], name
        assert autoscalers[name]["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert autoscalers[name]["spec"]["minReplicas"] >= 2, name
    assert sorted(autoscalers) == sorted(PODIUM)
    assert autoscalers["game"]["spec"]["maxReplicas"] <= ACTION_PARTITIONS


def test_every_long_running_workload_has_one_disruption_budget():
    budgets = objects(PRODUCTION, "PodDisruptionBudget")
    problems = []

    for workload in workloads(PRODUCTION, LONG_RUNNING):
        matching = [b for b in budgets if selects(b["spec"]["selector"], labels_of(workload))]
        if len(matching) != 1:
            problems.append(f"{label(workload)}: {len(matching)} budgets")
        elif matching[0]["spec"].get("maxUnavailable") != 1:
            problems.append(f"{label(workload)}: may lose more than one pod at once")

    assert not problems, "\n".join(problems)


def test_base_services_publish_metrics_where_prometheus_is_told_to_look():
    for name in PODIUM:
        deployment = find("base", "Deployment", name)
        spec = pod(deployment)["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
        hint = deployment["spec"]["template"]["metadata"]["annotations"]
        service_ports = {
            p["name"]: p["port"] for p in find("base", "Service", name)["spec"]["ports"]
        }

        metrics = ports["http"] if name == "gateway" else ports["metrics"]

        assert hint["prometheus.io/scrape"] == "true"
        assert int(hint["prometheus.io/port"]) == metrics
        assert hint["prometheus.io/path"] == "/metrics"
        if name != "gateway":
            assert env(deployment)["PODIUM_METRICS_PORT"]["value"] == str(metrics)
            assert service_ports["metrics"] == metrics


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split into stages."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    stages: list[list[str]] = []
    for line in lines:
        if line.startswith("FROM "):
            stages.append([])
        if stages and line and not line.startswith("#"):
            stages[-1].append(line)
    return stages


def test_image_runs_as_the_pods_uid_on_slim_python_without_build_tools():
    final = dockerfile_stages()[-1]
    text = (ROOT / "Dockerfile").read_text()
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = [line for line in ignore if line and not line.startswith("#")]
    uids = {pod(w)["securityContext"]["runAsUser"] for w in workloads("base")}

    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.M)
    assert final[0] == "FROM ${PYTHON_IMAGE}"
    assert [line for line in final if line.startswith("USER ")] == ["USER 1000:1000"]
    assert uids == {1000}
    assert not [line for line in final if re.search(r"apt-get install|pip install", line)]
    assert "grpc_tools.protoc" in " ".join(dockerfile_stages()[0])
    # The build context holds only what the image needs (never .podium's dev signing key).
    assert ignored[0] == "*" and "!.podium/" not in ignored
    for workload in workloads("base"):
        assert {spec["image"] for spec in containers(workload)} == {"podium:0.1.0"}
