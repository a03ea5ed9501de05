"""The in-cluster audit and the policy reports it writes.

* `inventory.Inventory` — workloads and their context by namespace, fed by kopf watches;
  the admission webhook judges requests with the same context.
* `schedule.DirtyNamespaces` — which namespace is audited when: debounced, no timers.
* `auditor.Auditor` — the leader's loop: dirty namespaces evaluated in one pass each;
  metrics, PolicyViolation events and reports.
* `reports` — OpenReports / PolicyReport objects as plain data: `build_report`,
  `content_digest`, `parse_report`.
* `runtime.PolicyRuntime` — starts and stops the audit and the webhook with the operator.
* `command` — `prodready report`.
"""
