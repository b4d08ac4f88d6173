"""The Chalice app: blueprints and middleware registered, nothing else."""

from chalice import Chalice

from chalicelib.api import (
    alerts,
    auth,
    billing,
    namespaces,
    regions,
    reports,
    repos,
    security,
    services,
    system,
    tokens,
    usage,
    webhooks,
)
from chalicelib.api.middleware import http_middleware
from chalicelib.api.registry import registry
from chalicelib.pages import routes as pages

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
    regions.bp,
    reports.bp,
    alerts.bp,
):
    app.register_blueprint(blueprint)
# The dashboard's pages: outside the API's registry and /v1 (chalicelib/pages).
app.register_blueprint(pages.bp)
