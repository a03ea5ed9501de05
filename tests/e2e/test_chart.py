"""The Helm chart against the real control plane, with the real helm binary.

`helm install` the chart (its Deployment's pods become Ready through kwok; no image is
pulled), then run the operator process locally with exactly the chart's environment and
the chart's ServiceAccount credentials: it must reconcile a realistic ProductionService
end to end (every child kind, a referenced Secret, pruning, policy reports, events, the
Lease) with no request denied — the RBAC suffices — while `kubectl auth can-i` shows it
can do nothing else that matters — the RBAC is minimal (tests/unit/test_chart_rbac.py
proves every rule is one the code uses). Acting with that same token, the chart's
ValidatingAdmissionPolicy denies what a thief would do with it (a privileged Deployment in
kube-system, another team's Service taken over or deleted) and none of the operator's own
writes. Then `helm upgrade` keeps the webhook certificate the operator created and the
caBundle it set, and the Lease, and `helm uninstall` leaves nothing of the release behind
(the certificate's Secret goes with the webhook configuration that owns it).

A second release, installed with `podSecurityContext.runAsUser: null` (OpenShift), has its
webhook configuration pointed at a local operator (kwok's pods run no container): the
operator creates its own certificate, its leader sets the caBundle, the apiserver calls the
webhook with it (a denied Deployment proves the call), and a certificate issued for 45 s
is renewed with the caBundle following while admission reviews keep being answered.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from prodready import render
from prodready.controller.reconciler import APPLIED_HASH
from prodready.kube.client import KubeClient
from prodready.kube.events import EventRecorder
from tests.cluster.controlplane import ControlPlane
from tests.e2e.policy_support import E2E_LABEL, bare_deployment, label_namespace, log_field
from tests.e2e.support import (
    MONITORING_CRDS,
    REPO,
    OperatorProcess,
    condition,
    events,
    get,
    install_crds,
    start_operator,
    wait_for,
)
from tests.generate import CHART

pytestmark = pytest.mark.cluster

EXAMPLE = REPO / "examples" / "fastapi-postgres-redis.yaml"
EXAMPLE_SECRET = REPO / "examples" / "secret.yaml"
MINIMAL = REPO / "examples" / "minimal.yaml"
OPENREPORTS_CRD = REPO / "tests" / "fixtures" / "crds" / "openreports.io_reports.yaml"
CRD_NAME = "productionservices.prodready.io"
# What the local process chooses itself: free ports (start_operator's).
LOCAL_ONLY = {"PRODREADY_HEALTH_PORT", "PRODREADY_WEBHOOK_PORT"}
# In every namespace, before anything is installed: not objects of the release.
NAMESPACE_DEFAULTS = {("ServiceAccount", "default"), ("ConfigMap", "kube-root-ca.crt")}
# Records of what happened, not objects anyone installed; they expire on their own.
EPHEMERAL_KINDS = {"Event"}


def crd_names(cluster: ControlPlane) -> set[str]:
    listed: Any = cluster.kubectl_json("get", "crds")
    return {str(item["metadata"]["name"]) for item in listed["items"]}


def now() -> str:
    """The current time in the apiserver audit log's format, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())


@dataclass
class Release:
    """One release of the chart, driven with the real helm binary as the cluster admin."""

    cluster: ControlPlane
    name: str
    namespace: str
    values: dict[str, Any] = field(default_factory=dict)
    _token_kubeconfig: Path | None = None

    @property
    def fullname(self) -> str:
        return self.name if "prodready" in self.name else f"{self.name}-prodready"

    def helm(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.cluster.bin_dir / "helm"), *args, "--namespace", self.namespace],
            env=self.cluster.env(),
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stderr}"
        return result

    def _values_file(self, values: dict[str, Any]) -> str:
        path = self.cluster.directory / f"values-{self.namespace}-{time.monotonic_ns()}.json"
        path.write_text(json.dumps(values))
        return str(path)

    def install(self) -> str:
        """`helm install --wait` (the pods must become Ready); the output, NOTES included."""
        return self.helm(
            "install", self.name, str(CHART), "--values", self._values_file(self.values),
            "--wait", "--timeout", "180s",
        ).stdout  # fmt: skip

    def upgrade(self, values: dict[str, Any]) -> None:
        self.helm(
            "upgrade", self.name, str(CHART), "--reset-then-reuse-values",
            "--values", self._values_file(values), "--wait", "--timeout", "180s",
        )  # fmt: skip

    def uninstall(self) -> None:
        self.helm("uninstall", self.name, "--wait", "--timeout", "180s")

    def installed(self) -> bool:
        listed = json.loads(self.helm("list", "--output", "json").stdout)
        return any(item["name"] == self.name for item in listed)

    def get(self, kind: str, name: str | None = None) -> dict[str, Any] | None:
        return get(self.cluster, kind, name or self.fullname, self.namespace)

    def operator_env(self, directory: Path) -> dict[str, str]:
        """The operator container's environment as the chart sets it, for a local process:
        the ports are free ones; the operator provisions its own webhook certificate (the
        chart's default) through the API, as in the pod."""
        deployment = self.get("deployment")
        assert deployment is not None
        (main,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e["value"] for e in main["env"] if "value" in e}
        env = {key: value for key, value in env.items() if key not in LOCAL_ONLY}
        assert env["PRODREADY_WEBHOOK_CERT_SECRET_NAME"] == f"{self.fullname}-webhook-tls"
        assert "PRODREADY_WEBHOOK_CERT_FILE" not in env
        # In the cluster the downward API sets it: the namespace of the Lease.
        env["POD_NAMESPACE"] = self.namespace
        return env

    def start_operator(self, log: Path, directory: Path) -> OperatorProcess:
        """`prodready run` as the release's ServiceAccount, configured as the chart does."""
        return start_operator(
            self.cluster,
            log,
            kubeconfig=self.cluster.mint_kubeconfig(self.fullname, self.namespace),
            standalone=False,
            env=self.operator_env(directory),
        )

    @property
    def policy(self) -> str:
        """The ValidatingAdmissionPolicy (and binding) confining the ServiceAccount."""
        return f"{self.fullname}-operator"

    def as_operator(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """kubectl with the release ServiceAccount's own token (a token minted once)."""
        if self._token_kubeconfig is None:
            self._token_kubeconfig = self.cluster.mint_kubeconfig(self.fullname, self.namespace)
        return self.cluster.kubectl(
            *args, input=input, kubeconfig=self._token_kubeconfig, check=False
        )

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        """`kubectl auth can-i` as the release's ServiceAccount (`resource` may be
        `plural/name` or carry `--subresource=…`)."""
        user = f"system:serviceaccount:{self.namespace}:{self.fullname}"
        scope = ["-n", namespace] if namespace else ["--all-namespaces"]
        result = self.cluster.kubectl(
            "auth", "can-i", verb, *resource.split(), "--as", user, *scope, check=False
        )
        answer = result.stdout.strip()
        assert answer in {"yes", "no"}, result.stdout + result.stderr
        return answer == "yes"

    def writes(self, since: str) -> list[dict[str, Any]]:
        """The ServiceAccount's write requests the apiserver audited since `since`."""
        user = f"system:serviceaccount:{self.namespace}:{self.fullname}"
        found = []
        for event in self.cluster.audit_events():
            record: Any = event
            if record["user"]["username"] == user and record["requestReceivedTimestamp"] >= since:
                found.append(dict(record))
        return found


def write_summary(writes: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(verb, resource[/subresource]) of audited writes."""
    summary = set()
    for write in writes:
        ref = write.get("objectRef") or {}
        resource = ref.get("resource", "")
        if ref.get("subresource"):
            resource += "/" + ref["subresource"]
        summary.add((write["verb"], resource))
    return summary


# What the apiserver says when RBAC denies a request, and what kopf logs then. (A 403 for
# a namespace being deleted, which earlier tests leave behind, is not a denial.)
RBAC_DENIAL = re.compile(
    r'User \\?"[^"\\]+\\?" cannot [a-z]+ resource|not enough permissions', re.I
)


def permission_problems(operator: OperatorProcess) -> list[str]:
    """Log lines about requests RBAC denied (kopf's and ours)."""
    lines = operator.log.read_text(errors="replace").splitlines()
    return [line for line in lines if RBAC_DENIAL.search(line)]


def denied(writes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The writes the authorizer refused (the audit log records its decision)."""
    decision = "authorization.k8s.io/decision"
    return [w for w in writes if (w.get("annotations") or {}).get(decision) == "forbid"]


def operator_refusals(writes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The operator's writes a ValidatingAdmissionPolicy refused after RBAC allowed them.
    Dry runs are the tests' probes of the policy: the operator never makes one."""
    return [
        w
        for w in writes
        if (w.get("responseStatus") or {}).get("code", 200) >= 400
        and "ValidatingAdmissionPolicy" in (w.get("responseStatus") or {}).get("message", "")
        and "dryRun" not in w.get("requestURI", "")
    ]


def leftovers(cluster: ControlPlane, namespace: str) -> list[str]:
    """Every object in `namespace` that the namespace did not start with."""
    kinds = cluster.kubectl(
        "api-resources", "--namespaced=true", "--verbs=list", "-o", "name"
    ).stdout.split()
    listed: Any = cluster.kubectl_json("get", ",".join(kinds), "-n", namespace)
    return sorted(
        f"{item['kind']}/{item['metadata']['name']}"
        for item in listed["items"]
        if (item["kind"], item["metadata"]["name"]) not in NAMESPACE_DEFAULTS
        and item["kind"] not in EPHEMERAL_KINDS
    )


@pytest.fixture(scope="module")
def cluster_crds(cluster: ControlPlane) -> Iterator[None]:
    """The monitoring and OpenReports CRDs, so that every child kind and the reports are
    written through the chart's RBAC. Every CRD this module adds (the chart's included,
    which `helm uninstall` keeps by design) is removed after it."""
    before = crd_names(cluster)
    install_crds(cluster, *MONITORING_CRDS, OPENREPORTS_CRD)
    yield
    for name in sorted(crd_names(cluster) - before):
        cluster.kubectl("delete", "crd", name, "--wait=true", timeout=180)


def unreachable_webhook_ignored(release: Release) -> None:
    """kwok's pods run no container, so nothing answers the chart's webhook here, and its
    entries that fail closed (the enforce ones by default, /authorize always) would refuse
    every ProductionService. Set to Ignore on the live object only (a `helm upgrade` with
    the same values leaves it so); the webhook itself is tested against a real process in
    test_webhook.py and test_security_authorization.py."""
    name = release.fullname
    configuration: Any = release.cluster.kubectl_json("get", "validatingwebhookconfiguration", name)
    policies = {w["name"]: w["failurePolicy"] for w in configuration["webhooks"]}
    assert policies["authorize.productionservices.prodready.io"] == "Fail"
    patch = [
        {"op": "replace", "path": f"/webhooks/{index}/failurePolicy", "value": "Ignore"}
        for index in range(len(policies))
    ]
    release.cluster.kubectl(
        "patch", "validatingwebhookconfiguration", name, "--type=json", "-p", json.dumps(patch)
    )


def _teardown(release: Release) -> None:
    if release.installed():
        release.uninstall()
    release.cluster.kubectl("delete", "namespace", release.namespace, "--wait=false", check=False)


@pytest.fixture(scope="module")
def release(cluster: ControlPlane, cluster_crds: None) -> Iterator[Release]:
    """The chart's defaults, installed as `prodready` in its own namespace."""
    installed = Release(cluster, "prodready", "prodready-chart")
    cluster.kubectl("create", "namespace", installed.namespace)
    try:
        yield installed
    finally:
        _teardown(installed)


@pytest.fixture(scope="module")
def notes(release: Release) -> str:
    output = release.install()
    unreachable_webhook_ignored(release)
    # The operator's writes below must meet the policy, not race its activation.
    wait_for_operator_policy(release, "default")
    return output


def test_install_deploys_a_ready_operator(
    cluster: ControlPlane, release: Release, notes: str
) -> None:
    deployment = release.get("deployment")
    assert deployment is not None
    assert deployment["status"]["readyReplicas"] == deployment["spec"]["replicas"] == 2
    for kind, name in (
        ("serviceaccount", release.fullname),
        ("service", release.fullname),
        ("poddisruptionbudget", release.fullname),
        ("lease", "prodready"),
        ("role", f"{release.fullname}-leader-election"),
        ("rolebinding", f"{release.fullname}-leader-election"),
        ("role", f"{release.fullname}-webhook-certificate"),
        ("rolebinding", f"{release.fullname}-webhook-certificate"),
    ):
        assert release.get(kind, name) is not None, f"{kind} {name}"
    # The chart renders no certificate: the operator creates it (none runs here yet).
    assert release.get("secret", f"{release.fullname}-webhook-tls") is None
    for kind in ("clusterrole", "clusterrolebinding", "validatingwebhookconfiguration"):
        cluster.kubectl("get", kind, release.fullname)
    for kind in ("clusterrole", "clusterrolebinding"):
        cluster.kubectl("get", kind, f"{release.fullname}-webhook-configuration")
    for kind in ("validatingadmissionpolicy", "validatingadmissionpolicybinding"):
        cluster.kubectl("get", kind, release.policy)
    crd: Any = cluster.kubectl_json("get", "crd", CRD_NAME)
    established = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert established["Established"] == "True"
    assert "kubectl -n prodready-chart rollout status deployment/prodready" in notes
    assert "kubectl delete crd productionservices.prodready.io" in notes
    assert "WARNING: cluster-wide mode" in notes
    assert f"The ValidatingAdmissionPolicy {release.policy} (Deny)" in notes


def test_operator_with_the_chart_credentials_reconciles_end_to_end(
    cluster: ControlPlane, release: Release, notes: str, namespace: str, tmp_path: Path
) -> None:
    started = now()
    operator = release.start_operator(tmp_path / "operator.log", tmp_path)
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLE_SECRET))
        cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLE))

        def ready() -> bool:
            service = get(cluster, "productionservice", "orders-api", namespace)
            return condition(service, "Ready").get("status") == "True"

        wait_for(ready, 120, "orders-api Ready with the chart's RBAC")
        for kind in (
            "deployment",
            "service",
            "poddisruptionbudget",
            "horizontalpodautoscaler",
            "ingress",
            "servicemonitor",
            "prometheusrule",
        ):
            assert get(cluster, kind, "orders-api", namespace) is not None, kind
        wait_for(
            lambda: get(
                cluster, "reports.openreports.io", "prodready-deployment-orders-api", namespace
            ),
            60,
            "the audit's report on the Deployment",
        )
        # Pruning: without exposure the Ingress goes (DELETE through the chart's RBAC).
        cluster.kubectl(
            "patch", "productionservice", "orders-api", "-n", namespace, "--type=json",
            "-p", '[{"op": "remove", "path": "/spec/exposure"}]',
        )  # fmt: skip
        wait_for(
            lambda: get(cluster, "ingress", "orders-api", namespace) is None,
            60,
            "the Ingress to be pruned",
        )
        reasons = {e["reason"] for e in events(cluster, namespace, "orders-api")}
        assert "Pruned" in reasons  # (a new service's first children get no Event)
        # Policies: the audit writes their status with the chart's credentials.
        policy = {
            "apiVersion": "prodready.io/v1alpha1",
            "kind": "ReadinessPolicy",
            "metadata": {"name": f"chart-{namespace}"},
            "spec": {
                "mode": "Audit",
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            },
        }
        cluster.kubectl("apply", "-f", "-", input=json.dumps(policy))

        def counted() -> bool:
            body = get(cluster, "readinesspolicy", f"chart-{namespace}", "default") or {}
            return bool((body.get("status") or {}).get("matched"))

        wait_for(counted, 90, "the ReadinessPolicy's status written by the audit")
        cluster.kubectl("delete", "readinesspolicy", f"chart-{namespace}")
        lease = release.get("lease", "prodready")
        assert lease is not None
        assert lease["spec"]["holderIdentity"]
    finally:
        assert operator.stop() == 0
    # A control: a write the chart does not grant, with the same credentials, is denied and
    # recorded as such — so the check below would see a denial of the operator's.
    refused = cluster.kubectl(
        "create", "configmap", "probe", "-n", namespace,
        kubeconfig=cluster.mint_kubeconfig(release.fullname, release.namespace), check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert RBAC_DENIAL.search(refused.stderr)
    writes = release.writes(started)
    refusals = [(w["verb"], w["objectRef"]["resource"]) for w in denied(writes)]
    assert refusals == [("create", "configmaps")], json.dumps(denied(writes), indent=1)[:4000]
    # The chart's ValidatingAdmissionPolicy was enforced (the `notes` fixture waited for it)
    # and refused none of the operator's writes.
    assert operator_refusals(writes) == [], json.dumps(operator_refusals(writes), indent=1)
    assert permission_problems(operator) == []
    # Children are created (their fields are claimed for apply by the first apply that
    # changes them, which this test does not need), the rest patched.
    assert {
        ("create", "deployments"),
        ("create", "services"),
        ("create", "servicemonitors"),
        ("patch", "productionservices/status"),
        ("delete", "ingresses"),
        ("create", "events"),
        ("update", "leases"),
        ("patch", "reports"),
        ("patch", "readinesspolicies/status"),
        # Its own webhook certificate, and the caBundle of its own webhook configuration.
        ("create", "secrets"),
        ("patch", "validatingwebhookconfigurations"),
    } <= write_summary(writes)
    secret = release.get("secret", f"{release.fullname}-webhook-tls")
    assert secret is not None
    configuration: Any = cluster.kubectl_json(
        "get", "validatingwebhookconfiguration", release.fullname
    )
    assert {w["clientConfig"]["caBundle"] for w in configuration["webhooks"]} == {
        secret["data"]["ca.crt"]
    }
    # Only the caBundle changed: the failure policies the test set are as they were.
    assert {w["failurePolicy"] for w in configuration["webhooks"]} == {"Ignore"}


@pytest.mark.parametrize(
    ("verb", "resource", "namespace"),
    [
        ("list", "secrets", None),
        ("watch", "secrets", None),
        ("create", "secrets", "default"),
        ("get", "configmaps", "default"),
        ("create", "pods", "default"),
        ("create", "pods/exec", "default"),
        ("create", "serviceaccounts/token", "default"),
        ("update", "productionservices", "default"),
        ("delete", "productionservices", "default"),
        ("create", "roles", "default"),
        ("create", "rolebindings", "default"),
        ("create", "clusterroles", None),
        ("escalate", "clusterroles", None),
        ("patch", "validatingwebhookconfigurations", None),
        ("delete", "namespaces", None),
        ("create", "customresourcedefinitions", None),
        ("update", "leases", "default"),
        ("delete", "leases", "prodready-chart"),
        ("create", "events", "default"),  # core Events: it writes events.k8s.io's
        ("get", "nodes", None),
    ],
)
def test_the_service_account_can_do_nothing_else(
    release: Release, notes: str, verb: str, resource: str, namespace: str | None
) -> None:
    assert not release.can(verb, resource, namespace)


@pytest.mark.parametrize(
    ("verb", "resource", "namespace"),
    [
        ("get", "secrets", "default"),
        ("get", "deployments", "default"),
        ("patch", "deployments", "default"),
        ("create", "deployments", "default"),
        ("delete", "deployments", "default"),
        ("watch", "productionservices", None),
        ("patch", "productionservices --subresource=status", "default"),
        ("create", "events.events.k8s.io", "default"),
        ("patch", "events.events.k8s.io", "default"),
        ("patch", "reports.openreports.io", "default"),
        ("list", "cronjobs", None),
        ("update", "leases/prodready", "prodready-chart"),
        # The webhook's /authorize: may a ProductionService's author do what it implies.
        ("create", "subjectaccessreviews.authorization.k8s.io", None),
    ],
)
def test_the_service_account_can_do_its_job(
    release: Release, notes: str, verb: str, resource: str, namespace: str | None
) -> None:
    assert release.can(verb, resource, namespace)


# -- the operator's own token, confined by the chart's ValidatingAdmissionPolicy ----------


EXPOSED = {
    "exposure": {
        "host": "hello.team.example.com",
        "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
    }
}


def rendered(namespace: str, spec: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """What the operator renders for examples/minimal.yaml in `namespace` (with `spec`
    added), by kind."""
    service = yaml.safe_load(MINIMAL.read_text())
    service["metadata"]["namespace"] = namespace
    service["spec"].update(spec or {})
    return {child["kind"]: child for child in render.render(service)}


def hostile_deployment(namespace: str) -> dict[str, Any]:
    """The renderer's Deployment (label included) turned into a node takeover: hostPID,
    the node's root filesystem mounted, a privileged container."""
    deployment = rendered(namespace)["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    pod["hostPID"] = True
    pod["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    (main,) = pod["containers"]
    # allowPrivilegeEscalation too: the apply merges with fields the live Deployment's
    # create still owns, and privileged with it false is invalid before any policy runs.
    main["securityContext"] = {"privileged": True, "allowPrivilegeEscalation": True}
    main["volumeMounts"].append({"name": "host", "mountPath": "/host"})
    return deployment


def dry_run(release: Release, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """A server-side apply, as the operator makes them (forced), dry-run: admission runs in
    full and nothing is stored."""
    return release.as_operator(
        "apply", "--server-side", "--force-conflicts", "--field-manager=prodready",
        "--dry-run=server", "-f", "-", input=json.dumps(obj),
    )  # fmt: skip


def refused_by_policy(release: Release, result: subprocess.CompletedProcess[str]) -> str:
    """The policy's message of a refused request (fails when something else refused it)."""
    assert result.returncode != 0, "admitted"
    marker = f"ValidatingAdmissionPolicy '{release.policy}' with binding '{release.policy}'"
    assert marker in result.stderr, result.stderr
    return result.stderr


LABEL_DENIAL = "it changes only objects labelled app.kubernetes.io/managed-by=prodready"


def wait_for_operator_policy(release: Release, namespace: str) -> None:
    """Until the apiserver enforces the release's policy (a new policy takes a moment to be
    loaded): retry a dry run that RBAC allows and only the policy denies."""
    unlabelled = rendered(namespace)["Service"]
    del unlabelled["metadata"]["labels"]["app.kubernetes.io/managed-by"]

    def enforced() -> bool:
        result = dry_run(release, unlabelled)
        return result.returncode != 0 and LABEL_DENIAL in result.stderr

    wait_for(enforced, 60, f"ValidatingAdmissionPolicy {release.policy} to be enforced")


@pytest.fixture(scope="module")
def team(cluster: ControlPlane, notes: str) -> Iterator[str]:
    """A namespace where the operator (cluster-wide) may write, holding another team's
    Service that the operator did not create."""
    name = "prodready-chart-team"
    cluster.kubectl("create", "namespace", name)
    theirs = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "theirs", "namespace": name, "labels": {"team": "b"}},
        "spec": {"selector": {"app": "theirs"}, "ports": [{"name": "web", "port": 80}]},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(theirs))
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_operator_token_may_apply_what_the_renderer_makes(release: Release, team: str) -> None:
    """The control for the denials below: the same requests, unbroken, are admitted."""
    children = rendered(team, EXPOSED)
    assert {"Deployment", "Service", "Ingress"} <= set(children)
    for kind, child in children.items():
        # As the reconciler writes them: with the hash of what it applied.
        child["metadata"].setdefault("annotations", {})[APPLIED_HASH] = "sha256:0"
        result = dry_run(release, child)
        assert result.returncode == 0, f"{kind}: {result.stderr}"


def test_operator_token_may_ask_the_apiserver_for_reviews(release: Release, notes: str) -> None:
    """The webhook's SubjectAccessReviews and /metrics' TokenReviews are creates like any
    other to the policy (which matches every create of the token): they must pass."""
    reviews = [
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": "alice",
                "resourceAttributes": {"verb": "get", "resource": "secrets", "namespace": "x"},
            },
        },
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "x"}},
    ]
    for review in reviews:
        result = release.as_operator("create", "-o", "json", "-f", "-", input=json.dumps(review))
        assert result.returncode == 0, f"{review['kind']}: {result.stderr}"
        answer = json.loads(result.stdout)["status"]
        assert answer.get("allowed", answer.get("authenticated")) is not True


def test_operator_token_records_an_event_and_its_series(
    release: Release, team: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kube/events.py as the operator's token: an events.k8s.io Event is created, and its
    repetitions patch its series (an UPDATE to the chart's admission policy)."""
    kubeconfig = release.cluster.mint_kubeconfig(release.fullname, release.namespace)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    service = release.cluster.kubectl_json("get", "service", "theirs", "-n", team)
    note = "failing error-severity rules: PR-SC-001 (chart e2e)"

    async def record() -> None:
        client = KubeClient.login()
        try:
            recorder = EventRecorder(client, instance="chart-e2e")
            for _ in range(3):
                await recorder.warning(service, "PolicyViolation", note)
        finally:
            await client.close()

    asyncio.run(record())
    listed = release.cluster.kubectl_json("get", "events.events.k8s.io", "-n", team)
    (event,) = [e for e in listed["items"] if e["note"] == note]  # type: ignore[index]
    assert event["series"]["count"] == 3
    assert not release.can("delete", "events.events.k8s.io", team)


def test_operator_token_cannot_start_a_privileged_pod_in_kube_system(
    release: Release, notes: str
) -> None:
    # RBAC alone (cluster-wide mode) would let it through: the policy is what stops it.
    assert release.can("create", "deployments", "kube-system")
    message = refused_by_policy(release, dry_run(release, hostile_deployment("kube-system")))
    assert "never writes apps/deployments in namespace kube-system: it is protected" in message
    assert get(release.cluster, "deployment", "hello", "kube-system") is None


def _host_pid(pod: dict[str, Any], main: dict[str, Any]) -> None:
    pod["hostPID"] = True


def _host_network(pod: dict[str, Any], main: dict[str, Any]) -> None:
    pod["hostNetwork"] = True


def _host_path(pod: dict[str, Any], main: dict[str, Any]) -> None:
    pod["volumes"].append({"name": "host", "hostPath": {"path": "/"}})


def _claim(pod: dict[str, Any], main: dict[str, Any]) -> None:
    pod["volumes"].append({"name": "data", "persistentVolumeClaim": {"claimName": "theirs"}})


def _config_map_volume(pod: dict[str, Any], main: dict[str, Any]) -> None:
    pod["volumes"].append({"name": "config", "configMap": {"name": "theirs"}})


def _config_map_env(pod: dict[str, Any], main: dict[str, Any]) -> None:
    main["envFrom"] = [{"configMapRef": {"name": "theirs"}}]


def _privileged(pod: dict[str, Any], main: dict[str, Any]) -> None:
    main["securityContext"] = {"privileged": True}


def _privileged_init_container(pod: dict[str, Any], main: dict[str, Any]) -> None:
    pod["initContainers"] = [
        {"name": "init", "image": main["image"], "securityContext": {"privileged": True}}
    ]


def _escalation(pod: dict[str, Any], main: dict[str, Any]) -> None:
    main["securityContext"]["allowPrivilegeEscalation"] = True


def _capability(pod: dict[str, Any], main: dict[str, Any]) -> None:
    main["securityContext"]["capabilities"]["add"] = ["NET_ADMIN"]


def _host_port(pod: dict[str, Any], main: dict[str, Any]) -> None:
    main["ports"][0]["hostPort"] = 80


def _node_name(pod: dict[str, Any], main: dict[str, Any]) -> None:
    pod["nodeName"] = "control-plane"


@pytest.mark.parametrize(
    ("breaking", "message"),
    [
        (_host_pid, "may not use the node's namespaces"),
        (_host_network, "may not use the node's namespaces"),
        (_host_path, "may mount only emptyDir volumes"),
        (_claim, "may mount only emptyDir volumes"),
        (_config_map_volume, "may mount only emptyDir volumes"),
        (_config_map_env, "may not read ConfigMaps into its environment"),
        (_privileged, "may not run privileged containers"),
        (_privileged_init_container, "may not run privileged containers"),
        (_escalation, "may not allow privilege escalation"),
        (_capability, "may not add capabilities"),
        (_host_port, "may not bind ports of the node (hostPort)"),
        (_node_name, "may not pin its pods to a node (nodeName)"),
    ],
)
def test_operator_token_cannot_apply_a_privileged_pod_template(
    release: Release, team: str, breaking: Any, message: str
) -> None:
    """In a namespace the operator serves: the renderer's Deployment, one field broken."""
    deployment = rendered(team)["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    breaking(pod, pod["containers"][0])
    assert message in refused_by_policy(release, dry_run(release, deployment))


def test_operator_token_cannot_write_an_unlabelled_service(release: Release, team: str) -> None:
    service = rendered(team)["Service"]
    del service["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    message = refused_by_policy(release, dry_run(release, service))
    assert LABEL_DENIAL in message


def test_operator_token_cannot_expose_a_service_outside_the_cluster(
    release: Release, team: str
) -> None:
    service = rendered(team)["Service"]
    service["spec"]["type"] = "LoadBalancer"
    message = refused_by_policy(release, dry_run(release, service))
    assert "is of type ClusterIP, without externalIPs" in message


def _wildcard_host(ingress: dict[str, Any]) -> None:
    ingress["spec"]["rules"][0]["host"] = "*.example.com"


def _catch_all(ingress: dict[str, Any]) -> None:
    del ingress["spec"]["rules"][0]["host"]


def _default_backend(ingress: dict[str, Any]) -> None:
    ingress["spec"]["defaultBackend"] = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]


def _snippet(ingress: dict[str, Any]) -> None:
    annotation = "nginx.ingress.kubernetes.io/server-snippet"
    ingress["metadata"]["annotations"][annotation] = "location / { return 200; }"


@pytest.mark.parametrize(
    ("breaking", "message"),
    [
        (_wildcard_host, "routes only hosts of allowed.ingressHosts (*)"),
        (_catch_all, "each rule naming one"),
        (_default_backend, "and no default backend"),
        (_snippet, "carries only annotations of allowed.ingressAnnotations"),
    ],
)
def test_operator_token_cannot_route_beyond_the_allow_lists(
    release: Release, team: str, breaking: Any, message: str
) -> None:
    """The platform's allow-lists for ProductionServices bind the operator's token too."""
    ingress = rendered(team, EXPOSED)["Ingress"]
    breaking(ingress)
    assert message in refused_by_policy(release, dry_run(release, ingress))


def test_operator_token_cannot_take_over_or_delete_another_teams_service(
    cluster: ControlPlane, release: Release, team: str
) -> None:
    before = get(cluster, "service", "theirs", team)
    assert before is not None
    # Applying its own Service over theirs (labels added: the object was not labelled before).
    takeover = rendered(team)["Service"]
    takeover["metadata"]["name"] = "theirs"
    assert "before and after the change" in refused_by_policy(release, dry_run(release, takeover))
    labelling = release.as_operator(
        "label", "service", "theirs", "-n", team, "app.kubernetes.io/managed-by=prodready",
        "--dry-run=server",
    )  # fmt: skip
    refused_by_policy(release, labelling)
    deleting = release.as_operator("delete", "service", "theirs", "-n", team, "--dry-run=server")
    assert "may not DELETE /services" in refused_by_policy(release, deleting)
    after = get(cluster, "service", "theirs", team)
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_operator_token_writes_only_its_own_lease(release: Release, notes: str) -> None:
    # RBAC cannot limit `create` by name; the policy does.
    assert release.can("create", "leases", release.namespace)
    other = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "other", "namespace": release.namespace},
        "spec": {},
    }
    result = release.as_operator("create", "--dry-run=server", "-f", "-", input=json.dumps(other))
    assert "writes only its own Lease" in refused_by_policy(release, result)


def test_operator_token_writes_only_its_certificate_and_the_ca_bundle(
    release: Release, notes: str
) -> None:
    """What a stolen token could do with the certificate's grants: create one Secret by
    its name, patch one webhook configuration's caBundle; nothing else there."""
    other_secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "stolen", "namespace": release.namespace},
        "stringData": {"x": "y"},
    }
    result = release.as_operator(
        "create", "--dry-run=server", "-f", "-", input=json.dumps(other_secret)
    )
    assert "may not CREATE /secrets" in refused_by_policy(release, result)
    own = dict(other_secret, metadata={"name": f"{release.fullname}-webhook-tls"})
    own["metadata"]["namespace"] = release.namespace
    result = release.as_operator("create", "--dry-run=server", "-f", "-", input=json.dumps(own))
    # Admitted by the policy (it exists already, or the dry run succeeds).
    assert "ValidatingAdmissionPolicy" not in result.stderr, result.stderr
    # Its own webhook configuration: anything but the caBundle is refused.
    configuration = release.fullname
    for patch in (
        # (unreachable_webhook_ignored set every entry to Ignore: Fail is a change)
        [{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Fail"}],
        [{"op": "replace", "path": "/webhooks/0/timeoutSeconds", "value": 1}],
        [{"op": "remove", "path": "/webhooks/0/matchConditions"}],
        [{"op": "remove", "path": "/webhooks/4"}],
        [
            {
                "op": "add",
                "path": "/webhooks/0/namespaceSelector/matchExpressions/-",
                "value": {"key": "x", "operator": "Exists"},
            }
        ],
    ):
        result = release.as_operator(
            "patch", "validatingwebhookconfiguration", configuration, "--dry-run=server",
            "--type=json", "-p", json.dumps(patch),
        )  # fmt: skip
        message = refused_by_policy(release, result)
        assert "changes only the caBundle of its webhook configuration" in message, patch
    bundle = base64.b64encode(b"not a CA, but a caBundle change").decode()
    result = release.as_operator(
        "patch", "validatingwebhookconfiguration", configuration, "--dry-run=server",
        "--type=json", "-p",
        json.dumps([{"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": bundle}]),
    )  # fmt: skip
    assert "ValidatingAdmissionPolicy" not in result.stderr, result.stderr
    # Any other webhook configuration: RBAC refuses before the policy is asked.
    assert not release.can("patch", "validatingwebhookconfigurations/other")
    assert not release.can("get", "validatingwebhookconfigurations/other")
    assert release.can("patch", f"validatingwebhookconfigurations/{configuration}")
    assert not release.can("delete", f"validatingwebhookconfigurations/{configuration}")
    assert not release.can("delete", f"secrets/{release.fullname}-webhook-tls", release.namespace)


def test_upgrade_keeps_the_certificate_and_the_lease(
    cluster: ControlPlane, release: Release, notes: str
) -> None:
    # Created by the operator of test_operator_with_the_chart_credentials_reconciles_end_to_end.
    secret_before = release.get("secret", "prodready-webhook-tls")
    configuration_before: Any = cluster.kubectl_json(
        "get", "validatingwebhookconfiguration", release.fullname
    )
    lease_before = release.get("lease", "prodready")
    assert secret_before is not None, "the operator created no webhook certificate"
    assert lease_before is not None
    release.upgrade({"operator": {"logLevel": "DEBUG"}})
    deployment = release.get("deployment")
    assert deployment is not None
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["PRODREADY_LOG_LEVEL"] == "DEBUG"
    assert deployment["status"]["updatedReplicas"] == deployment["status"]["readyReplicas"] == 2
    secret_after = release.get("secret", "prodready-webhook-tls")
    assert secret_after is not None
    assert secret_after["data"] == secret_before["data"]
    configuration_after: Any = cluster.kubectl_json(
        "get", "validatingwebhookconfiguration", release.fullname
    )
    bundles = {
        w["clientConfig"]["caBundle"]
        for configuration in (configuration_before, configuration_after)
        for w in configuration["webhooks"]
    }
    # Helm's three-way merge keeps the caBundle the operator set (no manifest has one).
    assert bundles == {secret_before["data"]["ca.crt"]}
    # Helm never touches the Lease's spec: the operator's record of who leads survives.
    lease_after = release.get("lease", "prodready")
    assert lease_after is not None
    assert lease_after["spec"] == lease_before["spec"]
    assert lease_before["spec"].get("acquireTime")


def test_uninstall_leaves_nothing_of_the_release(
    cluster: ControlPlane, release: Release, notes: str
) -> None:
    release.uninstall()
    wait_for(
        lambda: not leftovers(cluster, release.namespace), 90, "the release namespace to be empty"
    )
    for kind in ("clusterrole", "clusterrolebinding", "validatingwebhookconfiguration"):
        result = cluster.kubectl("get", kind, release.fullname, check=False)
        assert "NotFound" in result.stderr, f"{kind} {release.fullname} is left"
    for kind in ("validatingadmissionpolicy", "validatingadmissionpolicybinding"):
        result = cluster.kubectl("get", kind, release.policy, check=False)
        assert "NotFound" in result.stderr, f"{kind} {release.policy} is left"
    # As Helm documents: CRDs from crds/ are never deleted (that would delete every
    # ProductionService in the cluster).
    assert CRD_NAME in crd_names(cluster)


# -- namespace-scoped mode ---------------------------------------------------------------


@pytest.fixture(scope="module")
def scoped(cluster: ControlPlane, cluster_crds: None) -> Iterator[tuple[Release, str]]:
    """The chart watching one namespace, as release `scoped` in its own namespace."""
    watched = "prodready-scoped-app"
    values = {"watch": {"namespaces": [watched]}, "allowed": {"serviceAccounts": ["app-*"]}}
    installed = Release(cluster, "scoped", "prodready-scoped", values)
    for namespace in (installed.namespace, watched):
        cluster.kubectl("create", "namespace", namespace)
    try:
        installed.install()
        unreachable_webhook_ignored(installed)
        wait_for_operator_policy(installed, watched)
        yield installed, watched
    finally:
        _teardown(installed)
        cluster.kubectl("delete", "namespace", watched, "--wait=false", check=False)


def test_namespace_scoped_install_reconciles_only_with_roles(
    cluster: ControlPlane, scoped: tuple[Release, str], namespace: str, tmp_path: Path
) -> None:
    release, watched = scoped
    assert get(cluster, "role", release.fullname, watched) is not None
    started = now()
    operator = release.start_operator(tmp_path / "operator.log", tmp_path)
    try:
        # First a service outside the watched namespace, then one inside: once the second is
        # Ready, the first would have been reconciled too, had the operator seen it.
        cluster.kubectl("apply", "-n", namespace, "-f", str(MINIMAL))
        cluster.kubectl("apply", "-n", watched, "-f", str(MINIMAL))

        def ready() -> bool:
            service = get(cluster, "productionservice", "hello", watched)
            return condition(service, "Ready").get("status") == "True"

        wait_for(ready, 120, "hello Ready in the watched namespace")
        outside = get(cluster, "productionservice", "hello", namespace)
        assert outside is not None
        assert "status" not in outside
        assert get(cluster, "deployment", "hello", namespace) is None
    finally:
        assert operator.stop() == 0
    writes = release.writes(started)
    assert denied(writes) == []
    assert operator_refusals(writes) == []
    assert permission_problems(operator) == []
    assert release.can("patch", "deployments", watched)
    assert not release.can("patch", "deployments", namespace)
    assert not release.can("get", "secrets", namespace)
    assert not release.can("list", "deployments", None)
    assert release.can("watch", "namespaces", None)


def test_namespace_scoped_token_is_confined_too(scoped: tuple[Release, str]) -> None:
    release, watched = scoped
    # Outside the watched namespaces RBAC already refuses; inside, the policy does.
    outside = dry_run(release, hostile_deployment("kube-system"))
    assert outside.returncode != 0
    assert RBAC_DENIAL.search(outside.stderr), outside.stderr
    inside = refused_by_policy(release, dry_run(release, hostile_deployment(watched)))
    assert "may not use the node's namespaces" in inside
    # The platform's allow-list of ServiceAccounts binds the operator's token too.
    deployment = rendered(watched)["Deployment"]
    deployment["spec"]["template"]["spec"]["serviceAccountName"] = "admin"
    message = refused_by_policy(release, dry_run(release, deployment))
    assert "may run only as a ServiceAccount of allowed.serviceAccounts (app-*)" in message
    deployment["spec"]["template"]["spec"]["serviceAccountName"] = "app-web"
    allowed = dry_run(release, deployment)
    assert allowed.returncode == 0, allowed.stderr


# -- OpenShift-style install; the operator's own webhook certificate ---------------------

CERTIFICATE_VALIDITY_SECONDS = 45  # renewed when 15 s are left, read every 4.5 s


@pytest.fixture(scope="module")
def openshift(cluster: ControlPlane, cluster_crds: None) -> Iterator[Release]:
    """The chart with `podSecurityContext.runAsUser: null` (restricted-v2 assigns the IDs),
    installed as release `assigned` in its own namespace: the pods must become Ready."""
    values = {"podSecurityContext": {"runAsUser": None}}
    installed = Release(cluster, "assigned", "prodready-assigned", values)
    cluster.kubectl("create", "namespace", installed.namespace)
    try:
        installed.install()
        yield installed
    finally:
        _teardown(installed)


def test_installs_with_the_user_left_to_the_platform(openshift: Release) -> None:
    deployment = openshift.get("deployment")
    assert deployment is not None
    assert deployment["status"]["readyReplicas"] == deployment["spec"]["replicas"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (main,) = pod["containers"]
    assert not {"runAsUser", "runAsGroup"} & set(main["securityContext"])
    # The chart rendered no certificate and no caBundle: the operator provides both.
    assert openshift.get("secret", f"{openshift.fullname}-webhook-tls") is None
    configuration: Any = openshift.cluster.kubectl_json(
        "get", "validatingwebhookconfiguration", openshift.fullname
    )
    assert all("caBundle" not in w["clientConfig"] for w in configuration["webhooks"])


def _served_certificate(port: int) -> bytes:
    """The DER certificate the webhook on 127.0.0.1:`port` serves (not verified here)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        served = tls.getpeercert(binary_form=True)
    assert served is not None
    return served


def _der(pem_base64: str) -> bytes:
    pem = base64.b64decode(pem_base64)
    return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)


def _redirect_to(release: Release, port: int) -> None:
    """What kwok cannot do, done by the admin: the release's webhook configuration sends
    to the local operator (url instead of the Service) and only namespaces labelled
    E2E_LABEL (no other test waits on it). The operator's caBundle stays as it set it."""
    name = release.fullname
    configuration: Any = release.cluster.kubectl_json("get", "validatingwebhookconfiguration", name)
    patch = []
    for index, webhook in enumerate(configuration["webhooks"]):
        path = webhook["clientConfig"]["service"]["path"]
        patch += [
            {"op": "remove", "path": f"/webhooks/{index}/clientConfig/service"},
            {
                "op": "add",
                "path": f"/webhooks/{index}/clientConfig/url",
                "value": f"https://127.0.0.1:{port}{path}",
            },
            {
                "op": "add",
                "path": f"/webhooks/{index}/namespaceSelector/matchExpressions/-",
                "value": {"key": E2E_LABEL, "operator": "Exists"},
            },
        ]
    release.cluster.kubectl(
        "patch", "validatingwebhookconfiguration", name, "--type=json", "-p", json.dumps(patch)
    )


def test_the_apiserver_calls_the_webhook_with_the_operators_own_certificate_and_its_renewals(
    cluster: ControlPlane, openshift: Release, tmp_path: Path
) -> None:
    env = openshift.operator_env(tmp_path)
    # The apiserver reaches the local process at 127.0.0.1 (kwok runs no container), so the
    # certificate names it too; short-lived, to see it renewed.
    env["PRODREADY_WEBHOOK_CERT_HOSTS"] += ",127.0.0.1"
    env["PRODREADY_WEBHOOK_CERT_VALIDITY_SECONDS"] = str(CERTIFICATE_VALIDITY_SECONDS)
    secret_name = f"{openshift.fullname}-webhook-tls"
    operator = start_operator(
        cluster,
        tmp_path / "operator.log",
        kubeconfig=cluster.mint_kubeconfig(openshift.fullname, openshift.namespace),
        standalone=False,
        env=env,
    )
    namespace = "prodready-assigned-enforced"
    try:
        port = int(log_field(operator, "admission webhook listening", "port"))

        def trusted() -> dict[str, Any] | None:
            secret = openshift.get("secret", secret_name)
            configuration: Any = cluster.kubectl_json(
                "get", "validatingwebhookconfiguration", openshift.fullname
            )
            bundles = {w["clientConfig"].get("caBundle") for w in configuration["webhooks"]}
            if secret is None or bundles != {secret["data"]["ca.crt"]}:
                return None
            return secret

        first = wait_for(trusted, 60, "the operator's Secret and the caBundle it sets")
        owners = first["metadata"]["ownerReferences"]
        assert [(o["kind"], o["name"]) for o in owners] == [
            ("ValidatingWebhookConfiguration", openshift.fullname)
        ]
        assert _served_certificate(port) == _der(first["data"]["tls.crt"])
        _redirect_to(openshift, port)
        cluster.kubectl("create", "namespace", namespace)
        label_namespace(cluster, namespace, "prodready.io/enforce=true", f"{E2E_LABEL}=true")

        def review() -> subprocess.CompletedProcess[str]:
            document = json.dumps(bare_deployment("bare", namespace))
            return cluster.kubectl(
                "create", "--dry-run=server", "-f", "-", input=document, check=False
            )

        # The call: denied by the webhook, so the apiserver verified the operator's
        # certificate against the caBundle the operator set.
        denied = wait_for(
            lambda: (
                (result := review()).returncode != 0
                and "denied the request" in result.stderr
                and result
            ),
            30,
            "the webhook's denial",
        )
        assert "PR-HC-001" in denied.stderr, denied.stderr
        # Renewal: reviews keep being answered (each one a denial by the webhook, never
        # "failed calling webhook") until a renewed certificate is served and trusted and
        # the first one has expired.
        answers = failures = 0
        deadline = time.monotonic() + 3 * CERTIFICATE_VALIDITY_SECONDS
        renewed: dict[str, Any] | None = None
        first_expired = False
        while time.monotonic() < deadline and not (renewed and first_expired):
            result = review()
            if "denied the request" in result.stderr:
                answers += 1
            else:
                failures += 1
                print(result.stderr)
            current = trusted()
            if (
                current
                and current["data"]["tls.crt"] != first["data"]["tls.crt"]
                and _served_certificate(port) == _der(current["data"]["tls.crt"])
            ):
                renewed = current
            first_expired = _expired(first["data"]["tls.crt"])
            time.sleep(0.5)
        assert renewed is not None, "no renewed certificate was served and trusted"
        assert first_expired
        assert failures == 0, f"{failures} reviews failed, {answers} answered"
        assert answers >= 10
        assert operator_refusals(openshift.writes("1970-01-01T00:00:00")) == []
    finally:
        assert operator.stop() == 0
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    assert permission_problems(operator) == []


def _expired(pem_base64: str) -> bool:
    certificate = x509.load_pem_x509_certificate(base64.b64decode(pem_base64))
    return certificate.not_valid_after_utc < datetime.datetime.now(datetime.UTC)
