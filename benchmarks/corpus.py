"""A deterministic corpus of workload manifests for the offline-validate benchmark.

Each application is what a team keeps in one directory of a GitOps repository: a
workload (a Deployment, or now and then a StatefulSet) with its Service, and — for the
careful teams — a PodDisruptionBudget, a ServiceMonitor, a PrometheusRule and an Ingress.
About a third of the applications are fully production-ready; the rest each break one to
four things the checklist (and the peers' checks) look at: missing probes, `latest`
images, no resources, root containers, literal secrets, a single replica, no PDB…

The applications are written into files of `APPS_PER_FILE` (a file per team, as `helm
template` or kustomize output usually is), so per-file overheads count, but do not
dominate. The same seed always writes byte-identical files.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

APPS_PER_FILE = 20
DEFECTS = (
    "no-liveness",
    "no-readiness",
    "exec-probe",
    "latest-image",
    "no-resources",
    "root",
    "literal-secret",
    "single-replica",
    "no-pdb",
    "no-monitoring",
    "debug-on",
    "text-logs",
    "short-grace",
    "no-prestop",
)
ENVIRONMENTS = ("prod", "prod", "staging", "dev")


@dataclass(frozen=True)
class Corpus:
    """What was written: where, and how many objects of which role."""

    directory: Path
    files: int
    workloads: int
    objects: int
    compliant_apps: int


def _deployment(name: str, namespace: str, env: str, defects: set[str], rng: random.Random) -> Any:
    labels = {"app.kubernetes.io/name": name, "prodready.io/environment": env}
    tag = "latest" if "latest-image" in defects else f"1.{rng.randrange(30)}.{rng.randrange(10)}"
    container: dict[str, Any] = {
        "name": "app",
        "image": f"registry.example.com/{namespace}/{name}:{tag}",
        "ports": [
            {"name": "http", "containerPort": 8000},
            {"name": "metrics", "containerPort": 9090},
        ],
        "env": [
            {"name": "LOG_FORMAT", "value": "text" if "text-logs" in defects else "json"},
            {"name": "LOG_LEVEL", "value": "INFO"},
            {"name": "DEBUG", "value": "true" if "debug-on" in defects else "false"},
            {"name": "CORS_ALLOWED_ORIGINS", "value": f"https://{name}.example.com"},
            {"name": "RATE_LIMIT", "value": "100/minute"},
            {
                "name": "DATABASE_URL",
                "valueFrom": {"secretKeyRef": {"name": f"{name}-db", "key": "url"}},
            },
        ],
        "resources": {
            "requests": {"cpu": f"{rng.choice((50, 100, 250, 500))}m", "memory": "128Mi"},
            "limits": {"memory": "256Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if "literal-secret" in defects:
        container["env"].append({"name": "API_TOKEN", "value": "s3cr3t-" + name})
    if "no-liveness" not in defects:
        container["livenessProbe"] = {
            "httpGet": {"path": "/livez", "port": "http"},
            "initialDelaySeconds": 10,
            "periodSeconds": 30,
        }
    if "no-readiness" not in defects:
        container["readinessProbe"] = {
            "httpGet": {"path": "/readyz", "port": "http"},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
        }
    if "exec-probe" in defects and "livenessProbe" in container:
        container["livenessProbe"] = {"exec": {"command": ["true"]}, "periodSeconds": 30}
    if "no-resources" in defects:
        del container["resources"]
    if "root" in defects:
        container["securityContext"] = {"runAsUser": 0, "allowPrivilegeEscalation": True}
    if "no-prestop" not in defects:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": 5}}}
    replicas = 1 if "single-replica" in defects else rng.choice((2, 3, 3, 5))
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "app.kubernetes.io/name": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 10 if "short-grace" in defects else 40,
                    "securityContext": {"runAsNonRoot": "root" not in defects},
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def _as_statefulset(deployment: dict[str, Any]) -> dict[str, Any]:
    spec = dict(deployment["spec"])
    del spec["strategy"]
    spec["serviceName"] = deployment["metadata"]["name"]
    spec["updateStrategy"] = {"type": "RollingUpdate"}
    return {**deployment, "kind": "StatefulSet", "spec": spec}


def _context(name: str, namespace: str, defects: set[str], rng: random.Random) -> list[Any]:
    objects: list[Any] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/name": name},
            },
            "spec": {
                "selector": {"app": name},
                "ports": [
                    {"name": "http", "port": 80, "targetPort": "http"},
                    {"name": "metrics", "port": 9090, "targetPort": "metrics"},
                ],
            },
        }
    ]
    if "no-pdb" not in defects:
        objects.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": name}}},
            }
        )
    if "no-monitoring" not in defects:
        objects.append(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "ServiceMonitor",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                    "endpoints": [{"port": "metrics"}],
                },
            }
        )
        objects.append(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "PrometheusRule",
                "metadata": {
                    "name": f"{name}-alerts",
                    "namespace": namespace,
                    "labels": {"app.kubernetes.io/name": name},
                },
                "spec": {
                    "groups": [
                        {
                            "name": name,
                            "rules": [
                                {
                                    "alert": "HighErrorRate",
                                    "expr": f'sum(rate(http_requests_total{{job="{name}",'
                                    'status=~"5.."}[5m])) > 1',
                                    "for": "5m",
                                }
                            ],
                        }
                    ]
                },
            }
        )
    if rng.random() < 0.2:
        objects.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "annotations": {"nginx.ingress.kubernetes.io/limit-rps": "20"},
                },
                "spec": {
                    "tls": [{"hosts": [f"{name}.example.com"], "secretName": f"{name}-tls"}],
                    "rules": [
                        {
                            "host": f"{name}.example.com",
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {
                                            "service": {"name": name, "port": {"name": "http"}}
                                        },
                                    }
                                ]
                            },
                        }
                    ],
                },
            }
        )
    return objects


def generate(directory: Path, workloads: int = 10_000, seed: int = 20_240_601) -> Corpus:
    """Write `workloads` applications (and their context objects) under `directory`."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    objects = files = compliant = 0
    for first in range(0, workloads, APPS_PER_FILE):
        team = f"team-{first // APPS_PER_FILE:04d}"
        documents: list[Any] = []
        for index in range(first, min(first + APPS_PER_FILE, workloads)):
            name = f"svc-{index:05d}"
            defects = set() if rng.random() < 0.35 else set(rng.sample(DEFECTS, rng.randint(1, 4)))
            compliant += not defects
            workload = _deployment(name, team, rng.choice(ENVIRONMENTS), defects, rng)
            if rng.random() < 0.1:
                workload = _as_statefulset(workload)
            documents.append(workload)
            documents.extend(_context(name, team, defects, rng))
        path = directory / f"{team}.yaml"
        path.write_text(yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, width=120))
        objects += len(documents)
        files += 1
    return Corpus(directory, files, workloads, objects, compliant)


_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[misc, valid-type]
    """Block style and no anchors/aliases: what a person or `helm template` writes."""

    def ignore_aliases(self, data: Any) -> bool:
        return True
