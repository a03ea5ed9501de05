"""ProductionService -> Kubernetes objects: pure functions, no I/O, no cluster client.

`render` is what the CLI, the tests and the controller call; the same input always gives
the same objects in the same order, so rendering twice yields byte-identical YAML and
server-side apply sees no change when nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from prodready.api import resource
from prodready.api.models import ProductionService
from prodready.api.parse import parse_production_service
from prodready.render.deployment import render_deployment
from prodready.render.hpa import render_horizontal_pod_autoscaler
from prodready.render.ingress import render_ingress
from prodready.render.metadata import SELECTOR_LABEL_KEYS, selector_labels
from prodready.render.pdb import render_pod_disruption_budget
from prodready.render.prometheusrule import render_prometheus_rule
from prodready.render.secrets import SecretReference, referenced_secrets
from prodready.render.service import render_service
from prodready.render.servicemonitor import render_service_monitor

# In the order `render` emits them: what is referenced before what refers to it.
CHILD_KINDS: Final = (
    resource.SERVICE,
    resource.DEPLOYMENT,
    resource.HORIZONTAL_POD_AUTOSCALER,
    resource.POD_DISRUPTION_BUDGET,
    resource.INGRESS,
    resource.SERVICE_MONITOR,
    resource.PROMETHEUS_RULE,
)
"""Every (apiVersion, kind, plural) `render` may produce; the controller prunes by these."""

_OPTIONAL_RENDERERS: Final[tuple[Callable[[ProductionService], dict[str, Any] | None], ...]] = (
    render_horizontal_pod_autoscaler,
    render_pod_disruption_budget,
    render_ingress,
    render_service_monitor,
    render_prometheus_rule,
)


def render_production_service(
    ps: ProductionService, *, secret_versions: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The children of an already validated ProductionService, in CHILD_KINDS order."""
    objects = [render_service(ps), render_deployment(ps, secret_versions=secret_versions)]
    for renderer in _OPTIONAL_RENDERERS:
        rendered = renderer(ps)
        if rendered is not None:
            objects.append(rendered)
    return objects


def render(
    obj: Mapping[str, Any], *, secret_versions: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Validate a ProductionService dict and render its children.

    Raises SpecError (naming field and rule) for an invalid object, including a literal
    value for a sensitive-looking variable in spec.env (PR-LG-003). `secret_versions`
    (Secret name -> resourceVersion) lets a rotated Secret roll the pods.
    """
    return render_production_service(parse(obj), secret_versions=secret_versions)


def parse(obj: Mapping[str, Any]) -> ProductionService:
    """Validate a ProductionService dict for rendering (SpecError names field and rule)."""
    # Status is the controller's output, not the renderer's input: a status that an older
    # controller wrote, and this model would refuse, must never block a reconcile.
    return parse_production_service({key: value for key, value in obj.items() if key != "status"})


__all__ = [
    "CHILD_KINDS",
    "SELECTOR_LABEL_KEYS",
    "SecretReference",
    "parse",
    "referenced_secrets",
    "render",
    "render_production_service",
    "selector_labels",
]
