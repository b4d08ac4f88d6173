"""The Chalice app: blueprints and middleware registered, nothing else."""

from chalice import Chalice

from chalicelib.api import alerts, auth, billing, namespaces, repos, security, services, system, tokens, usage, webhooks
from chalicelib.api.middleware import http_middleware
from chalicelib.api.registry import registry

app = Chalice(app_name="micro-platform")
app.register_middleware(http_middleware, "http")
security.install(registry)
for blueprint in (
    system.bp,
    auth.bp,
    namespaces.bp,
    repos.bp,
    services.bp,
    tokens.bp,
    usage.bp,
    webhooks.bp,
    billing.bp,
    alerts.bp,
):
    app.register_blueprint(blueprint)
