"""HTML pages from the page model: server-rendered jinja2 templates, autoescaped.

Every page is one self-contained file: its stylesheet and its script are inlined, and a
Content-Security-Policy (in a `<meta>` element, so it holds for a file opened from disk
too) allows exactly those two by their SHA-256 hashes and nothing else: no other script,
style, image, font, frame or connection. A value from a manifest or the cluster can only
ever be text on the page.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass
from importlib import resources

import jinja2
from markupsafe import Markup

from prodready import __version__
from prodready.rules.formats import Run
from prodready.rules.pages.model import EXPIRING_SOON_DAYS, Dashboard, WorkloadRow, overview

_PACKAGE = "prodready.rules.pages"


@dataclass(frozen=True, slots=True)
class _Assets:
    style: Markup
    script: Markup
    csp: str


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


@functools.cache
def _assets() -> _Assets:
    folder = resources.files(_PACKAGE) / "templates"
    style = (folder / "page.css").read_text(encoding="utf-8")
    script = (folder / "filters.js").read_text(encoding="utf-8")
    csp = "; ".join(
        (
            "default-src 'none'",
            f"style-src '{_sha256(style)}'",
            f"script-src '{_sha256(script)}'",
            "img-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        )
    )
    # Markup: the two assets are the package's own text, inserted verbatim (their hashes
    # are of exactly these bytes); everything else on a page is escaped.
    return _Assets(style=Markup(style), script=Markup(script), csp=csp)  # noqa: S704


def content_security_policy() -> str:
    """The pages' CSP, for a server to send as a header as well (with frame-ancestors)."""
    return _assets().csp


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader(_PACKAGE, "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def _render(template: str, **context: object) -> str:
    assets = _assets()
    return (
        _environment()
        .get_template(template)
        .render(
            style=assets.style,
            script=assets.script,
            csp=assets.csp,
            version=__version__,
            **context,
        )
    )


def render_html(run: Run) -> str:
    """`validate -o html`: the score, findings by rule and by workload, exemptions, filters."""
    return _render("report.html", overview=overview(run))


def render_dashboard(model: Dashboard, *, base: str = "/") -> str:
    """The dashboard's main page; links to workload pages are relative to `base`."""
    return _render("dashboard.html", model=model, base=base, expiring_days=EXPIRING_SOON_DAYS)


def render_workload(model: Dashboard, row: WorkloadRow, *, base: str = "/") -> str:
    """The page of one workload: its findings and the rules behind them."""
    ids = {finding.rule_id for finding in row.shown}
    rules = [rule for rule in model.overview.rules if rule.rule_id in ids]
    return _render("workload.html", row=row, rules=rules, base=base)
