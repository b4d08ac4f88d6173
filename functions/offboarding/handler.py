"""The offboarding state machine's tasks (statemachines/offboarding.asl.json)."""

from __future__ import annotations

from chalicelib.namespace_tasks import namespace_task

runtime = namespace_task("runtime", lambda s, e: s.offboard_runtime(e["namespace"]))
billing = namespace_task("billing", lambda s, e: s.offboard_billing(e["namespace"]))
finish = namespace_task("finish", lambda s, e: s.offboard_finish(e["namespace"], e.get("actor", "system:offboarding")))
