"""In-memory implementations of ports, with the behaviour (and errors) of the real thing: test doubles
for unit tests only (no stage's composition root uses them)."""
