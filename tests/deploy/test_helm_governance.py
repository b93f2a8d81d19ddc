"""The chart carries the deployment's transfer safeguards and hosting providers to every service, in the
exact format servicekit's transfer policy reads (R-XFER-1, R-SHARE-2)."""

from __future__ import annotations

import copy
import json

import pytest
from servicekit.transfers import parse_hosting, parse_safeguards

from tests.deploy.test_helm_chart import GRPC_SERVICES, load_values, render


@pytest.mark.notice("10.2.1")
@pytest.mark.notice("10.2.2")
@pytest.mark.rule("R-XFER-1")
@pytest.mark.rule("R-SHARE-2")
def test_safeguards_and_hosting_providers_reach_every_service_as_the_policy_reads_them() -> None:
    values = copy.deepcopy(load_values("values-uk.yaml"))
    values.setdefault("governance", {}).update({
        "hostingProviders": [{"name": "Example Cloud", "country": "GB", "categories": ["3.2.1"]}],
        "safeguards": [{"reference": "IDTA-1", "type": "IDTA", "risk_assessment": "TRA-1", "recipient": "org-in",
                        "country": "IN", "categories": ["3.2.1"], "expires": "2027-06-30"}],
    })
    docs = render(values)
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "kaseum-governance")
    safeguards = parse_safeguards(json.loads(config["data"]["safeguards.json"]))
    assert [s.reference for s in safeguards.safeguards] == ["IDTA-1"]
    for service in GRPC_SERVICES:
        deployment = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == service)
        pod = deployment["spec"]["template"]
        container = pod["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert [p.name for p in parse_hosting(env["HOSTING_PROVIDERS"])] == ["Example Cloud"]
        assert env["TRANSFER_SAFEGUARDS_FILE"] == "/etc/kaseum/governance/safeguards.json"
        mount = next(m for m in container["volumeMounts"] if m["name"] == "governance")
        assert mount["mountPath"] == "/etc/kaseum/governance" and mount["readOnly"]
        assert "checksum/governance" in pod["metadata"]["annotations"]
    before = next(d for d in render(load_values("values-uk.yaml")) if d["kind"] == "Deployment")
    after = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == before["metadata"]["name"])
    # A new safeguard restarts the pods (they read it at start-up).
    assert (before["spec"]["template"]["metadata"]["annotations"]["checksum/governance"]
            != after["spec"]["template"]["metadata"]["annotations"]["checksum/governance"])


def test_a_safeguard_without_a_risk_assessment_is_refused_by_the_schema() -> None:
    values = copy.deepcopy(load_values("values-uk.yaml"))
    values.setdefault("governance", {})["safeguards"] = [
        {"reference": "IDTA-1", "type": "SCC", "recipient": "x", "country": "IN", "expires": "2027-01-01"}]
    with pytest.raises(Exception, match=r"risk_assessment|type"):
        render(values)
