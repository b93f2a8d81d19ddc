"""The Helm chart, rendered by the real Helm engine and checked like a reviewer would.

helm-python-sdk (import `helm_python`) binds Helm's own Go SDK from a library
shipped inside its wheel, so no helm binary and no network are needed;
kubernetes-validate checks every manifest against the Kubernetes API schemas
it ships. No cluster is contacted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "kaseum"
KUBE_VERSION = "1.35.0"

GRPC_SERVICES = ("identity", "tickets", "consent", "rights", "analytics")
SERVICES = (*GRPC_SERVICES, "gateway")
# Who may open a connection to each gRPC service (ARCHITECTURE.md): the gateway
# calls everyone; consent, tickets and rights ask identity; rights drives
# PersonalData on all five.
CALLERS = {
    "identity": {"gateway", "tickets", "consent", "rights"},
    "tickets": {"gateway", "rights"},
    "consent": {"gateway", "rights"},
    "rights": {"gateway", "rights"},
    "analytics": {"gateway", "rights"},
}
SECRET_ENV = re.compile(
    r"^(DATABASE_URL_[A-Z]+|KASEUM_SERVICE_SECRET|IDENTITY_SIGNING_KEY)$"
)
HOOK = "helm.sh/hook"

Manifest = dict[str, Any]


def load_values(filename: str) -> dict[str, Any]:
    loaded = yaml.safe_load((CHART / filename).read_text())
    assert isinstance(loaded, dict)
    return loaded


def render(values: dict[str, Any], release: str = "kaseum-uk") -> list[Manifest]:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(
            values, name=release, namespace=release, is_install=True
        )
    docs: list[Manifest] = []
    for path, text in sorted(rendered.items()):
        if path.endswith((".yaml", ".yml")):
            docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def effective_values(values: dict[str, Any]) -> dict[str, Any]:
    with helm.Chart.load(CHART) as chart:
        return chart.merge_values(values)


def of_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [d for d in docs if d["kind"] == kind]


def by_name(docs: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {d["metadata"]["name"]: d for d in of_kind(docs, kind)}


def is_hook(doc: Manifest) -> bool:
    return HOOK in (doc["metadata"].get("annotations") or {})


def pod_specs(docs: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    """Every pod template that would run: Deployments and (hook) Jobs."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield (
                f"{doc['kind']}/{doc['metadata']['name']}",
                doc["spec"]["template"]["spec"],
            )


def service_pods(docs: list[Manifest]) -> Iterator[tuple[str, str, Manifest]]:
    """Like pod_specs, with the service each pod belongs to."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            template = doc["spec"]["template"]
            service = template["metadata"]["labels"]["app.kubernetes.io/name"]
            yield f"{doc['kind']}/{doc['metadata']['name']}", service, template["spec"]


def env_of(container: Manifest) -> dict[str, Manifest]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.fixture(scope="module")
def uk_values() -> dict[str, Any]:
    return load_values("values-uk.yaml")


@pytest.fixture(scope="module")
def uk(uk_values: dict[str, Any]) -> list[Manifest]:
    return render(uk_values)


@pytest.mark.parametrize("values_file", ["values-uk.yaml", "values-eu.yaml"])
def test_every_rendered_manifest_is_valid_kubernetes(values_file: str) -> None:
    docs = render(load_values(values_file))
    assert docs
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(
                f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}"
            )
    assert errors == []


VARIANTS = {
    "defaults": {"region": "uk"},
    "no-network-policies": {"region": "uk", "networkPolicy": {"enabled": False}},
    "no-migrations": {"region": "eu", "migrations": {"enabled": False}},
    "affinity-otel-autoscaling": {
        "region": "eu",
        "placement": {"mode": "affinity", "regionValue": "europe-west3"},
        "otel": {"endpoint": "http://collector:4318"},
        **{name: {"autoscaling": {"enabled": True}} for name in SERVICES},
    },
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_switches_still_render_valid_kubernetes(variant: str) -> None:
    for doc in render(VARIANTS[variant]):
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_chart_lints_clean(uk_values: dict[str, Any]) -> None:
    report = helm.lint(CHART, uk_values, strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_each_service_has_its_deployment_and_service(uk: list[Manifest]) -> None:
    assert set(by_name(uk, "Deployment")) == set(SERVICES)
    services = by_name(uk, "Service")
    assert set(services) == set(SERVICES)
    for name in GRPC_SERVICES:
        assert services[name]["spec"]["ports"][0]["appProtocol"] == "kubernetes.io/h2c"
    assert services["gateway"]["spec"]["ports"][0]["port"] == 8080


def test_deployments_use_values_for_replicas_and_resources(
    uk: list[Manifest], uk_values: dict[str, Any]
) -> None:
    values = effective_values(uk_values)
    for name, deployment in by_name(uk, "Deployment").items():
        if values[name]["autoscaling"]["enabled"]:
            assert "replicas" not in deployment["spec"]
            assert name in by_name(uk, "HorizontalPodAutoscaler")
        else:
            assert deployment["spec"]["replicas"] == values[name]["replicas"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["resources"]["requests"] and container["resources"]["limits"]


def test_every_pod_runs_non_root_read_only_and_unprivileged(uk: list[Manifest]) -> None:
    pods = list(pod_specs(uk))
    assert len(pods) == len(SERVICES) + len(GRPC_SERVICES)  # servers + migration jobs
    for where, pod in pods:
        pod_ctx = pod.get("securityContext", {})
        assert pod_ctx.get("runAsNonRoot") is True, where
        assert pod_ctx.get("runAsUser", 0) != 0, where
        assert pod_ctx["seccompProfile"]["type"] == "RuntimeDefault", where
        assert pod["automountServiceAccountToken"] is False, where
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in ctx["capabilities"], where
            assert ctx.get("runAsUser", pod_ctx["runAsUser"]) != 0, where


def test_servers_have_grpc_or_http_probes(uk: list[Manifest]) -> None:
    for name, deployment in by_name(uk, "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        port = container["ports"][0]["containerPort"]
        live, ready = container["livenessProbe"], container["readinessProbe"]
        if name == "gateway":
            assert live["httpGet"]["path"] == "/healthz"
            assert ready["httpGet"]["path"] == "/readyz"
            assert "gateway.app:create_app()" in container["command"]
            assert container["command"][0] == "gunicorn"
        else:
            assert live["grpc"]["port"] == port
            assert ready["grpc"]["port"] == port
            assert container["command"] == ["python", "-m", name]
            assert env_of(container)["GRPC_BIND"]["value"] == f"0.0.0.0:{port}"


def test_every_pod_can_reach_every_service(uk: list[Manifest]) -> None:
    ports = {
        name: d["spec"]["ports"][0]["port"]
        for name, d in by_name(uk, "Service").items()
    }
    for where, pod in pod_specs(uk):
        env = env_of(pod["containers"][0])
        for name in GRPC_SERVICES:
            assert env[f"{name.upper()}_ADDR"]["value"] == f"{name}:{ports[name]}", (
                where
            )
        assert env["NATS_URL"]["value"].startswith("nats://"), where


def test_image_tags_default_to_app_version(
    uk: list[Manifest], uk_values: dict[str, Any]
) -> None:
    with helm.Chart.load(CHART) as chart:
        app_version = chart.metadata["appVersion"]
    for where, pod in pod_specs(uk):
        assert pod["containers"][0]["image"].endswith(f":{app_version}"), where
    pinned = render(
        {
            **uk_values,
            "tickets": {
                **uk_values["tickets"],
                "image": {"repository": "tickets", "tag": "1.2.3"},
            },
        }
    )
    assert by_name(pinned, "Deployment")["tickets"]["spec"]["template"]["spec"][
        "containers"
    ][0]["image"].endswith("/tickets:1.2.3")


@pytest.mark.rule("R-XFER-2")
@pytest.mark.parametrize("values_file", ["values-uk.yaml", "values-eu.yaml"])
def test_every_pod_is_pinned_to_its_regions_nodes(values_file: str) -> None:
    values = effective_values(load_values(values_file))
    region = values["region"]
    label = values["placement"]["regionLabel"]
    node_value = values["placement"]["regionValue"] or region
    for where, pod in pod_specs(
        render(load_values(values_file), release=f"kaseum-{region}")
    ):
        selector = pod.get("nodeSelector", {})
        terms = (
            pod.get("affinity", {})
            .get("nodeAffinity", {})
            .get("requiredDuringSchedulingIgnoredDuringExecution", {})
            .get("nodeSelectorTerms", [])
        )
        # Every term must pin the region: node affinity terms are ORed.
        by_affinity = bool(terms) and all(
            any(
                e["key"] == label
                and e["operator"] == "In"
                and e["values"] == [node_value]
                for e in term.get("matchExpressions", [])
            )
            for term in terms
        )
        assert selector.get(label) == node_value or by_affinity, where
        assert env_of(pod["containers"][0])["REGION"]["value"] == region, where


@pytest.mark.rule("R-XFER-2")
def test_a_release_without_a_region_does_not_render() -> None:
    with pytest.raises(helm.HelmRenderError, match="region is required"):
        render({})
    with pytest.raises(helm.HelmError):
        render({"region": "UK; DROP"})


@pytest.mark.rule("R-SEC-2")
def test_secrets_reach_pods_only_through_secret_refs(
    uk: list[Manifest], uk_values: dict[str, Any]
) -> None:
    assert of_kind(uk, "Secret") == [], "the chart must not create Secrets from values"
    values = effective_values(uk_values)
    for where, name, pod in service_pods(uk):
        env = env_of(pod["containers"][0])
        for var in env.values():
            if SECRET_ENV.match(var["name"]):
                assert "value" not in var, f"{where}: {var['name']} in clear"
                assert var["valueFrom"]["secretKeyRef"]["name"], where
        expected = {"KASEUM_SERVICE_SECRET"}
        if name != "gateway":
            expected.add(f"DATABASE_URL_{name.upper()}")
            db = values[name]["database"]
            assert env[f"DATABASE_URL_{name.upper()}"]["valueFrom"]["secretKeyRef"] == {
                "name": db["existingSecret"],
                "key": db["key"],
            }
        if name == "identity":
            expected.add("IDENTITY_SIGNING_KEY")
        assert {n for n in env if SECRET_ENV.match(n)} == expected, where


SENSITIVE_KEY = re.compile(
    r"pass(word|wd)?|token|secret|private|api_?key|credential|dsn", re.IGNORECASE
)
SECRET_TEXT = re.compile(
    r"-----BEGIN|://[^/\s:@]+:[^/\s@]+@|\b(postgres(ql)?|nats|redis)(\+\w+)?://\S*@"
)
REFERENCE_KEYS = {"existingSecret", "imagePullSecrets"}


def leaves(node: Any, path: str = "", key: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) for every scalar in a values tree."""
    if isinstance(node, dict):
        for k, value in node.items():
            yield from leaves(value, f"{path}.{k}", str(k))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from leaves(value, f"{path}[{i}]", key)
    else:
        yield path, key, node


@pytest.mark.rule("R-SEC-2")
@pytest.mark.parametrize(
    "values_file", sorted(p.name for p in CHART.glob("values*.yaml"))
)
def test_values_files_hold_no_secret_in_clear(values_file: str) -> None:
    found = []
    for path, key, value in leaves(load_values(values_file)):
        if isinstance(value, str) and SECRET_TEXT.search(value):
            found.append(path)
        if (
            key
            and key not in REFERENCE_KEYS
            and SENSITIVE_KEY.search(key)
            and value not in ("", None)
        ):
            found.append(path)
    assert found == []


@pytest.mark.rule("R-SEC-2")
def test_the_schema_refuses_secrets_written_into_values() -> None:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema({"region": "uk"})
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(
                {
                    "region": "uk",
                    "identity": {"database": {"url": "postgresql://u:p@db/identity"}},
                }
            )
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(
                {
                    "region": "uk",
                    "tickets": {
                        "extraEnv": [{"name": "KASEUM_SERVICE_SECRET", "value": "x"}]
                    },
                }
            )
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(
                {"region": "uk", "nats": {"url": "nats://user:pw@nats:4222"}}
            )


def test_one_network_policy_per_service(uk: list[Manifest]) -> None:
    policies = [p for p in of_kind(uk, "NetworkPolicy") if not is_hook(p)]
    assert sorted(p["metadata"]["name"] for p in policies) == sorted(SERVICES)
    deployments = by_name(uk, "Deployment")
    for policy in policies:
        name = policy["metadata"]["name"]
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        selector = policy["spec"]["podSelector"]["matchLabels"]
        assert selector.items() <= pod_labels.items(), name
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}


def test_network_policies_can_be_switched_off(uk_values: dict[str, Any]) -> None:
    docs = render({**uk_values, "networkPolicy": {"enabled": False}})
    assert of_kind(docs, "NetworkPolicy") == []


def test_grpc_services_admit_only_their_callers(uk: list[Manifest]) -> None:
    policies = by_name(uk, "NetworkPolicy")
    for name, callers in CALLERS.items():
        (rule,) = policies[name]["spec"]["ingress"]
        admitted = {
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for peer in rule["from"]
        }
        assert admitted == callers, name
        assert all(
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
            == "server"
            for peer in rule["from"]
        )
        assert [p["port"] for p in rule["ports"]] == [50051 + GRPC_SERVICES.index(name)]
    (gateway_rule,) = policies["gateway"]["spec"]["ingress"]
    assert all("namespaceSelector" in peer for peer in gateway_rule["from"])
    assert [p["port"] for p in gateway_rule["ports"]] == [8080]


def test_egress_is_dns_nats_own_database_and_callees(uk: list[Manifest]) -> None:
    policies = by_name(uk, "NetworkPolicy")
    for name in SERVICES:
        ports = {
            port["port"]
            for rule in policies[name]["spec"]["egress"]
            for port in rule.get("ports", [])
        }
        callees = {callee for callee, callers in CALLERS.items() if name in callers}
        expected = {53, 4222} | {50051 + GRPC_SERVICES.index(c) for c in callees}
        if name != "gateway":
            expected.add(5432)
        if name == "consent":
            expected.add(587)  # the mail relay (values: mail.smtp.port)
        assert ports - {4318} == expected, name


def test_each_database_service_migrates_in_a_pre_install_hook(
    uk: list[Manifest],
) -> None:
    jobs = by_name(uk, "Job")
    assert set(jobs) == {f"{name}-migrate" for name in GRPC_SERVICES}
    for name in GRPC_SERVICES:
        job = jobs[f"{name}-migrate"]
        assert set(job["metadata"]["annotations"][HOOK].split(",")) == {
            "pre-install",
            "pre-upgrade",
        }
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["python", "-m", name, "migrate"]
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


PEERING = {
    "peers": [{"region": "eu", "address": "analytics.eu.internal:50065",
               "networkPolicyPeers": [{"ipBlock": {"cidr": "10.30.0.0/16"}}]}],
    "ingressFrom": [{"ipBlock": {"cidr": "10.30.0.0/16"}}],
    "peerSecret": {"existingSecret": "kaseum-analytics-peer", "key": "ANALYTICS_PEER_SECRET"},
}


@pytest.mark.rule("R-DATA-3", "R-SEC-2")
@pytest.mark.notice("4.1.4")
def test_analytics_peers_are_wired_with_their_own_secret_and_network_policy(
    uk_values: dict[str, Any],
) -> None:
    docs = render({**uk_values, "analyticsPeering": PEERING})
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    pods = {name: pod for where, name, pod in service_pods(docs) if where.startswith("Deployment/")}
    env = env_of(pods["analytics"]["containers"][0])
    assert env["ANALYTICS_PEERS"]["value"] == "eu=analytics.eu.internal:50065"
    # The peer secret comes from its own Secret, never KASEUM_SERVICE_SECRET's, and only to analytics.
    assert env["ANALYTICS_PEER_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "kaseum-analytics-peer", "key": "ANALYTICS_PEER_SECRET"}
    assert all("ANALYTICS_PEER_SECRET" not in env_of(p["containers"][0]) for n, p in pods.items() if n != "analytics")
    policy = by_name(docs, "NetworkPolicy")["analytics"]["spec"]
    assert {"to": [{"ipBlock": {"cidr": "10.30.0.0/16"}}],
            "ports": [{"protocol": "TCP", "port": 50065}]} in policy["egress"]
    assert {"from": [{"ipBlock": {"cidr": "10.30.0.0/16"}}],
            "ports": [{"protocol": "TCP", "port": 50055}]} in policy["ingress"]
    # Without peering (the default), nothing of it is rendered.
    plain = env_of(next(p for w, n, p in service_pods(render(uk_values)) if n == "analytics")["containers"][0])
    assert "ANALYTICS_PEERS" not in plain and "ANALYTICS_PEER_SECRET" not in plain
    for bad in ({"region": "uk", "address": "analytics:50055"}, {"region": "eu", "address": "no-port"}):
        with pytest.raises(helm.HelmError):
            render({**uk_values, "analyticsPeering": {**PEERING, "peers": [bad]}})
