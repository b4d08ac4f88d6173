"""Namespaces: one per GitHub organization team. Creating one validates synchronously, claims the team
and the id in one transaction, and starts the onboarding state machine; the steps below are its tasks
(each idempotent, so a retried or re-run step is safe), and ``compensate`` undoes what was created,
in reverse order, when one fails. Offboarding removes the runtime namespace, cancels the
subscription at period end, and keeps invoices and the audit log.

An onboarding or offboarding whose execution no longer runs (a local cloud restarted, an execution
that ended without finishing its work) is *stuck*: ``sweep`` (at the local cloud's start and on a
schedule) resumes it once with a new execution, and if that too stops short, compensates the
onboarding or finishes the offboarding itself. Its owner may delete a stuck namespace at any time."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PlatformError,
    ValidationError,
)
from chalicelib.domain.events import Event
from chalicelib.domain.model import Member, Namespace, Principal, namespace_id
from chalicelib.domain.ports import (
    BillingPort,
    EncryptorPort,
    GitHubPort,
    RegionRegistry,
    ResourceQuota,
    RuntimePort,
    WorkflowPort,
)
from chalicelib.domain.services.membership import MembershipService
from chalicelib.domain.services.runtime_accounts import SCOPES, RuntimeAccountService
from chalicelib.domain.stores import MemberStore, NamespaceStore, PlacementStore

QUOTA_NAME = "platform-quota"
POLICY_NAME = "platform-isolation"
# How long a namespace may be provisioning or deleting with no execution running before it counts as
# stuck: longer than the moment between writing the status and starting the execution.
SWEEP_GRACE = timedelta(minutes=2)
SWEEP_BATCH = 100
INTERRUPTED = {
    "Error": "Interrupted",
    "Cause": "the onboarding stopped before it finished (its execution no longer runs); onboard the team again",
}

RuntimeFactory = Callable[[str], RuntimePort]  # API address -> the runtime of that cluster
REFRESH_HOW = (
    "ask again before expires_at: GET /v1/namespaces/{ns}/runtime (or `platform init`); while you are a member, "
    "micro's own refresh (Auth.Token with the refresh_token) renews it too. Both stop when you leave the namespace."
)


@dataclass(frozen=True)
class RuntimeAccess:
    """What a member needs to use the namespace's runtime with micro's own tools: the cluster's gRPC
    proxy (``MICRO_PROXY``) and HTTP API, and a short-lived token of the member's own account."""

    namespace: str
    proxy_address: str
    api_address: str
    account: str
    auth_token: str
    refresh_token: str
    expires_at: datetime
    scopes: tuple[str, ...]
    refresh: str


class NamespaceService:
    def __init__(
        self,
        namespaces: NamespaceStore,
        members: MemberStore,
        placement: PlacementStore,
        accounts: RuntimeAccountService,
        regions: RegionRegistry,
        github: GitHubPort,
        billing: BillingPort,
        runtimes: RuntimeFactory,
        encryptor: EncryptorPort,
        workflows: WorkflowPort,
        membership: MembershipService,
        clock: Clock,
        plans: Mapping[str, ResourceQuota],
        last_close: Callable[[str], object] | None = None,
    ) -> None:
        """``plans``: plan name -> the runtime quota onboarding applies (the catalog's plans,
        chalicelib/catalog.json, given by the composition root: plans are defined once).
        ``last_close(ns)``: the metering run's last close of a namespace being offboarded (the
        offboarding state machine's Usage step), for an offboarding the sweeper finishes itself."""
        self._namespaces = namespaces
        self._members = members
        self._placement = placement
        self._accounts = accounts
        self._regions = regions
        self._github = github
        self._billing = billing
        self._runtimes = runtimes
        self._encryptor = encryptor
        self._workflows = workflows
        self._membership = membership
        self._clock = clock
        self._plans = plans
        self._last_close = last_close

    # ------------------------------------------------------------------ API

    def create(self, principal: Principal, org: str, team_slug: str, region: str, plan: str) -> Namespace:
        if self._github.org_role(org, principal.login) != "admin":
            raise ForbiddenError(
                f"only an owner of the GitHub organization {org!r} can onboard its teams",
                {"github_org": org, "needed_role": "organization owner"},
            )
        team = self._github.get_team(org, team_slug)
        if team is None:
            raise ValidationError(
                f"the team {org}/{team_slug} does not exist (or the platform's GitHub App is "
                "not installed on the organization)",
                {"fields": [{"field": "github_team", "message": f"no team {team_slug!r} in {org}"}]},
            )
        if plan not in self._plans:
            raise ValidationError(
                f"unknown plan {plan!r}", {"fields": [{"field": "plan", "message": f"one of {sorted(self._plans)}"}]}
            )
        try:
            r = self._regions.get(region)
        except NotFoundError:
            r = None
        if r is None or r.status != "active":
            raise ValidationError(
                f"the region {region!r} is not active",
                {"fields": [{"field": "region", "message": "not an active region"}]},
            )
        ns_id = namespace_id(org, team_slug)
        previous = self._namespaces.get(ns_id)
        attempt = previous.attempt + 1 if previous is not None and previous.status in ("failed", "deleted") else 1
        now = self._clock.now()
        ns = Namespace(
            id=ns_id,
            github_org=team.org,
            github_org_id=team.org_id,
            github_team=team.slug,
            github_team_id=team.id,
            region=region,
            plan=plan,
            status="provisioning",
            created_at=now,
            status_at=now,
            created_by=principal.login,
            attempt=attempt,
        )
        # The creator (an owner of the organization) is an owner from the start, so they can follow the
        # onboarding and read a failure's reason; the members step adds everyone else.
        creator = Member(ns_id, principal.uid, principal.login, "owner", "org_owner")
        self._namespaces.create(ns, [], creator)
        try:
            self._workflows.start("onboarding", onboarding_execution(ns), {"namespace": ns_id})
        except Exception as e:
            self._namespaces.update(
                ns_id,
                {
                    "status": "failed",
                    "status_at": self._clock.now(),
                    "failure_reason": "the onboarding could not start",
                },
            )
            self._namespaces.release_team(ns)
            raise PlatformError("the onboarding could not start; try again", {"namespace": ns_id}) from e
        return ns

    def get(self, ns_id: str) -> Namespace:
        ns = self._namespaces.get(ns_id)
        if ns is None:
            raise NotFoundError(f"namespace {ns_id!r} not found", {"namespace": ns_id})
        return ns

    def of_user(self, uid: int) -> list[tuple[Namespace, str]]:
        roles: dict[str, str] = dict(self._members.namespaces_of(uid))
        return [(ns, roles[ns.id]) for ns in self._namespaces.get_many(list(roles)) if ns.status != "deleted"]

    def delete(self, ns_id: str, principal: Principal) -> Namespace:
        """Offboard. A namespace stuck provisioning is compensated first; one stuck deleting has its
        offboarding resumed. While its onboarding or offboarding still runs, ConflictError."""
        return self.delete_as(ns_id, principal.actor)

    def delete_as(self, ns_id: str, actor: str) -> Namespace:
        """``delete`` on behalf of ``actor`` (a person, or ``system:<component>``: a region drained by force)."""
        ns = self.get(ns_id)
        if ns.status in ("provisioning", "deleting"):
            if not self._stuck(ns, SWEEP_GRACE):
                raise ConflictError(
                    f"the namespace {ns_id} is {ns.status}; try again once that ends",
                    {"namespace": ns_id, "status": ns.status},
                )
            if ns.status == "deleting":
                self._settle(ns, actor)
                return self.get(ns_id)
            self.compensate(ns_id, INTERRUPTED)
        self._namespaces.update(
            ns_id, {"status": "deleting", "status_at": self._clock.now()}, expect_status=["active", "failed"]
        )
        self._workflows.start("offboarding", offboarding_execution(ns), {"namespace": ns_id, "actor": actor})
        return self.get(ns_id)

    def sweep(self, grace: timedelta = SWEEP_GRACE) -> dict[str, list[str]]:
        """Settle every namespace stuck provisioning or deleting (see the module's docstring): the
        sweeper's one call, at the local cloud's start (``grace`` 0: no execution survives a restart)
        and on a schedule. A namespace that cannot be settled now is tried again at the next sweep."""
        done: dict[str, list[str]] = {}
        for found in self._namespaces.unsettled(self._clock.now() - grace, SWEEP_BATCH):
            ns = self._namespaces.get(found.id)  # the index may lag: decide on the item itself
            entry, outcome = found.id, None
            try:
                if ns is not None and self._stuck(ns, grace):
                    outcome = self._settle(ns, "system:sweeper")
            except Exception as e:  # one namespace that cannot be settled now does not stop the others
                entry, outcome = f"{found.id}: {type(e).__name__}", "errors"
            if outcome:
                done.setdefault(outcome, []).append(entry)
        return done

    def _stuck(self, ns: Namespace, grace: timedelta) -> bool:
        """Provisioning or deleting for longer than ``grace`` with none of its executions running."""
        if ns.status not in ("provisioning", "deleting"):
            return False
        if self._clock.now() - (ns.status_at or ns.created_at) < grace:
            return False
        machine, name = _execution_of(ns)
        return all(self._workflows.status(machine, n) != "RUNNING" for n in (name, name + RESUMED))

    def _settle(self, ns: Namespace, actor: str) -> str | None:
        """Resume a stuck onboarding or offboarding once, with a new execution; when that one stopped
        short too, compensate the onboarding, or finish the offboarding here, with the same steps.
        The outcome: ``compensated`` only when this call moved the namespace to ``failed``."""
        machine, name = _execution_of(ns)
        payload = {"namespace": ns.id} if machine == "onboarding" else {"namespace": ns.id, "actor": actor}
        try:
            self._workflows.start(machine, name + RESUMED, payload)
            return "resumed"
        except ConflictError:
            pass  # resumed once already
        if ns.status == "provisioning":
            done = self.compensate(ns.id, INTERRUPTED)
            # with a status: settled meanwhile by someone else (who counts it), not by this sweep
            return None if "status" in done else "compensated"
        self.offboard_runtime(ns.id)
        if self._last_close is not None:  # the state machine's Usage step: metered up to now, once stopped
            self._last_close(ns.id)
        self.offboard_billing(ns.id)
        self.offboard_finish(ns.id, actor)
        return "offboarded"

    def runtime_access(self, ns_id: str, principal: Principal) -> RuntimeAccess:
        """The namespace's runtime for the caller: addresses, and a short-lived token of the caller's own
        runtime account (scopes by role: viewers read only)."""
        ns = self.get(ns_id)
        if ns.status != "active" or ns.cluster_id is None:
            raise ConflictError(
                f"the namespace {ns_id} is {ns.status}; its runtime is not ready",
                {"namespace": ns_id, "status": ns.status},
            )
        member = self._members.get(ns_id, principal.uid)
        if member is None:
            raise NotFoundError(f"namespace {ns_id!r} not found", {"namespace": ns_id})
        if SCOPES[member.role] and "deploy" not in principal.scopes:
            raise ForbiddenError(
                "a runtime token of your role may deploy: ask with a token that has the deploy scope (or a login)",
                {"needed_scope": "deploy"},
            )
        record, token = self._accounts.token(ns_id, member)
        return RuntimeAccess(
            namespace=ns_id,
            proxy_address=self._placement.proxy_address(ns.region, ns.cluster_id),
            api_address=self._placement.api_address(ns.region, ns.cluster_id),
            account=record.account_id,
            auth_token=token.access_token,
            refresh_token=token.refresh_token,
            expires_at=token.expires_at,
            scopes=record.scopes,
            refresh=REFRESH_HOW.replace("{ns}", ns_id),
        )

    # ------------------------------------------------------------------ onboarding steps

    def step_billing(self, ns_id: str) -> None:
        ns = self._provisioning(ns_id)
        if ns.subscription_id:
            return
        key = f"onboard-{ns_id}-{ns.attempt}"
        customer = ns.customer_id or self._billing.create_customer(ns_id, None, idempotency_key=f"{key}-customer")
        self._namespaces.set_billing_customer(ns_id, customer)
        self._namespaces.update(ns_id, {"customer_id": customer}, expect_status=["provisioning"])
        # Usage counts from the namespace's first hour (its meter events carry their hour's start).
        start = ns.created_at.replace(minute=0, second=0, microsecond=0)
        subscription = self._billing.create_subscription(
            customer, ns.plan, idempotency_key=f"{key}-subscription", start=start
        )
        self._namespaces.update(ns_id, {"subscription_id": subscription}, expect_status=["provisioning"])

    def change_plan(self, ns_id: str, plan: str) -> Namespace:
        """``PATCH /v1/namespaces/{ns} {plan}``: the subscription moves to the plan's prices now (the base
        price prorated by the provider), then the namespace's plan and its runtime quota. The provider
        goes first: when it refuses, nothing changed; a retry after a later failure finds the
        subscription on the plan already, and the provider's update changes nothing more."""
        ns = self.get(ns_id)
        if plan not in self._plans:
            raise ValidationError(
                f"unknown plan {plan!r}",
                {"fields": [{"field": "plan", "message": f"one of {', '.join(sorted(self._plans))}"}]},
            )
        if ns.status != "active":
            raise ConflictError(
                f"the namespace {ns_id} is {ns.status}: its plan can change once it is active",
                {"namespace": ns_id, "status": ns.status},
            )
        if ns.plan == plan:
            return ns
        if ns.subscription_id:
            import uuid

            self._billing.change_plan(ns.subscription_id, plan, idempotency_key=f"plan-{ns_id}-{uuid.uuid4()}")
        self._namespaces.update(ns_id, {"plan": plan}, expect_status=["active"])
        if ns.cluster_id:
            quota = self._plans[plan]
            self._runtime_of(ns).set_quota(ns_id, QUOTA_NAME, quota, quota)
        return self.get(ns_id)

    def step_place(self, ns_id: str) -> str:
        ns = self._provisioning(ns_id)
        if ns.cluster_id:
            return ns.cluster_id
        cluster = self._placement.take_capacity(ns.region, self._plans[ns.plan])
        try:
            self._namespaces.update(ns_id, {"cluster_id": cluster}, expect_status=["provisioning"])
        except ConflictError:
            self._placement.release_capacity(ns.region, cluster, self._plans[ns.plan])
            raise
        return cluster

    def step_runtime(self, ns_id: str) -> None:
        ns = self._provisioning(ns_id)
        runtime = self._runtime_of(ns)
        try:
            runtime.create_namespace(ns_id)
        except ConflictError:
            pass  # created by an earlier run of this step
        quota = self._plans[ns.plan]
        runtime.set_quota(ns_id, QUOTA_NAME, quota, quota)
        runtime.set_network_policy(ns_id, POLICY_NAME, {"owner": ns_id})

    def step_members(self, ns_id: str) -> None:
        """Members synced from GitHub, each with their own account on the namespace's runtime."""
        self._provisioning(ns_id)
        self._membership.sync(ns_id, actor="system:onboarding")

    def step_activate(self, ns_id: str) -> None:
        ns = self._provisioning(ns_id)
        event = Event.create(
            "namespace.created",
            ns_id,
            self._clock.now(),
            {
                "region": ns.region,
                "plan": ns.plan,
                "cluster_id": ns.cluster_id,
                "github_org": ns.github_org,
                "github_team": ns.github_team,
            },
        )
        self._namespaces.update(
            ns_id,
            {"status": "active", "status_at": self._clock.now(), "failure_reason": None},
            expect_status=["provisioning"],
            events=[event],
        )

    def compensate(self, ns_id: str, error: dict[str, Any] | None) -> dict[str, Any]:
        """Undo, newest first, whatever the onboarding created; leave ``failed`` with the reason. A
        namespace no longer provisioning (compensated already, or being deleted) is left as it is."""
        ns = self.get(ns_id)
        if ns.status != "provisioning":
            return {"namespace": ns_id, "undone": [], "reason": None, "status": ns.status}
        undone: list[str] = []
        if ns.cluster_id:
            if self._accounts.remove_all(ns_id):
                undone.append("runtime_accounts")
        else:
            self._accounts.forget_all(ns_id)
        # Everyone the members step added loses access; the creator keeps it, to read the reason.
        members = [m for m in self._members.list(ns_id) if m.login != ns.created_by]
        if members:
            self._members.apply(
                ns_id, [], members, [], revoke_tokens_of=[m.uid for m in members], now=self._clock.now()
            )
            undone.append("members")
        if ns.cluster_id:
            try:
                self._runtime_of(ns).delete_namespace(ns_id)
                undone.append("runtime_namespace")
            except NotFoundError:
                pass
            self._placement.release_capacity(ns.region, ns.cluster_id, self._plans[ns.plan], placement_id(ns))
            undone.append("placement")
        if ns.subscription_id:
            with contextlib.suppress(NotFoundError, ConflictError):
                self._billing.cancel_subscription(ns.subscription_id, at_period_end=False)
            undone.append("subscription")
        if ns.customer_id:
            with contextlib.suppress(NotFoundError):
                self._billing.delete_customer(ns.customer_id)
            self._namespaces.remove_billing_customer(ns.customer_id)
            undone.append("customer")
        self._namespaces.release_team(ns)
        undone.append("team_claim")
        reason = failure_reason(error)
        event = Event.create("onboarding.failed", ns_id, self._clock.now(), {"reason": reason, "undone": undone})
        self._namespaces.update(
            ns_id,
            {
                "status": "failed",
                "status_at": self._clock.now(),
                "failure_reason": reason,
                "cluster_id": None,
                "customer_id": None,
                "subscription_id": None,
            },
            expect_status=["provisioning"],
            events=[event],
        )
        return {"namespace": ns_id, "undone": undone, "reason": reason}

    # ------------------------------------------------------------------ offboarding steps

    def offboard_runtime(self, ns_id: str) -> None:
        """The namespace's services, members' accounts and runtime namespace deleted. The services go
        first: micro's manager keeps their records when only the namespace is deleted, and starts them
        again (service/runtime/manager/manager.go checkServices)."""
        ns = self.get(ns_id)
        if ns.cluster_id:
            runtime = self._runtime_of(ns)
            for service in runtime.read_services(ns_id):
                with contextlib.suppress(NotFoundError):
                    runtime.delete_service(ns_id, service.name, service.version)
            self._accounts.remove_all(ns_id)
            with contextlib.suppress(NotFoundError):
                runtime.delete_namespace(ns_id)

    def offboard_billing(self, ns_id: str) -> None:
        ns = self.get(ns_id)
        if ns.subscription_id:
            with contextlib.suppress(NotFoundError, ConflictError):
                self._billing.cancel_subscription(ns.subscription_id, at_period_end=True)

    def offboard_finish(self, ns_id: str, actor: str) -> None:
        ns = self.get(ns_id)
        if ns.status == "deleted":
            return
        if ns.cluster_id:
            self._placement.release_capacity(ns.region, ns.cluster_id, self._plans[ns.plan], placement_id(ns))
        self._accounts.forget_all(ns_id)
        members = self._members.list(ns_id)
        if members:
            self._members.apply(
                ns_id, [], members, [], revoke_tokens_of=[m.uid for m in members], now=self._clock.now()
            )
        self._namespaces.release_team(ns)
        event = Event.create("namespace.deleted", ns_id, self._clock.now(), {"actor": actor})
        self._namespaces.update(
            ns_id, {"status": "deleted", "status_at": self._clock.now(), "cluster_id": None}, events=[event]
        )

    # ------------------------------------------------------------------ helpers

    def _provisioning(self, ns_id: str) -> Namespace:
        ns = self.get(ns_id)
        if ns.status != "provisioning":
            raise ConflictError(f"the namespace {ns_id} is {ns.status}, not provisioning", {"status": ns.status})
        return ns

    def _runtime_of(self, ns: Namespace) -> RuntimePort:
        assert ns.cluster_id is not None
        return self._runtimes(self._placement.api_address(ns.region, ns.cluster_id))


RESUMED = "-resume"  # the suffix of the execution that resumes a stuck one


def placement_id(ns: Namespace) -> str:
    """The namespace's placement of this onboarding attempt: its capacity is given back once."""
    return f"{ns.id}#{ns.attempt}"


def onboarding_execution(ns: Namespace) -> str:
    """The onboarding execution's name: the namespace id, with the attempt from the second on."""
    return ns.id if ns.attempt == 1 else f"{ns.id}-{ns.attempt}"


def offboarding_execution(ns: Namespace) -> str:
    return f"{ns.id}-offboard-{ns.attempt}"


def _execution_of(ns: Namespace) -> tuple[str, str]:
    if ns.status == "provisioning":
        return "onboarding", onboarding_execution(ns)
    return "offboarding", offboarding_execution(ns)


def failure_reason(error: dict[str, Any] | None) -> str:
    """The reason a step failed, from a Catch's ``{"Error", "Cause"}``: the error's message, never a trace."""
    if not error:
        return "unknown failure"
    cause = error.get("Cause")
    try:
        parsed = json.loads(cause) if isinstance(cause, str) else None
    except ValueError:
        parsed = None
    message = parsed.get("errorMessage") if isinstance(parsed, dict) else cause
    return f"{error.get('Error', 'Error')}: {message}"[:500] if message else str(error.get("Error", "Error"))


def member_view(m: Member) -> dict[str, Any]:
    return {"login": m.login, "id": m.uid, "role": m.role, "source": m.source}
