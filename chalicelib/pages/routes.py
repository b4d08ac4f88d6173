"""The dashboard's page routes: declared here, kept out of the API's route registry and its OpenAPI
document. Importing this module imports Chalice only: Jinja2 and the platform's services are imported
by the first page a request asks for (``render.py``), so the API's cold start does not pay for them.

Navigation is data: a page of a new part of the platform (alerts, reports, regions...) is one
``Section`` below, one ``page`` route, a template and its script."""

from __future__ import annotations

from chalice.app import Blueprint, Response

bp = Blueprint(__name__)


class Section:
    """A link of the navigation. ``role``: the namespace role its link is shown to (the API still
    decides what the page shows); ``platform_admin``: shown to platform admins only. (Plain classes,
    not dataclasses: this module is imported with the app, and a dataclass costs its cold start.)"""

    __slots__ = ("key", "path", "platform_admin", "role", "title")

    def __init__(self, key: str, title: str, path: str, role: str | None = None, platform_admin: bool = False) -> None:
        self.key, self.title, self.path, self.role, self.platform_admin = key, title, path, role, platform_admin


# The namespace's sections, in the order of the navigation.
NAMESPACE_SECTIONS: tuple[Section, ...] = (
    Section("services", "Services", "/namespaces/{ns}", role="viewer"),
    Section("repos", "Repositories", "/namespaces/{ns}/repos", role="viewer"),
    Section("members", "Members", "/namespaces/{ns}/members", role="viewer"),
    Section("usage", "Usage", "/namespaces/{ns}/usage", role="viewer"),
    Section("alerts", "Alerts", "/namespaces/{ns}/alerts", role="member"),
    Section("reports", "Reports", "/namespaces/{ns}/reports", role="viewer"),
    Section("billing", "Billing", "/namespaces/{ns}/billing", role="admin"),
    Section("audit", "Audit log", "/namespaces/{ns}/audit", role="admin"),
)
# The account's sections (no namespace).
ACCOUNT_SECTIONS: tuple[Section, ...] = (
    Section("home", "Namespaces", "/"),
    Section("onboard", "Onboard a team", "/onboard"),
    Section("tokens", "API tokens", "/tokens"),
    Section("plans", "Plans", "/plans"),
    Section("regions", "Regions", "/regions", platform_admin=True),
)


class Page:
    """A page: ``key`` names its template (<key>.html) and script (page-<key>.js); ``section`` the
    navigation entry it belongs to; a ``public`` page needs no session."""

    __slots__ = ("key", "path", "public", "section", "title")

    def __init__(self, key: str, path: str, title: str, section: str, public: bool = False) -> None:
        self.key, self.path, self.title, self.section, self.public = key, path, title, section, public


# Every page route (the app's other routes are the API registry's): tests check the two sets together
# are exactly the app's routes, and that no page is under /v1.
PAGES: list[Page] = []


def page(key: str, path: str, title: str, section: str | None = None, *, public: bool = False) -> None:
    spec = Page(key, path, title, section or key, public)
    PAGES.append(spec)

    def view(**params: str) -> Response:
        from chalicelib.pages import render

        return render.page(spec, bp.current_request, params)

    view.__name__ = f"page_{key}"
    bp.route(path, methods=["GET"])(view)


page("login", "/login", "Log in", public=True)
page("home", "/", "Namespaces")
page("onboard", "/onboard", "Onboard a team")
page("tokens", "/tokens", "API tokens")
page("plans", "/plans", "Plans")
page("regions", "/regions", "Regions")
page("services", "/namespaces/{ns}", "Services")
page("service", "/namespaces/{ns}/services/{svc}", "Service", "services")
page("deployment", "/namespaces/{ns}/services/{svc}/deployments/{dep}", "Deployment", "services")
page("repos", "/namespaces/{ns}/repos", "Repositories")
page("members", "/namespaces/{ns}/members", "Members")
page("usage", "/namespaces/{ns}/usage", "Usage")
page("alerts", "/namespaces/{ns}/alerts", "Alerts")
page("reports", "/namespaces/{ns}/reports", "Reports")
page("billing", "/namespaces/{ns}/billing", "Billing")
page("audit", "/namespaces/{ns}/audit", "Audit log")

STATIC_PATH = "/static/{name}"


@bp.route(STATIC_PATH, methods=["GET"])
def static_file(name: str) -> Response:
    from chalicelib.pages import render

    return render.static(name, bp.current_request)


def routes() -> set[tuple[str, str]]:
    """(method, path) of every route this blueprint adds to the app."""
    found = {("GET", p.path) for p in PAGES}
    found.add(("GET", STATIC_PATH))
    return found
