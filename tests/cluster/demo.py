"""`make demo`: the operator on the local control plane, doing its whole job, explained.

Runs after `make cluster`. Installs the CRDs (ours, prometheus-operator's monitoring CRDs
and the OpenReports report CRD), registers the admission webhook for the local operator (a
ValidatingWebhookConfiguration with `url: https://127.0.0.1:PORT`; the operator creates its
own certificate, as in a cluster, and sets the caBundle), starts `prodready run` in the
background (log in .local/operator.log), applies examples/, waits until every
ProductionService is Ready, then applies one hand-written Deployment to a namespace in
enforce mode (denied, the reasons printed) and to one in audit mode (admitted, the warnings
printed), and ends with `prodready report` on the audited namespace. Running it twice
restarts the operator and re-applies everything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from prodready.webhook.configuration import AUDIT_LABEL, ENFORCE_LABEL, render_webhook_configuration
from tests.cluster.controlplane import REPO, default_bin_dir, kill_recorded

NAMESPACE = "demo"
CONDITIONS_JSONPATH = (
    "jsonpath={range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{'\\n'}{end}"
)
HEALTH_PORT = int(os.environ.get("PRODREADY_HEALTH_PORT", "8080"))
WEBHOOK_PORT = int(os.environ.get("PRODREADY_WEBHOOK_PORT", "9443"))
EXAMPLES = ("secret.yaml", "fastapi-postgres-redis.yaml", "minimal.yaml")
FIXTURE_CRDS = REPO / "tests" / "fixtures" / "crds"
MONITORING_CRDS = sorted(FIXTURE_CRDS.glob("monitoring.coreos.com_*"))
REPORT_CRDS = [FIXTURE_CRDS / "openreports.io_reports.yaml"]
# The operator's namespace when run locally (POD_NAMESPACE): its certificate's Secret lives
# there, and the webhook never checks it.
OPERATOR_NAMESPACE = "default"
WEBHOOK_CONFIGURATION = "prodready-demo"
WEBHOOK_SECRET = "prodready-demo-webhook-tls"
ENFORCED, AUDITED = "demo-enforce", "demo-audit"
# A Deployment as people write them before a checklist: no probes, no resources, `latest`.
HAND_WRITTEN = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:latest"}]},
        },
    },
}
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


class Demo:
    """One run of the demo against the cluster in `local`."""

    def __init__(self, local: Path) -> None:
        self.local = local.resolve()
        self.kubeconfig = self.local / "kubeconfig"
        self.kubectl_path = default_bin_dir() / "kubectl"

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        result = subprocess.run(
            [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if check and result.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def install_crds(self) -> None:
        step("Installing the CRDs (ProductionService, ServiceMonitor, PrometheusRule, Report)")
        ours = sorted((REPO / "crds").glob("prodready.io_*.yaml"))
        for path in [*ours, *MONITORING_CRDS, *REPORT_CRDS]:
            self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
            name = yaml.safe_load(path.read_text())["metadata"]["name"]
            self.wait_established(name)

    def wait_established(self, crd: str) -> None:
        # Polled: `kubectl wait` fails at once when the CRD has no conditions yet.
        jsonpath = "jsonpath={.status.conditions[?(@.type=='Established')].status}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.kubectl("get", "crd", crd, "-o", jsonpath, check=False).strip() == "True":
                return
            time.sleep(0.2)
        raise SystemExit(f"CRD {crd} was not Established within 60 s")

    def start_operator(self) -> None:
        kill_recorded(self.local / "operator.state.json")
        step("Starting the operator (prodready run), log in .local/operator.log")
        env = dict(os.environ)
        env.update(
            {
                "KUBECONFIG": str(self.kubeconfig),
                "PRODREADY_HEALTH_PORT": str(HEALTH_PORT),
                "PRODREADY_STANDALONE": "true",
                # The demo shows /metrics with a plain curl; the chart keeps it authenticated.
                "PRODREADY_METRICS_AUTH": "false",
                "POD_NAMESPACE": OPERATOR_NAMESPACE,
                # The webhook on the loopback, with the certificate the operator creates,
                # renews and puts into the webhook configuration's caBundle itself.
                "PRODREADY_WEBHOOK_HOST": "127.0.0.1",
                "PRODREADY_WEBHOOK_PORT": str(WEBHOOK_PORT),
                "PRODREADY_WEBHOOK_CERT_SECRET_NAME": WEBHOOK_SECRET,
                "PRODREADY_WEBHOOK_CERT_HOSTS": "127.0.0.1,localhost",
                "PRODREADY_WEBHOOK_CONFIGURATION": WEBHOOK_CONFIGURATION,
            }
        )
        log = (self.local / "operator.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "prodready", "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=REPO,
            start_new_session=True,
        )
        log.close()
        state = {"pids": {"operator": process.pid}}
        (self.local / "operator.state.json").write_text(json.dumps(state))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = (self.local / "operator.log").read_text()[-3000:]
                raise SystemExit(f"the operator exited ({process.returncode}):\n{tail}")
            if _http_status(f"http://127.0.0.1:{HEALTH_PORT}/readyz") == 200:
                print(f"  ready: http://127.0.0.1:{HEALTH_PORT}/readyz answers 200")
                return
            time.sleep(0.5)
        raise SystemExit("the operator did not become ready within 60 s; see .local/operator.log")

    def register_webhook(self) -> None:
        step(f"Registering the admission webhook (https://127.0.0.1:{WEBHOOK_PORT})")
        configuration = render_webhook_configuration(
            operator_namespace=OPERATOR_NAMESPACE,
            url=f"https://127.0.0.1:{WEBHOOK_PORT}",
            name=WEBHOOK_CONFIGURATION,
            timeout_seconds=10,
        )
        # Server-side apply without caBundle: the operator's value of it is kept.
        self.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=prodready-demo",
            "-f", "-", input=json.dumps(configuration),
        )  # fmt: skip
        print(f"  validatingwebhookconfiguration/{WEBHOOK_CONFIGURATION}: 5 entries")

    def wait_trusted(self) -> None:
        """Until the operator's certificate is in the webhook configuration's caBundle."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            secret = self.kubectl(
                "get", "secret", WEBHOOK_SECRET, "-n", OPERATOR_NAMESPACE,
                "-o", "jsonpath={.data.ca\\.crt}", check=False,
            ).strip()  # fmt: skip
            bundles = set(
                self.kubectl(
                    "get", "validatingwebhookconfiguration", WEBHOOK_CONFIGURATION,
                    "-o", "jsonpath={range .webhooks[*]}{.clientConfig.caBundle}{'\\n'}{end}",
                    check=False,
                ).split()
            )  # fmt: skip
            if secret and bundles == {secret}:
                print(
                    f"  the operator created secret/{WEBHOOK_SECRET} (a CA and a serving "
                    "certificate) and set the caBundle"
                )
                return
            time.sleep(0.5)
        raise SystemExit(
            "the operator did not set the webhook configuration's caBundle within 60 s; "
            f"see {self.local / 'operator.log'}"
        )

    def admission(self) -> None:
        step(f"Admission: namespace {ENFORCED} enforces the checklist, {AUDITED} audits it")
        for namespace, label in ((ENFORCED, ENFORCE_LABEL), (AUDITED, AUDIT_LABEL)):
            self.kubectl("create", "namespace", namespace, check=False)
            self.kubectl("label", "namespace", namespace, "--overwrite", f"{label}=true")
            print(f"  namespace/{namespace} labelled {label}=true")
        document = json.dumps(HAND_WRITTEN)
        print(f"\n  {BOLD}kubectl apply -n {ENFORCED} -f web.yaml{RESET}  (no probes, no limits)")
        denied = self.kubectl_result("apply", "-n", ENFORCED, "-f", "-", input=document)
        if denied.returncode == 0:
            raise SystemExit(f"the webhook admitted deployment/web in {ENFORCED}")
        print(indent(denied.stderr))
        # Created anew on every run, so the webhook is asked (an unchanged apply is not sent).
        self.kubectl("delete", "deployment", "web", "-n", AUDITED, "--ignore-not-found")
        print(f"\n  {BOLD}kubectl apply -n {AUDITED} -f web.yaml{RESET}")
        admitted = self.kubectl_result("apply", "-n", AUDITED, "-f", "-", input=document)
        if admitted.returncode != 0:
            raise SystemExit(f"deployment/web was refused in {AUDITED}: {admitted.stderr}")
        print(indent(admitted.stderr + admitted.stdout))

    def report(self) -> None:
        step(f"prodready report -n {AUDITED}  (what the in-cluster audit wrote)")
        deadline = time.monotonic() + 90
        output = ""
        while time.monotonic() < deadline:
            result = subprocess.run(
                [sys.executable, "-m", "prodready", "report", "-n", AUDITED],
                env=dict(os.environ, KUBECONFIG=str(self.kubeconfig)),
                capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
            )  # fmt: skip
            output = result.stdout
            if f"Deployment {AUDITED}/web" in output:
                print(indent(output))
                return
            time.sleep(1)
        raise SystemExit(f"no report for deployment/web within 90 s:\n{output}")

    def kubectl_result(
        self, *args: str, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args],
            input=input, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip

    def apply_examples(self) -> list[str]:
        step(f"Applying examples/ to namespace {NAMESPACE}")
        self.kubectl("create", "namespace", NAMESPACE, check=False)
        names = []
        for example in EXAMPLES:
            path = REPO / "examples" / example
            print("  " + self.kubectl("apply", "-n", NAMESPACE, "-f", str(path)).strip())
            for doc in yaml.safe_load_all(path.read_text()):
                if doc and doc.get("kind") == "ProductionService":
                    names.append(doc["metadata"]["name"])
        return names

    def wait_ready(self, names: list[str]) -> None:
        step("Waiting until every ProductionService is Ready (kubectl wait)")
        for name in names:
            waited = self.kubectl(
                "wait", "-n", NAMESPACE, "--for=condition=Ready",
                f"productionservice/{name}", "--timeout=120s", check=False,
            )  # fmt: skip
            if "condition met" not in waited:
                conditions = self.kubectl(
                    "get", "productionservice", name, "-n", NAMESPACE,
                    "-o", CONDITIONS_JSONPATH,
                    check=False,
                )  # fmt: skip
                raise SystemExit(
                    f"productionservice/{name} did not become Ready within 120 s:\n"
                    f"{conditions}\noperator log: {self.local / 'operator.log'}"
                )
            print(f"  productionservice/{name} condition met")

    def show(self, names: list[str]) -> None:
        step("ProductionServices")
        print(indent(self.kubectl("get", "productionservices", "-n", NAMESPACE)))
        step("What the operator generated")
        print(
            indent(
                self.kubectl(
                    "get",
                    "deployments,services,pdb,hpa,ingresses,servicemonitors,prometheusrules",
                    "-n",
                    NAMESPACE,
                    "-l",
                    "app.kubernetes.io/managed-by=prodready",
                )
            )
        )
        for name in names:
            obj = json.loads(
                self.kubectl("get", "productionservice", name, "-n", NAMESPACE, "-o", "json")
            )
            self.describe(obj)

    def describe(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        step(f"productionservice/{name}: conditions")
        for condition in status.get("conditions", []):
            print(
                f"  {condition['type']:<16} {condition['status']:<6} {condition['reason']:<22} "
                f"{DIM}{condition['message']}{RESET}"
            )
        compliance = status.get("compliance") or {}
        if compliance:
            verdict = "compliant" if compliance.get("compliant") else "NOT compliant"
            print(
                f"\n  checklist: {verdict}, score {compliance.get('score')}/100, "
                f"{compliance.get('errors', 0)} errors, {compliance.get('warnings', 0)} warnings, "
                f"{compliance.get('skipped', 0)} exempted"
            )
            for finding in compliance.get("findings", []):
                print(f"  {finding['result']:<5} {finding['ruleId']:<10} {finding['message']}")
        deployment = json.loads(
            self.kubectl("get", "deployment", name, "-n", NAMESPACE, "-o", "json")
        )
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        print(f"\n  {BOLD}deployment/{name}{RESET} is production-ready by construction:")
        print(
            f"    probes: liveness {container['livenessProbe']['httpGet']['path']}, "
            f"readiness {container['readinessProbe']['httpGet']['path']}, "
            f"startup {'yes' if 'startupProbe' in container else 'no'}"
        )
        print(
            f"    shutdown: terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']}, "
            f"preStop {json.dumps(container.get('lifecycle', {}).get('preStop'))}"
        )
        secret_env = [e["name"] for e in container.get("env", []) if "valueFrom" in e]
        print(f"    secrets by reference only: {', '.join(secret_env) or 'none'}")
        security = container.get("securityContext", {})
        print(
            f"    securityContext: runAsNonRoot={security.get('runAsNonRoot')}, "
            f"readOnlyRootFilesystem={security.get('readOnlyRootFilesystem')}, "
            f"drop={security.get('capabilities', {}).get('drop')}"
        )

    def next_steps(self) -> None:
        step("Poke at it")
        kubeconfig = self.kubeconfig
        bin_dir = default_bin_dir().resolve()
        print(f"""  export KUBECONFIG={kubeconfig}
  export PATH={bin_dir}:$PATH
  kubectl get productionservices -n {NAMESPACE}
  kubectl describe productionservice orders-api -n {NAMESPACE}
  kubectl explain productionservice.spec.health
  kubectl delete service orders-api -n {NAMESPACE}   # drift: watch it come back
  kubectl -n {OPERATOR_NAMESPACE} get secret {WEBHOOK_SECRET}   # the webhook's certificate
  .venv/bin/prodready report -A                       # every namespace's findings
  curl -s localhost:{HEALTH_PORT}/metrics | grep prodready_
  tail -f {self.local / "operator.log"}
  make cluster-down                                   # stop everything""")


def step(title: str) -> None:
    print(f"\n{BOLD}== {title}{RESET}")


def indent(text: str) -> str:
    return "\n".join("  " + line for line in text.rstrip().splitlines())


def _http_status(url: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster.demo")
    parser.add_argument("--dir", type=Path, default=Path(".local"))
    args = parser.parse_args(argv)
    demo = Demo(args.dir)
    demo.install_crds()
    demo.register_webhook()
    demo.start_operator()
    demo.wait_trusted()
    names = demo.apply_examples()
    demo.wait_ready(names)
    demo.show(names)
    demo.admission()
    demo.report()
    demo.next_steps()
    return 0


if __name__ == "__main__":
    sys.exit(main())
