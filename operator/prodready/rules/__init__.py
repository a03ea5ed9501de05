"""The production-readiness checklist as rules: one engine for CI, the webhook and the audit.

Public API (stable; the operator, the admission webhook, the in-cluster audit and
`prodready validate` all call exactly this):

```python
from prodready.rules import evaluate, to_admission_response, load_config

reports = evaluate(objects, config=load_config("prodready.yaml"), environment="prod")
for report in reports:                      # one ObjectReport per workload, input order
    report.object                           # ObjectRef(api_version, kind, namespace, name)
    report.environment, report.compliant, report.score, report.counts
    for finding in report.findings:         # Finding: rule_id, title, severity, result,
        ...                                 #   object, container, path, message, fix, patch
response = to_admission_response(reports[0], uid=request_uid, enforce=True)
```

* `evaluate(objects, *, config=None, environment=None, limits=DEFAULT_LIMITS,
  deadline=None) -> list[ObjectReport]` — every
  input object is context (Services, PDBs, ServiceMonitors/PodMonitors, Ingresses,
  PrometheusRules, HPAs, Secrets, ConfigMaps, Namespaces); Deployments, StatefulSets,
  DaemonSets, Jobs, CronJobs, Pods no controller owns, and ProductionServices (through
  their rendered objects) are evaluated. `environment` is the default profile for objects
  that declare none (see `prodready.rules.engine` for the precedence; undeclared → prod).
* `ObjectReport` — `object`, `environment`, `environment_source`, `findings`, `counts`,
  `score` (0-100, passed checks weighted error 3 / warning 1, skips left out),
  `compliant` (no error-severity failure) and `input_index` (the object's position in the
  input).
* `Finding` — `result` is `pass`, `fail` (a failing error-severity rule), `warn` (a
  failing warning-severity rule) or `skip` (exempted; the message carries the reason);
  `path` points into the object (`spec.template.spec.containers[0].livenessProbe`);
  `patch` is an RFC 6902 JSON patch that fixes it, when one can be derived.
* `Limits`, `Deadline`, `DeadlineExceeded` — bounded work (`prodready.rules.limits`): a
  workload over a cap gets one PR-LM-001 error instead of its rules; past a `Deadline`,
  `evaluate` raises `DeadlineExceeded` rather than return partial reports.
* `RulesConfig`, `load_config(path)`, `ConfigError` — the configuration file.
* `RULES`, `Rule` — the registry: id, title, seed section, default severity, why, fix.
* `to_admission_response(report, *, uid, enforce) -> dict` — the AdmissionReview
  `response`, within the API server's warning limits.

Nothing here does I/O (except `load_config`) or imports kopf or a Kubernetes client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prodready.rules.admission import limit_warnings, to_admission_response
    from prodready.rules.config import ConfigError, RulesConfig, load_config
    from prodready.rules.engine import evaluate
    from prodready.rules.limits import DEFAULT_LIMITS, Deadline, DeadlineExceeded, Limits
    from prodready.rules.model import (
        Counts,
        Environment,
        Finding,
        ObjectRef,
        ObjectReport,
        Result,
        Severity,
    )
    from prodready.rules.registry import RULES, RULES_BY_ID, Rule

# Each name is imported from its module when first asked for, so importing one submodule
# (`prodready validate` imports rules.command) does not import the others.
_HOMES = {
    "DEFAULT_LIMITS": "limits",
    "RULES": "registry",
    "RULES_BY_ID": "registry",
    "ConfigError": "config",
    "Counts": "model",
    "Deadline": "limits",
    "DeadlineExceeded": "limits",
    "Environment": "model",
    "Finding": "model",
    "Limits": "limits",
    "ObjectRef": "model",
    "ObjectReport": "model",
    "Result": "model",
    "Rule": "registry",
    "RulesConfig": "config",
    "Severity": "model",
    "evaluate": "engine",
    "limit_warnings": "admission",
    "load_config": "config",
    "to_admission_response": "admission",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_LIMITS",
    "RULES",
    "RULES_BY_ID",
    "ConfigError",
    "Counts",
    "Deadline",
    "DeadlineExceeded",
    "Environment",
    "Finding",
    "Limits",
    "ObjectRef",
    "ObjectReport",
    "Result",
    "Rule",
    "RulesConfig",
    "Severity",
    "evaluate",
    "limit_warnings",
    "load_config",
    "to_admission_response",
]
