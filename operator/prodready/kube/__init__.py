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

import sys as _sys

# kopf imports the official client's generated models when that package is installed (to
# recognise them in a handler's return value, which prodready never returns), and that is
# megabytes of the operator's memory for nothing: the official client serves only logins
# from a kubeconfig (`kube.login`), which import it themselves. So kopf is imported first
# here, with the package hidden from it for that one import.
if "kopf" not in _sys.modules and "kubernetes" not in _sys.modules:
    _sys.modules["kubernetes"] = None  # type: ignore[assignment]
    try:
        import kopf as _kopf  # noqa: F401
    finally:
        del _sys.modules["kubernetes"]
