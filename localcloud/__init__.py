"""The local cloud: the whole platform on one machine, offline. It knows the resource declaration
(infra/resources.json) and the handlers' names, never the domain."""
