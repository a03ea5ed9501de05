"""`prodready dashboard`: the cluster's readiness as web pages, read-only.

A layer of its own above the audit (whose reports it reads, through `audit.command`'s
reader, so a finding looks the same in `prodready report` and on a page) and below the
composition root (`app`), which can serve it from the operator's process on a port of its
own. The pages themselves are pure (`prodready.rules.pages`).
"""

import prodready.kube  # noqa: F401 - first, so that kopf comes without the official client
