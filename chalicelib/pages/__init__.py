"""The web dashboard: server-rendered pages (Jinja2) and their static assets, served by the same app as
the API but kept apart from it: page routes are not in the API's route registry (so never in the
OpenAPI document), none is under ``/v1``, and every one is listed in ``routes.PAGES``.

A page renders the structure only (navigation, headings, forms with their labels, empty tables);
its data comes from the JSON API, called by the page's script with the session cookie, so a page
can never show what the API would refuse. See ``routes.py`` for the pages and ``render.py`` for the
templates, the static files and the security headers."""
