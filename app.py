"""The Chalice app: blueprints and middleware registered, nothing else."""

from chalice import Chalice

from chalicelib.api import system
from chalicelib.api.middleware import http_middleware

app = Chalice(app_name="micro-platform")
app.register_middleware(http_middleware, "http")
app.register_blueprint(system.bp)
