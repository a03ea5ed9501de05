"""Logs, metrics and health endpoints: what makes the operator itself production-ready.

- `prodready.observability.logging`: `configure_logging`, `get_logger`,
  `reconcile_context`, `redact`.
- `prodready.observability.metrics`: `Metrics` (its own registry, `render_latest`).
- `prodready.observability.health`: `HealthServer` (/healthz, /readyz, /metrics).

Nothing is imported here, so that `prodready validate` can log without importing
aiohttp or prometheus-client.
"""
