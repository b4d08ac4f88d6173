"""Renderers: a report's HTML email (Jinja2, inline CSS), its chart (matplotlib, Agg), its text part,
CSV and Slack message. Only the report workflow's Render step imports this package: Jinja2 and
matplotlib never touch the API's cold start."""
