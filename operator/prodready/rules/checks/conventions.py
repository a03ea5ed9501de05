"""The app's own conventions, and the images they do not apply to.

LOG_FORMAT, LOG_LEVEL, DEBUG and the CORS variable are conventions of the team's own
services: stock nginx, postgres or an exporter does not read them, so telling its owner to
set them is wrong advice. Images the policy marks third-party (`third_party_images`
globs) get a passing outcome saying so instead, and the report shows it.
"""

from __future__ import annotations

from prodready.rules.context import Container
from prodready.rules.subject import Outcome, Subject, passed


def third_party(subject: Subject, container: Container, variable: str) -> Outcome | None:
    """A note that `variable` is not read for a third-party image, or None for the app's."""
    glob = subject.settings.third_party_glob(container.spec.get("image"))
    if glob is None:
        return None
    return passed(
        f"{container.path}.image",
        f"container {container.name}: not applicable, image {container.spec.get('image')} is "
        f"third-party (policy third_party_images {glob!r}), so {variable} is not its convention",
        container,
    )
