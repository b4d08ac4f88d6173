"""The HTTP layer: blueprints that translate HTTP <-> service calls, the route registry that
generates the OpenAPI document, and the one mapping of domain errors to status codes."""
