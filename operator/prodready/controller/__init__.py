"""controller"""

import prodready.kube  # noqa: F401 - first, so that kopf comes without the official client
