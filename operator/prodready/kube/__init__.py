"""The only code that talks to the apiserver, and the state the process shares.

* `client.KubeClient` — login, requests, server-side apply, discovery.
* `store.ObjectStore` — the one object store: every watched object, fed by kopf watches,
  seeded once per kind, indexed by namespace, kind and controlling owner; the controller,
  the audit and the admission webhook all read it.
* `leader.LeaderElector` — one Lease picks the replica that reconciles and audits.
* `events.EventRecorder` — events.k8s.io/v1 Events (a repetition counted as a series) on
  the objects the operator acts on.
* `access` — who may read /metrics (TokenReview, SubjectAccessReview).
* `interning` — one copy of the strings every stored object repeats.
"""
