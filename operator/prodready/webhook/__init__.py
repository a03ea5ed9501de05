"""The validating admission webhook, served by the operator process.

* `server.WebhookServer` — the aiohttp HTTPS server (`/validate/enforce`, `/validate/audit`).
* `admission` — the pure decision: `parse_review`, `decide`, `review_response`.
* `certificates` — serving certificates from files with hot reload, or self-signed.
* `configuration.render_webhook_configuration` — the ValidatingWebhookConfiguration;
  `prodready webhook-config` prints it.
"""
