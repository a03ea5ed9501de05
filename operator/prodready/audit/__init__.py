"""The in-cluster audit.

* `inventory.Inventory` — workloads and their context by namespace, fed by kopf watches;
  the admission webhook judges requests with the same context.
* `schedule.DirtyNamespaces` — which namespace is audited when: debounced, no timers.
"""
