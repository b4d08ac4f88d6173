"""GitOps rules on moto in-process (no network): push claims and their window."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.adapters.dynamodb.repos import DynamoPushClaims
from chalicelib.domain.services.gitops import PUSH_WINDOW, GitOpsService, PushKey


def test_a_push_is_claimed_once_per_window_and_a_retry_of_the_same_delivery_passes(container: Any, clock: Any) -> None:
    claims = DynamoPushClaims()
    first = PushKey(5001, "refs/heads/main", "a" * 40, "0" * 40, 1_700_000_000)
    assert claims.claim(first, "d-1", clock.now(), PUSH_WINDOW)
    assert claims.claim(first, "d-1", clock.now(), PUSH_WINDOW)  # the same delivery's message, retried
    assert not claims.claim(first, "d-2", clock.now(), PUSH_WINDOW)  # the same body under another id
    back = PushKey(5001, "refs/heads/main", "a" * 40, "b" * 40, 1_700_000_100)  # forced back to "a"
    assert claims.claim(back, "d-3", clock.now(), PUSH_WINDOW)
    other_branch = PushKey(5001, "refs/heads/dev#1", "a" * 40, "0" * 40, 1_700_000_000)
    assert claims.claim(other_branch, "d-4", clock.now(), PUSH_WINDOW)
    clock.advance(PUSH_WINDOW + timedelta(seconds=1))
    assert claims.claim(first, "d-2", clock.now(), PUSH_WINDOW)  # an expired claim counts as absent


def test_a_push_older_than_the_window_is_refused_so_no_replay_outlives_it(container: Any, clock: Any) -> None:
    gitops = GitOpsService(None, None, None, None, None, clock, DynamoPushClaims())  # type: ignore[arg-type]
    now = int(clock.now().timestamp())
    stale = PushKey(5001, "refs/heads/main", "c" * 40, "d" * 40, now - int(PUSH_WINDOW.total_seconds()) - 60)
    assert gitops._replayed("d-9", stale) == "the push is older than the replay window"
    fresh = PushKey(5001, "refs/heads/main", "c" * 40, "d" * 40, now - 60)
    assert gitops._replayed("d-9", fresh) is None
    assert gitops._replayed("d-10", fresh) == "a replay of a push handled already"


def test_a_failed_delivery_is_asked_again_a_bounded_number_of_times_per_window(container: Any, clock: Any) -> None:
    from chalicelib.adapters.dynamodb.audit import DELIVERY_WINDOW, DynamoDeliveryStore

    store = DynamoDeliveryStore()
    assert [store.note_redelivery("github", "101", clock.now(), 3) for _ in range(5)] == [True] * 3 + [False] * 2
    assert store.note_redelivery("github", "102", clock.now(), 3)  # counted per delivery
    clock.advance(DELIVERY_WINDOW + timedelta(seconds=1))
    assert store.note_redelivery("github", "101", clock.now(), 3)  # an expired count is absent


def test_a_delivery_s_claim_status_is_read_live(container: Any, clock: Any) -> None:
    from chalicelib.adapters.dynamodb.audit import DELIVERY_WINDOW, DynamoDeliveryStore

    store = DynamoDeliveryStore()
    assert store.status("github", "guid-1", clock.now()) is None
    store.claim("github", "guid-1", "push", clock.now())
    assert store.status("github", "guid-1", clock.now()) == "received"
    store.mark_enqueued("github", "guid-1")
    assert store.status("github", "guid-1", clock.now()) == "enqueued"
    clock.advance(DELIVERY_WINDOW + timedelta(seconds=1))
    assert store.status("github", "guid-1", clock.now()) is None


class ReposSeeing:
    """GitHub's repositories as an installation sees them (``repo_by_id`` only)."""

    def __init__(self, visible: set[int]) -> None:
        self.visible = visible

    def repo_by_id(self, installation_id: int, repo_id: int) -> object | None:
        return object() if repo_id in self.visible else None


def test_only_links_still_valid_are_enabled_again(container: Any, clock: Any) -> None:
    from chalicelib.adapters.dynamodb.repos import DynamoLinkStore
    from chalicelib.domain.model import Namespace
    from chalicelib.domain.services.gitops import REMOVED, SUSPENDED, Link

    def namespace(ns_id: str) -> Namespace:
        org_id = {"ns-a": 1000, "ns-moved": 1001}[ns_id]  # ns-moved's organization is another account now
        return Namespace(ns_id, "acme", org_id, "t", 1, "local", "starter", "active", clock.now(), "ada")

    links = DynamoLinkStore()
    repos = ReposSeeing({11, 13})
    gitops = GitOpsService(links, repos, None, namespace, None, clock)  # type: ignore[arg-type]
    for ns, repo_id, reason in [("ns-a", 11, SUSPENDED), ("ns-a", 12, SUSPENDED), ("ns-moved", 13, SUSPENDED)]:
        link = Link(ns, repo_id, 7001, f"acme/r{repo_id}", "main", True, "active", clock.now(), "file:///r")
        links.create(link, [])
        gitops.installation_removed(7001, reason)
    enabled = gitops.installation_restored(7001, 1000)
    assert [(link.namespace, link.repo_id) for link in enabled] == [("ns-a", 11)]
    assert links.get("ns-a", 12).status == "disabled"  # no longer in the installation: now disabled for that
    assert links.get("ns-a", 12).disabled_reason == REMOVED
    assert links.get("ns-moved", 13).status == "disabled"  # the installation's account is not its organization
    assert gitops.repos_added(7002, 1000, [12]) == []  # another installation's addition
    assert [link.repo_id for link in gitops.repos_added(7001, 1000, [12])] == [12]


def test_a_team_renamed_on_github_keeps_its_members(container: Any, clock: Any) -> None:
    """A new team name is a new slug: the namespace follows the team by id and refreshes the slug it
    calls GitHub with, instead of finding no team and removing everyone in it."""
    from chalicelib.adapters.memory.github import InMemoryGitHub
    from chalicelib.domain.model import Namespace
    from chalicelib.domain.services.audit import AuditService
    from chalicelib.domain.services.github_webhooks import GitHubEventProcessor
    from chalicelib.domain.services.membership import MembershipService

    gh = InMemoryGitHub()
    for login in ("ada", "linus", "grace"):
        gh.add_user(login)
    gh.add_org_member("acme", "ada", "admin")
    gh.add_team_member("acme", "backend", "linus", "maintainer")
    gh.add_team_member("acme", "backend", "grace")
    s = container.stores
    ns = Namespace("acme-backend", "acme", 1000, "backend", 2001, "local", "starter", "active", clock.now(), "ada")
    s.namespaces.create(ns, [])
    membership = MembershipService(gh, s.members, s.namespaces, s.audit, clock)
    membership.sync("acme-backend")
    processor = GitHubEventProcessor(membership, s.namespaces, AuditService(s.audit, clock), clock)
    gh.orgs["acme"].teams["platform"] = gh.orgs["acme"].teams.pop("backend")  # renamed on GitHub
    payload = {
        "action": "edited",
        "changes": {"name": {"from": "backend"}},
        "team": {"id": 2001, "slug": "platform", "name": "platform"},
        "organization": {"id": 1000, "login": "acme"},
    }
    processor.process("d-team-1", "team", payload)
    assert s.namespaces.get("acme-backend").github_team == "platform"
    assert [m.login for m in s.members.list("acme-backend")] == ["ada", "grace", "linus"]
