"""Local stage only: at the local cloud's start, bring back the services that were running (with their
secret config vars), after stopping whatever a crashed earlier run left running; at its stop, stop their
processes (their records are kept for the next start)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chalicelib.composition import get_container
from chalicelib.logs import lambda_handler


def _runtime() -> Any:
    c = get_container()
    if c.settings.stage != "local":
        raise RuntimeError("the local runtime runs in the local stage only")
    from chalicelib.adapters.runtime.local import LocalRuntime

    return c, LocalRuntime.shared(c.clock, Path(c.settings.runtime_dir))


@lambda_handler
def restore(event: dict[str, Any], context: Any) -> dict[str, Any]:
    c, runtime = _runtime()
    restored = runtime.restore(secrets_for=c.deploys.secrets_for)
    return {
        "restored": [f"{ns}/{svc}@{version}" for ns, svc, version in restored],
        # what a crashed earlier run left running: stopped (and recorded) before anything started
        "orphans_stopped": [f"{r['namespace']}/{r['service']}@{r['version']}" for r in runtime.orphans],
    }


@lambda_handler
def shutdown(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _, runtime = _runtime()
    runtime.shutdown()
    return {"stopped": True}
