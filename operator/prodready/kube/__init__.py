"""The only code that talks to the apiserver, and the state the process shares.

* `client.KubeClient` — login, requests, server-side apply, discovery; `Resource`.
* `inventory.Inventory` — workloads and their context by namespace, fed by kopf watches;
  the audit evaluates it and the admission webhook judges requests with it.
* `events.EventRecorder` — core/v1 Events on the objects the operator acts on.
* `access` — who may read /metrics (TokenReview, SubjectAccessReview).
* `interning` — one copy of the strings every cached object repeats.
"""
