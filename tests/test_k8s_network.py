"""The production overlay's network policies allow exactly the paths Podium and its stores use.

A small evaluator applies the rendered NetworkPolicies as Kubernetes does: a pod that some
policy selects for a direction accepts, in that direction, only what one of their rules allows,
and a connection needs both the sender's egress and the receiver's ingress. It is asked about
every pair of pods in the namespace (each Deployment, StatefulSet and Job, plus one pod per
CloudNativePG cluster with the labels the operator gives it), every port the receiver
declares, and a few peers outside the namespace.
"""

from dataclasses import dataclass

from tests.test_k8s_render import PRODUCTION, labels_of, objects, selects, workloads

NAMESPACE = "podium"
# The ports of a CloudNativePG instance pod: Postgres, the instance manager, the exporter.
CNPG_PORTS = {"postgresql": 5432, "status": 8000, "metrics": 9187}
STORES = [("postgres", 5432), ("redis-proxy", 6379), ("nats", 4222)]
# Open to every source, inside the cluster or not: players arrive through a load balancer.
PUBLIC = {("gateway", 8080)}
EXPECTED = {
    ("gateway", "auth", 50051),
    ("gateway", "game", 50052),
    ("gateway", "ranking", 50053),
    ("gateway", "nats", 4222),
    *((app, store, port) for app in ("auth", "game", "ranking") for store, port in STORES),
    ("migrate", "postgres", 5432),
    ("nats", "nats", 6222),
    ("redis-proxy", "redis-node", 6379),
    ("redis-node", "redis-node", 6379),
    ("redis-node", "redis-sentinel", 26379),
    ("redis-sentinel", "redis-node", 6379),
    ("redis-sentinel", "redis-sentinel", 26379),
    ("postgres", "postgres", 5432),
    ("postgres", "postgres", 8000),
}


@dataclass
class Peer:
    """One end of a connection: a pod (in some namespace) or an address outside the cluster."""

    name: str
    labels: dict
    namespace: str | None
    ports: dict


INTERNET = Peer("internet", {}, None, {"https": 443})
PROMETHEUS = Peer("prometheus", {"app.kubernetes.io/name": "prometheus"}, "monitoring", {})
OPERATOR = Peer("operator", {"app.kubernetes.io/name": "cloudnative-pg"}, "cnpg-system", {})
KUBE_DNS = Peer("kube-dns", {"k8s-app": "kube-dns"}, "kube-system", {"dns": 53})


def pods() -> list[Peer]:
    found = []
    for workload in workloads(PRODUCTION):
        labels = labels_of(workload)
        ports = {
            port.get("name", str(port["containerPort"])): port["containerPort"]
            for spec in workload["spec"]["template"]["spec"]["containers"]
            for port in spec.get("ports", [])
        }
        found.append(Peer(labels["app"], labels, NAMESPACE, ports))
    for cluster in objects(PRODUCTION, "Cluster"):
        labels = {
            **cluster["spec"]["inheritedMetadata"]["labels"],
            "cnpg.io/cluster": cluster["metadata"]["name"],
            "cnpg.io/podRole": "instance",
        }
        found.append(Peer(labels["app"], labels, NAMESPACE, CNPG_PORTS))
    return found


def peer_matches(rule_peer: dict, peer: Peer) -> bool:
    if "ipBlock" in rule_peer:
        return peer.namespace is None
    if peer.namespace is None:
        return False
    if "namespaceSelector" in rule_peer:
        namespace = {"kubernetes.io/metadata.name": peer.namespace}
        if not selects(rule_peer["namespaceSelector"], namespace):
            return False
    elif peer.namespace != NAMESPACE:
        return False
    return selects(rule_peer.get("podSelector", {}), peer.labels)


def port_matches(rule: dict, port: int, protocol: str, target: Peer) -> bool:
    if "ports" not in rule:
        return True
    for allowed in rule["ports"]:
        number = allowed.get("port")
        if isinstance(number, str):
            number = target.ports.get(number)
        if allowed.get("protocol", "TCP") == protocol and number in (None, port):
            return True
    return False


def admits(direction: str, subject: Peer, other: Peer, port: int, protocol: str) -> bool:
    """Whether the subject's policies let it send to (Egress) or take from (Ingress) other."""
    if subject.namespace != NAMESPACE:
        return True
    rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    target = other if direction == "Egress" else subject
    selecting = []
    for policy in objects(PRODUCTION, "NetworkPolicy"):
        spec = policy["spec"]
        types = spec.get("policyTypes", ["Ingress"] + (["Egress"] if "egress" in spec else []))
        if direction in types and selects(spec["podSelector"], subject.labels):
            selecting.append(spec)
    if not selecting:
        return True
    return any(
        port_matches(rule, port, protocol, target)
        and (peers_key not in rule or any(peer_matches(p, other) for p in rule[peers_key]))
        for spec in selecting
        for rule in spec.get(rules_key, [])
    )


def allowed(source: Peer, target: Peer, port: int, protocol: str = "TCP") -> bool:
    return admits("Egress", source, target, port, protocol) and admits(
        "Ingress", target, source, port, protocol
    )


def reachable_from(source: Peer) -> set[tuple[str, int]]:
    return {
        (target.name, port)
        for target in pods()
        for port in target.ports.values()
        if allowed(source, target, port)
    }


def test_everything_in_the_namespace_is_denied_unless_allowed():
    deny = [
        p["spec"]
        for p in objects(PRODUCTION, "NetworkPolicy")
        if p["spec"]["podSelector"] == {} and not {"ingress", "egress"} & set(p["spec"])
    ]

    assert [sorted(spec["policyTypes"]) for spec in deny] == [["Egress", "Ingress"]]


def test_pods_in_the_namespace_reach_exactly_the_paths_they_use():
    everyone = pods()

    actual = {
        (source.name, target.name, port)
        for source in everyone
        for target in everyone
        for port in target.ports.values()
        if allowed(source, target, port)
    }

    assert {p.name for p in everyone} >= {"gateway", "nats", "redis-node", "postgres"}
    assert actual - EXPECTED == set(), "allowed but not used"
    assert EXPECTED - actual == set(), "used but not allowed"


def test_players_reach_the_gateway_and_nothing_else():
    assert reachable_from(INTERNET) == PUBLIC


def test_prometheus_reaches_only_metrics():
    metrics = {("auth", 9090), ("game", 9090), ("ranking", 9090), ("postgres", 9187)}

    assert reachable_from(PROMETHEUS) == PUBLIC | metrics


def test_cloudnative_pg_operator_reaches_only_its_instances():
    assert reachable_from(OPERATOR) == PUBLIC | {("postgres", 5432), ("postgres", 8000)}


def test_every_pod_resolves_names():
    unresolved = [
        (pod.name, protocol)
        for pod in pods()
        for protocol in ("UDP", "TCP")
        if not allowed(pod, KUBE_DNS, 53, protocol)
    ]

    assert not unresolved


def test_only_database_pods_leave_the_cluster_for_the_kubernetes_api():
    leaving = {pod.name for pod in pods() if allowed(pod, INTERNET, 443)}

    assert leaving == {"postgres"}
