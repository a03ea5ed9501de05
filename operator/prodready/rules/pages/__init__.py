"""Readiness pages: `validate -o html` and the dashboard's pages, rendered from plain data.

Pure, like the rest of `rules`: the page model (`model`) is built from a `Run` and the
cluster's objects as given, and `html` turns it into self-contained HTML. Where the data
comes from (files, the apiserver) and where the page goes (stdout, an HTTP response) is
the caller's business.
"""

from __future__ import annotations

from prodready.rules.pages.html import (
    content_security_policy,
    render_dashboard,
    render_html,
    render_workload,
)
from prodready.rules.pages.model import (
    EXPIRING_SOON_DAYS,
    Dashboard,
    Overview,
    WorkloadRow,
    dashboard,
    overview,
)

__all__ = [
    "EXPIRING_SOON_DAYS",
    "Dashboard",
    "Overview",
    "WorkloadRow",
    "content_security_policy",
    "dashboard",
    "overview",
    "render_dashboard",
    "render_html",
    "render_workload",
]
