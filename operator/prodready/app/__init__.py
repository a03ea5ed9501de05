"""The composition root: the one place that assembles `prodready run`.

`controller`, `webhook` and `audit` never import each other; this package wires them into
one process over the shared `kube` layer.

* `process.assemble` — the controller's `Operator` with the webhook and the audit beside
  it, and one kopf registry holding the watches of all three; `process.run` runs it.
* `policy.PolicyRuntime` — the webhook server and the audit loop, started
  and stopped with the operator.
* `command` — `prodready run` (settings from flags and the environment, logging).
"""

import prodready.kube  # noqa: F401 - first, so that kopf comes without the official client
