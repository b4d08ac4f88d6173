"""In-memory implementations of ports, with the behaviour (and errors) of the real thing. Used by
unit tests and, until their real adapters land, by the local stage's composition root."""
