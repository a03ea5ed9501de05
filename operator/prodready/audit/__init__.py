"""The in-cluster audit and the policy reports it writes.

The object store it reads (`prodready.kube.store`) and the event recorder it posts with
(`prodready.kube.events`) live in `kube`; `prodready.app.policy` starts and stops the audit
and the webhook with the operator.

* `schedule.DirtyNamespaces` — which namespace is audited when: debounced, no timers.
* `auditor.Auditor` — the leader's loop: dirty namespaces evaluated in one pass each;
  metrics, PolicyViolation events and reports.
* `reports` — OpenReports / PolicyReport objects as plain data: `build_report`,
  `content_digest`, `parse_report`.
* `command` — `prodready report`.
"""

import prodready.kube  # noqa: F401 - first, so that kopf comes without the official client
