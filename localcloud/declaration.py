"""The resource declaration (infra/resources.json), read the way Terraform reads it.

Naming rule shared with infra/modules/platform: every resource is ``<declared name>-<stage>``, and a
queue's dead-letter queue is ``<queue name>-dlq-<stage>``.

Placeholders in ``statemachines/*.asl.json`` (``${Name}``) are filled from each state machine's
``placeholders`` map, whose values say what to put there:
``{"function": "outbox-relay"}`` (the function's ARN), ``{"queue": "jobs"}`` (the queue's URL),
``{"table": true}`` (the table name), ``{"bus": true}`` (the bus name), ``{"value": "..."}`` (a literal)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILE = ROOT / "infra" / "resources.json"
ACCOUNT = "123456789012"  # moto's default account


@dataclass(frozen=True)
class Declaration:
    data: dict[str, Any]
    stage: str
    region: str = "us-east-1"
    base_dir: Path = ROOT

    @classmethod
    def load(cls, path: Path = DEFAULT_FILE, *, stage: str = "local", region: str = "us-east-1") -> Declaration:
        return cls(json.loads(path.read_text()), stage, region, ROOT)

    def name(self, declared: str) -> str:
        return f"{declared}-{self.stage}"

    def dlq_name(self, queue: str) -> str:
        return f"{queue}-dlq-{self.stage}"

    @property
    def table_name(self) -> str:
        return self.name(self.data["table"]["name"])

    @property
    def bus_name(self) -> str:
        return self.name(self.data["event_bus"]["name"])

    def list(self, kind: str) -> list[dict[str, Any]]:
        return list(self.data.get(kind) or [])

    def function(self, declared: str) -> dict[str, Any]:
        for f in self.list("functions"):
            if f["name"] == declared:
                return f
        raise KeyError(f"no function {declared!r} in the declaration")

    def function_arn(self, declared: str) -> str:
        self.function(declared)
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{self.name(declared)}"

    def queue_url(self, endpoint: str, declared: str) -> str:
        return f"{endpoint}/{ACCOUNT}/{self.name(declared)}"

    def state_machine_arn(self, declared: str) -> str:
        return f"arn:aws:states:{self.region}:{ACCOUNT}:stateMachine:{self.name(declared)}"

    def render_definition(self, machine: dict[str, Any], endpoint: str) -> str:
        """The state machine's ASL with every ``${Placeholder}`` filled; an unfilled one is an error."""
        text = (self.base_dir / machine["definition"]).read_text()
        values: dict[str, str] = {}
        for key, spec in (machine.get("placeholders") or {}).items():
            if "function" in spec:
                values[key] = self.function_arn(spec["function"])
            elif "queue" in spec:
                values[key] = self.queue_url(endpoint, spec["queue"])
            elif spec.get("table"):
                values[key] = self.table_name
            elif spec.get("bus"):
                values[key] = self.bus_name
            elif "value" in spec:
                values[key] = str(spec["value"])
            else:
                raise ValueError(f"placeholder {key} of {machine['name']}: unknown kind {spec}")

        def fill(m: re.Match[str]) -> str:
            if m.group(1) not in values:
                raise ValueError(f"{machine['definition']}: placeholder ${{{m.group(1)}}} has no value")
            return values[m.group(1)]

        rendered = re.sub(r"\$\{(\w+)\}", fill, text)
        json.loads(rendered)  # must still be JSON
        return rendered
