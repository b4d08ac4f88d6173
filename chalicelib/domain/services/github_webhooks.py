"""The GitHub webhook endpoint's logic, shared by every GitHub-driven feature.

Receive: verify ``X-Hub-Signature-256`` over the raw body in constant time, claim the
``X-GitHub-Delivery`` as ``received``, hand it to a queue, mark it ``enqueued``, answer. A
redelivery whose claim is ``enqueued`` starts nothing; one whose claim is only ``received`` (the
hand-off failed) is handed on again; a failed hand-off answers 503 so that it is redelivered.
Process (the queue's consumer): membership, team, organization and installation events."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import BadRequestError, DependencyUnavailableError, UnauthenticatedError
from chalicelib.domain.ids import new_id
from chalicelib.domain.ports import QueuePort
from chalicelib.domain.services.audit import AuditService
from chalicelib.domain.services.membership import MembershipService
from chalicelib.domain.stores import DeliveryStore, NamespaceStore

QUEUE = "github-events"
CONSUMED = frozenset({"installation", "installation_repositories", "membership", "team", "organization", "push"})

# What the consumer reads of each event it consumes, as GitHub sends it ("Webhook events and payloads",
# docs.github.com/webhooks/webhook-events-and-payloads): a signed delivery missing one of these fields, or
# with another type, is refused at the door (400) instead of failing in the consumer until the dead-letter
# queue. ``a.b`` is a nested field, ``a[].b`` the field of each item; a trailing ``?`` marks a field that
# may be absent (checked only when present).
REQUIRED: dict[str, tuple[tuple[str, type], ...]] = {
    "membership": (("organization.id", int), ("team.id", int)),
    "team": (("organization.id", int), ("team.id", int), ("team.slug?", str)),
    "organization": (("action", str), ("organization.id", int), ("organization.login", str)),
    "installation": (
        ("action", str),
        ("installation.id", int),
        ("installation.account.id", int),
        ("installation.account.login", str),
    ),
    "installation_repositories": (
        ("action", str),
        ("installation.id", int),
        ("installation.account.id", int),
        ("repositories_added", list),
        ("repositories_added[].id", int),
        ("repositories_removed", list),
        ("repositories_removed[].id", int),
    ),
    "push": (
        ("ref", str),
        ("before", str),
        ("after", str),
        ("repository.id", int),
        ("commits", list),
        ("commits[]", dict),
        ("commits[].added?", list),
        ("commits[].added[]", str),
        ("commits[].modified?", list),
        ("commits[].modified[]", str),
        ("commits[].removed?", list),
        ("commits[].removed[]", str),
        ("deleted?", bool),
        ("forced?", bool),
    ),
}
_MISSING = object()


def _values(payload: Any, path: str) -> list[tuple[str, Any]]:
    """The values at ``path`` (``a.b``, ``a[].b``), each with its field's name (``a[2].b``); a missing
    field is ``_MISSING``. Items of something that is not a list are not looked into (the check of the
    list itself reports it)."""
    found: list[tuple[str, Any]] = [("", payload)]
    for part in path.split("."):
        key, each = part.removesuffix("[]"), part.endswith("[]")
        step: list[tuple[str, Any]] = []
        for name, value in found:
            here = f"{name}.{key}" if name else key
            child = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
            if not each:
                step.append((here, child))
            elif isinstance(child, list):
                step += [(f"{here}[{i}]", item) for i, item in enumerate(child)]
        found = step
    return found


def payload_problems(event: str, payload: Any) -> list[dict[str, str]]:
    """What makes ``payload`` unreadable as ``event``: an empty list when its consumer can read it."""
    if not isinstance(payload, dict):
        return [{"field": "(body)", "message": f"must be a JSON object, not {type(payload).__name__}"}]
    names = {bool: "a boolean", int: "an integer", str: "a string", list: "an array", dict: "an object"}
    problems = []
    for spec, kind in REQUIRED.get(event, ()):
        path, optional = spec.removesuffix("?"), spec.endswith("?")
        for name, value in _values(payload, path):
            if value is _MISSING:
                if not optional:
                    problems.append({"field": name, "message": "is required"})
            elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                problems.append({"field": name, "message": f"must be {names[kind]}"})
    return problems


def signature_of(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    if not secret or not header:
        return False
    return hmac.compare_digest(signature_of(secret, body).encode(), header.strip().encode())


@dataclass(frozen=True)
class Receipt:
    status: int
    body: dict[str, Any]


class GitHubWebhookService:
    def __init__(
        self,
        secret: str | Callable[[], str],  # a callable: read at each delivery (a rotated secret)
        deliveries: DeliveryStore,
        queue: QueuePort,
        clock: Clock,
        consumed: frozenset[str] = CONSUMED,
    ) -> None:
        self._secret = secret
        self._deliveries = deliveries
        self._queue = queue
        self._clock = clock
        self._consumed = consumed

    def receive(self, headers: Mapping[str, str], body: bytes) -> Receipt:
        h = {k.lower(): v for k, v in headers.items()}
        secret = self._secret() if callable(self._secret) else self._secret
        if not verify_signature(secret, body, h.get("x-hub-signature-256")):
            raise UnauthenticatedError("the webhook signature is missing or wrong", {"header": "X-Hub-Signature-256"})
        event = h.get("x-github-event", "")
        delivery = h.get("x-github-delivery", "")
        if not event or not delivery:
            raise BadRequestError("X-GitHub-Event and X-GitHub-Delivery are required", {})
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as e:
            raise BadRequestError("the payload is not JSON", {"reason": type(e).__name__}, code="invalid_json") from e
        problems = payload_problems(event if event in self._consumed else "", payload)
        if problems:  # before any claim: nothing is recorded or handed on
            raise BadRequestError(
                f"the {event} payload is not what GitHub sends", {"fields": problems[:20]}, code="invalid_payload"
            )
        if event == "ping":
            return Receipt(200, {"status": "pong", "zen": payload.get("zen")})
        if event not in self._consumed:
            return Receipt(202, {"status": "ignored", "event": event})
        previous = self._deliveries.claim("github", delivery, event, self._clock.now())
        if previous == "enqueued":
            return Receipt(200, {"status": "duplicate", "delivery": delivery})
        try:
            self._queue.send(QUEUE, {"delivery": delivery, "event": event, "payload": payload}, dedup_id=delivery)
        except Exception as e:
            raise DependencyUnavailableError(
                "the delivery could not be handed on; redeliver it", {"delivery": delivery}
            ) from e
        self._deliveries.mark_enqueued("github", delivery)
        return Receipt(202, {"status": "enqueued", "delivery": delivery})


class GitHubEventProcessor:
    """Consumes the queue: turns each GitHub event into the platform's changes."""

    def __init__(
        self,
        membership: MembershipService,
        namespaces: NamespaceStore,
        audit: AuditService,
        clock: Clock,
        gitops: Any = None,
    ) -> None:
        self._membership = membership
        self._namespaces = namespaces
        self._audit = audit
        self._clock = clock
        self._gitops = gitops  # chalicelib.domain.services.gitops.GitOpsService

    def process(self, delivery: str, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        org_id = int((payload.get("organization") or {}).get("id") or 0)
        actor = "github"
        action = str(payload.get("action"))
        if event in ("membership", "team"):
            team = payload.get("team") or {}
            team_id = int(team.get("id") or 0)
            if event == "team" and action == "edited" and (payload.get("changes") or {}).get("name"):
                self._renamed_team(org_id, team_id, str(team.get("slug") or ""))  # a new name is a new slug
            results = self._membership.sync_team(org_id, team_id, actor=actor)
        elif event == "organization":
            if action == "renamed":
                self._renamed_org(payload)
            results = self._membership.sync_org(org_id, actor=actor)
        elif event == "push":
            result = self._gitops.push(delivery, payload)
            return {"event": event, "deployed": result.deployed, "skipped": result.skipped}
        elif event == "installation":
            from chalicelib.domain.services.gitops import SUSPENDED, UNINSTALLED

            installation = payload.get("installation") or {}
            installation_id = int(installation.get("id") or 0)
            account_id = int((installation.get("account") or {}).get("id") or 0)
            disabled: list[str] = []
            enabled: list[str] = []
            if action in ("deleted", "suspend") and self._gitops is not None:
                disabled = self._gitops.installation_removed(
                    installation_id, SUSPENDED if action == "suspend" else UNINSTALLED
                )
            elif action == "unsuspend" and self._gitops is not None:
                links = self._gitops.installation_restored(installation_id, account_id)
                enabled = self._record_enabled(links, "the GitHub App's installation was unsuspended")
            for ns_id in self._namespaces.by_org(account_id):
                self._audit.record(
                    ns_id,
                    actor,
                    f"installation.{action}",
                    f"installation:{installation_id}",
                    "ok",
                    entry_id=new_id(self._clock.now()),
                )
            return {"event": event, "action": action, "disabled": disabled, "enabled": enabled}
        elif event == "installation_repositories":
            from chalicelib.domain.services.gitops import REMOVED

            installation = payload.get("installation") or {}
            installation_id = int(installation.get("id") or 0)
            account_id = int((installation.get("account") or {}).get("id") or 0)
            removed = [int(r["id"]) for r in payload.get("repositories_removed") or []]
            added = [int(r["id"]) for r in payload.get("repositories_added") or []]
            disabled = self._gitops.repos_removed(removed, REMOVED) if self._gitops and removed else []
            enabled = (
                self._record_enabled(
                    self._gitops.repos_added(installation_id, account_id, added),
                    "the repository was added to the GitHub App's installation again",
                )
                if self._gitops and added
                else []
            )
            return {"event": event, "action": action, "disabled": disabled, "enabled": enabled}
        else:
            return {"event": event, "ignored": True}
        return {
            "event": event,
            "synced": [r.namespace for r in results],
            "removed": sorted({login for r in results for login in r.removed}),
        }

    def _renamed_org(self, payload: dict[str, Any]) -> None:
        """``organization`` ``renamed`` (``changes.login.from``, GitHub's "Webhook events and payloads"):
        namespaces know their organization by id; the login they call GitHub with is refreshed, and so
        is the display name of its linked repositories."""
        org = payload.get("organization") or {}
        org_id, login = int(org.get("id") or 0), str(org.get("login") or "")
        old = str((((payload.get("changes") or {}).get("login")) or {}).get("from") or "")
        for ns_id in self._namespaces.by_org(org_id):
            ns = self._namespaces.get(ns_id)
            if ns is None or not login or ns.github_org == login:
                continue
            self._namespaces.update(ns_id, {"github_org": login})
            self._audit.record(
                ns_id,
                "github",
                "organization.renamed",
                f"organization:{org_id}",
                "ok",
                entry_id=new_id(self._clock.now()),
                details={"from": old or ns.github_org, "to": login},
            )
        installation_id = int((payload.get("installation") or {}).get("id") or 0)
        if self._gitops is not None and installation_id and login:
            self._gitops.owner_renamed(installation_id, login)

    def _renamed_team(self, org_id: int, team_id: int, slug: str) -> None:
        ns_id = self._namespaces.by_team(org_id, team_id)
        ns = self._namespaces.get(ns_id) if ns_id else None
        if ns is None or not slug or ns.github_team == slug:
            return
        self._namespaces.update(ns.id, {"github_team": slug})
        self._audit.record(
            ns.id,
            "github",
            "team.renamed",
            f"team:{team_id}",
            "ok",
            entry_id=new_id(self._clock.now()),
            details={"from": ns.github_team, "to": slug},
        )

    def _record_enabled(self, links: list[Any], why: str) -> list[str]:
        """The audit log of each link enabled again (actor ``github``); answers their namespaces."""
        for link in links:
            self._audit.record(
                link.namespace,
                "github",
                "repo.enabled",
                f"repo:{link.repo_id}",
                "ok",
                entry_id=new_id(self._clock.now()),
                details={"full_name": link.full_name, "reason": why},
            )
        return [link.namespace for link in links]


class DeliveryRecovery:
    """GitHub marks a delivery failed after 10 s without an answer and never redelivers it by itself:
    this finds the App's failed deliveries and asks for them again. A failed delivery stays failed in
    GitHub's list even once a redelivery of it succeeded, so each one is asked again at most
    ``max_attempts`` times in the claims' window (remembered per delivery id), and never once the
    endpoint holds its ``X-GitHub-Delivery`` as ``enqueued`` (it arrived: GitHub only gave up waiting). A
    claim that is only ``received`` (the hand-off failed, the endpoint answered 503) is asked again."""

    def __init__(self, repos: Any, deliveries: DeliveryStore, clock: Clock, max_attempts: int = 3) -> None:
        self._repos = repos  # chalicelib.domain.ports.GitHubReposPort
        self._deliveries = deliveries
        self._clock = clock
        self._max_attempts = max_attempts

    def redeliver_failed(self, limit: int = 100) -> list[str]:
        asked = []
        for failed in self._repos.failed_deliveries(limit):
            now = self._clock.now()
            if failed.guid and self._deliveries.status("github", failed.guid, now) == "enqueued":
                continue
            if not self._deliveries.note_redelivery("github", failed.id, now, self._max_attempts):
                continue
            self._repos.redeliver(failed.id)
            asked.append(failed.id)
        return asked
