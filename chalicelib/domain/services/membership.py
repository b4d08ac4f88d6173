"""Who may act in a namespace, synced from GitHub: organization owners are ``owner``, team maintainers
``admin``, team members ``member``; outside people an owner adds as ``viewer`` are kept. Synced at
onboarding, on ``membership``/``team``/``organization`` webhooks, and by the daily reconcile. A
removal also revokes the person's API tokens of that namespace, in the same transaction, and then, in
the same flow, their account on the namespace's runtime is deleted (``RuntimeAccountService``: every
sync brings the runtime's accounts in step with the members)."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import ConflictError, NotFoundError
from chalicelib.domain.events import Event
from chalicelib.domain.ids import new_id
from chalicelib.domain.model import AuditEntry, Member, Namespace, Role
from chalicelib.domain.ports import GitHubPort
from chalicelib.domain.services.runtime_accounts import RuntimeAccountService
from chalicelib.domain.stores import AuditStore, MemberStore, NamespaceStore


@dataclass(frozen=True)
class SyncResult:
    namespace: str
    added: list[str]
    removed: list[str]
    changed: list[str]


class MembershipService:
    def __init__(
        self,
        github: GitHubPort,
        members: MemberStore,
        namespaces: NamespaceStore,
        audit: AuditStore,
        clock: Clock,
        accounts: RuntimeAccountService | None = None,
    ) -> None:
        self._github = github
        self._members = members
        self._namespaces = namespaces
        self._audit = audit
        self._clock = clock
        self._accounts = accounts

    def _sync_runtime_accounts(self, ns: Namespace | None) -> None:
        """The runtime's accounts in step with the members, after the platform's own records changed (a
        removed member has no platform access even while the runtime is unreachable; the sync raises
        and is retried)."""
        if self._accounts is not None and ns is not None and ns.cluster_id and ns.status in ("provisioning", "active"):
            self._accounts.reconcile(ns.id, self._members.list(ns.id))

    def desired(self, ns: Namespace) -> dict[int, Member]:
        want: dict[int, Member] = {}
        try:
            team = self._github.team_members(ns.github_org, ns.github_team)
        except NotFoundError:
            team = []  # the team was deleted: its people lose access; the organization's owners keep it
        for m in team:
            role: Role = "admin" if m.role == "maintainer" else "member"
            want[m.id] = Member(ns.id, m.id, m.login, role, "team")
        for owner in self._github.org_owners(ns.github_org):
            want[owner.id] = Member(ns.id, owner.id, owner.login, "owner", "org_owner")
        return want

    def sync(self, ns_id: str, *, actor: str = "system:membership-sync") -> SyncResult:
        ns = self._namespaces.get(ns_id)
        if ns is None or ns.status in ("deleting", "deleted", "failed"):
            return SyncResult(ns_id, [], [], [])
        want = self.desired(ns)
        have = {m.uid: m for m in self._members.list(ns_id)}
        now = self._clock.now()
        put: list[Member] = []
        remove: list[Member] = []
        events: list[Event] = []
        changed: list[str] = []
        for uid, m in want.items():
            old = have.get(uid)
            if old is None:
                put.append(m)
                events.append(
                    Event.create("member.added", ns_id, now, {"login": m.login, "role": m.role, "actor": actor})
                )
            elif (old.role, old.source, old.login) != (m.role, m.source, m.login) and old.source != "outside":
                put.append(m)
                changed.append(m.login)
                if old.role != m.role:
                    events.append(
                        Event.create(
                            "member.role_changed",
                            ns_id,
                            now,
                            {"login": m.login, "from": old.role, "to": m.role, "actor": actor},
                        )
                    )
        for uid, old in have.items():
            if uid not in want and old.source != "outside":
                remove.append(old)
                events.append(Event.create("member.removed", ns_id, now, {"login": old.login, "actor": actor}))
        if put or remove:
            self._members.apply(ns_id, put, remove, events, revoke_tokens_of=[m.uid for m in remove], now=now)
            for what, people in (
                ("member.added", [m.login for m in put if m.login not in changed]),
                ("member.removed", [m.login for m in remove]),
                ("member.role_changed", changed),
            ):
                for login in people:
                    self._audit.append(AuditEntry(ns_id, new_id(now), now, actor, what, f"member:{login}", "ok"))
        self._sync_runtime_accounts(ns)
        return SyncResult(ns_id, [m.login for m in put if m.login not in changed], [m.login for m in remove], changed)

    def sync_team(self, org_id: int, team_id: int, *, actor: str) -> list[SyncResult]:
        ns_id = self._namespaces.by_team(org_id, team_id)
        return [] if ns_id is None else [self.sync(ns_id, actor=actor)]

    def sync_org(self, org_id: int, *, actor: str) -> list[SyncResult]:
        return [self.sync(ns_id, actor=actor) for ns_id in self._namespaces.by_org(org_id)]

    def add_viewer(self, ns_id: str, login: str, *, actor: str) -> Member:
        user = self._github.get_user_by_login(login)
        if user is None:
            raise NotFoundError(f"no GitHub user {login!r}", {"login": login})
        if self._members.get(ns_id, user.id) is not None:
            raise ConflictError(f"{login} is a member already", {"login": login})
        member = Member(ns_id, user.id, user.login, "viewer", "outside")
        event = Event.create(
            "member.added", ns_id, self._clock.now(), {"login": login, "role": "viewer", "actor": actor}
        )
        self._members.apply(ns_id, [member], [], [event])
        self._sync_runtime_accounts(self._namespaces.get(ns_id))
        return member

    def remove_viewer(self, ns_id: str, login: str, *, actor: str) -> None:
        found = [m for m in self._members.list(ns_id) if m.login.lower() == login.lower()]
        if not found:
            raise NotFoundError(f"{login} is not a member", {"login": login})
        if found[0].source != "outside":
            raise ConflictError(f"{login} is a member through GitHub; change it there", {"login": login})
        event = Event.create("member.removed", ns_id, self._clock.now(), {"login": login, "actor": actor})
        self._members.apply(ns_id, [], found, [event], revoke_tokens_of=[found[0].uid], now=self._clock.now())
        self._sync_runtime_accounts(self._namespaces.get(ns_id))
