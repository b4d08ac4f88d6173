"""GitOps: repositories linked to a namespace, push-to-deploy, and statuses back on GitHub.

A link stores the installation id and the repository id, never the name, so a rename or a transfer
cannot point it elsewhere; an uninstall, or the repository's removal from the installation, disables
it. A push to a linked branch deploys each service whose path changed (and those whose micro.yaml
entry changed); when the changed files cannot be known from the payload (a new branch, a forced push,
a truncated list of commits) GitHub's compare API is asked, and every service is deployed when still
unsure.

The delivery id (``X-GitHub-Delivery``) is not signed, so the same signed push body could come again
under a new one: pushes are deduplicated for a window (``PUSH_WINDOW``) on the repository id, the ref and
``after``, with ``before`` and the push's time (``repository.pushed_at``) telling a replay from a new
push to the same commit. A replay deploys nothing, and a push older than the window is refused, so a
replay cannot deploy either once the window has passed. A genuinely new push to a commit the branch had
before (a force-push back to it) has another ``before`` and a later ``pushed_at``: it deploys. A retry
of the same delivery (its message handled again after a failure) passes the claim it made."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import ForbiddenError, NotFoundError, PaymentRequiredError, ValidationError
from chalicelib.domain.events import Event
from chalicelib.domain.manifest import ServiceManifest, changed_services
from chalicelib.domain.model import Namespace, Principal
from chalicelib.domain.ports import GitHubReposPort, RepoRef, StatusReporter
from chalicelib.domain.services.deploys import DeployService
from chalicelib.domain.stores import LinkStore, PushClaims

ZERO_SHA = "0" * 40
# GitHub's docs ("Webhook events and payloads", push): a push's ``commits`` "includes a maximum of 2048
# commits" in webhook deliveries (20 in timeline events). From 20 on, the list is not trusted to be whole and
# GitHub's compare API is asked: one call, right at either cap.
GITHUB_COMMITS_CAP = 20
MANIFEST = "micro.yaml"
PUSH_WINDOW = timedelta(days=7)  # longer than GitHub's redelivery window (3 days)
# Why a link is disabled. A suspension and a repository's removal can be undone on GitHub (``unsuspend``,
# ``installation_repositories`` ``added``), and then the link is enabled again if still valid; an
# uninstall cannot (a new installation has a new id): the repository is linked again.
UNINSTALLED = "the GitHub App was uninstalled"
SUSPENDED = "the GitHub App's installation was suspended"
REMOVED = "the repository was removed from the GitHub App's installation"


@dataclass(frozen=True)
class PushKey:
    """What identifies one push: a replay of its signed body has all of it, a new push never does."""

    repo_id: int
    ref: str
    after: str
    before: str
    pushed_at: int | None  # ``repository.pushed_at`` (epoch seconds) of the push payload


@dataclass
class Link:
    namespace: str
    repo_id: int
    installation_id: int
    full_name: str
    branch: str
    auto_deploy: bool
    status: str  # active | disabled
    created_at: datetime
    clone_url: str
    disabled_reason: str | None = None


ManifestParser = Callable[[str], list[ServiceManifest]]


@dataclass(frozen=True)
class PushResult:
    deployed: dict[str, list[str]]  # namespace -> services
    skipped: dict[str, str]  # why nothing was deployed, per namespace (or "*")


class GitOpsService:
    def __init__(
        self,
        links: LinkStore,
        repos: GitHubReposPort,
        deploys: DeployService,
        namespace_of: Callable[[str], Namespace],
        parse_manifest: ManifestParser,
        clock: Clock,
        pushes: PushClaims | None = None,
        reporter: StatusReporter | None = None,
    ) -> None:
        self._pushes = pushes
        self._reporter = reporter  # says on GitHub why a push was not deployed (a budget's hard cap)
        self._links = links
        self._repos = repos
        self._deploys = deploys
        self._namespace_of = namespace_of
        self._parse = parse_manifest
        self._clock = clock

    # ------------------------------------------------------------------ linking (API)

    def link(self, principal: Principal, ns_id: str, full_name: str, branch: str | None, auto_deploy: bool) -> Link:
        ns = self._namespace_of(ns_id)
        repo = self._repos.repo(full_name)
        if repo is None:
            raise ValidationError(
                f"the platform's GitHub App is not installed on {full_name} (or it does not exist)",
                {"fields": [{"field": "repo", "message": "install the GitHub App on it first"}]},
            )
        if repo.owner.lower() != ns.github_org.lower() or repo.owner_id != ns.github_org_id:
            raise ValidationError(
                f"{full_name} belongs to {repo.owner}, not to this namespace's organization {ns.github_org}",
                {"fields": [{"field": "repo", "message": "another organization"}]},
            )
        if self._repos.permission(repo.installation_id, repo.full_name, principal.login) not in ("admin", "write"):
            raise ForbiddenError(
                f"linking {full_name} needs push access to it, which {principal.login} lacks",
                {"needed": "push access to the repository"},
            )
        now = self._clock.now()
        link = Link(
            namespace=ns_id,
            repo_id=repo.id,
            installation_id=repo.installation_id,
            full_name=repo.full_name,
            branch=branch or repo.default_branch,
            auto_deploy=auto_deploy,
            status="active",
            created_at=now,
            clone_url=repo.clone_url,
        )
        self._links.create(
            link,
            [
                Event.create(
                    "repo.linked",
                    ns_id,
                    now,
                    {"repo_id": repo.id, "full_name": repo.full_name, "branch": link.branch, "actor": principal.actor},
                )
            ],
        )
        return link

    def links(self, ns_id: str) -> list[Link]:
        return self._links.list(ns_id)

    def get(self, ns_id: str, repo_id: int) -> Link:
        link = self._links.get(ns_id, repo_id)
        if link is None:
            raise NotFoundError(f"no linked repository {repo_id}", {"repo_id": repo_id})
        return link

    def update(self, ns_id: str, repo_id: int, branch: str | None, auto_deploy: bool | None) -> Link:
        link = self.get(ns_id, repo_id)
        if branch is not None:
            link.branch = branch
        if auto_deploy is not None:
            link.auto_deploy = auto_deploy
        self._links.save(link)
        return link

    def unlink(self, ns_id: str, repo_id: int, actor: str) -> None:
        event = Event.create("repo.unlinked", ns_id, self._clock.now(), {"repo_id": repo_id, "actor": actor})
        if not self._links.delete(ns_id, repo_id, [event]):
            raise NotFoundError(f"no linked repository {repo_id}", {"repo_id": repo_id})

    # ------------------------------------------------------------------ GitHub events (the queue's consumer)

    def disable(self, links: list[Link], reason: str) -> list[str]:
        done = []
        for link in links:
            if link.status != "disabled":
                link.status, link.disabled_reason = "disabled", reason
                self._links.save(
                    link,
                    [
                        Event.create(
                            "repo.disabled",
                            link.namespace,
                            self._clock.now(),
                            {"repo_id": link.repo_id, "reason": reason},
                        )
                    ],
                )
                done.append(link.namespace)
        return done

    def installation_removed(self, installation_id: int, reason: str) -> list[str]:
        return self.disable(self._links.by_installation(installation_id), reason)

    def repos_removed(self, repo_ids: list[int], reason: str) -> list[str]:
        return [ns for rid in repo_ids for ns in self.disable(self._links.by_repo(rid), reason)]

    def owner_renamed(self, installation_id: int, login: str) -> None:
        """The installation's account was renamed: the links' display names follow (lookups use ids)."""
        for link in self._links.by_installation(installation_id):
            owner, _, name = link.full_name.partition("/")
            if owner != login:
                link.full_name = f"{login}/{name}"
                self._links.save(link)

    def installation_restored(self, installation_id: int, account_id: int) -> list[Link]:
        """``installation`` ``unsuspend``: enable again the links the suspension disabled, where still valid."""
        links = [
            link
            for link in self._links.by_installation(installation_id)
            if link.status == "disabled" and link.disabled_reason == SUSPENDED
        ]
        return self._enable(links, installation_id, account_id, present=None)

    def repos_added(self, installation_id: int, account_id: int, repo_ids: list[int]) -> list[Link]:
        """``installation_repositories`` ``added``: enable again the links of those repositories that their
        removal from this installation disabled, where still valid."""
        links = [
            link
            for rid in repo_ids
            for link in self._links.by_repo(rid)
            if link.status == "disabled" and link.disabled_reason == REMOVED and link.installation_id == installation_id
        ]
        return self._enable(links, installation_id, account_id, present=set(repo_ids))

    def _enable(self, links: list[Link], installation_id: int, account_id: int, present: set[int] | None) -> list[Link]:
        """Enable each link still valid: its namespace active and of the installation's account (the
        organization), the repository still in the installation (``present``, else asked of GitHub)."""
        enabled = []
        for link in links:
            try:
                ns = self._namespace_of(link.namespace)
            except NotFoundError:
                continue
            if ns.status != "active" or ns.github_org_id != account_id or link.installation_id != installation_id:
                continue
            if present is None and self._repos.repo_by_id(installation_id, link.repo_id) is None:
                # no longer in the installation: disabled for that now, so that adding it back enables it
                link.disabled_reason = REMOVED
                self._links.save(link)
                continue
            was = link.disabled_reason or ""
            link.status, link.disabled_reason = "active", None
            event = Event.create(
                "repo.enabled", link.namespace, self._clock.now(), {"repo_id": link.repo_id, "reason": was}
            )
            self._links.save(link, [event])
            enabled.append(link)
        return enabled

    def push(self, delivery: str, payload: dict[str, Any]) -> PushResult:
        repo_id = int((payload.get("repository") or {}).get("id") or 0)
        links = [link for link in self._links.by_repo(repo_id)]
        if not links:
            return PushResult({}, {"*": "no namespace links this repository"})
        ref = str(payload.get("ref", ""))
        if not ref.startswith("refs/heads/") or payload.get("deleted"):
            return PushResult({}, {"*": "not a branch push"})
        branch = ref.removeprefix("refs/heads/")
        before, after = str(payload.get("before", ZERO_SHA)), str(payload.get("after", ""))
        refused = self._replayed(delivery, PushKey(repo_id, ref, after, before, _pushed_at(payload)))
        if refused:
            return PushResult({}, {"*": refused})
        deployed: dict[str, list[str]] = {}
        skipped: dict[str, str] = {}
        plan: tuple[set[str], str] | None = None
        for link in links:
            if link.status != "active":
                skipped[link.namespace] = f"the link is disabled ({link.disabled_reason})"
                continue
            if link.branch != branch:
                skipped[link.namespace] = f"{branch} is not the linked branch {link.branch}"
                continue
            if not link.auto_deploy:
                skipped[link.namespace] = "auto-deploy is off for this link"
                continue
            if plan is None:
                plan = self._services_to_deploy(link, payload, before, after)
            services, source = plan
            pusher = str((payload.get("pusher") or {}).get("name") or (payload.get("sender") or {}).get("login") or "")
            done: list[str] = []
            budget_refusal: PaymentRequiredError | None = None
            for svc in sorted(services):
                try:
                    service = self._deploys.service(link.namespace, svc)
                    if not service.auto_deploy or service.auto_deploy_paused:
                        skipped[f"{link.namespace}/{svc}"] = "auto-deploy is paused or off for the service"
                        continue
                except NotFoundError:
                    pass  # a service's first deploy
                trigger = {
                    "kind": "push",
                    "delivery": delivery,
                    "actor": f"github:{pusher}",
                    "branch": branch,
                    "installation_id": str(link.installation_id),
                    "repo_id": str(link.repo_id),
                }
                try:
                    if budget_refusal is not None:
                        raise budget_refusal  # one budget check per namespace and push
                    self._deploys.request(link.namespace, svc, source, after, trigger, admitted=bool(done))
                except PaymentRequiredError as e:
                    budget_refusal = e
                    skipped[f"{link.namespace}/{svc}"] = e.message
                    self._report_refused(link.namespace, svc, after, trigger)
                    continue
                done.append(svc)
            deployed[link.namespace] = done
        return PushResult(deployed, skipped)

    def _replayed(self, delivery: str, key: PushKey) -> str | None:
        """Why this push must deploy nothing (a replay, or too old to tell), else None."""
        if self._pushes is None:
            return None
        now = self._clock.now()
        if key.pushed_at is not None and key.pushed_at < (now - PUSH_WINDOW).timestamp():
            return "the push is older than the replay window"
        if not self._pushes.claim(key, delivery, now, PUSH_WINDOW):
            return "a replay of a push handled already"
        return None

    def _report_refused(self, ns: str, svc: str, commit: str, refs: dict[str, str]) -> None:
        if self._reporter is None:
            return
        try:
            self._reporter.refused(ns, svc, commit, "not deployed: the namespace's budget (hard cap) is spent", refs)
        except Exception:  # noqa: S110 (reporting never fails the push's other work)
            pass

    def _services_to_deploy(self, link: Link, payload: dict[str, Any], before: str, after: str) -> tuple[set[str], str]:
        repo = self._repos.repo_by_id(link.installation_id, link.repo_id)
        source = repo.clone_url if repo is not None else link.clone_url
        new_text = self._repos.file_at(link.installation_id, link.repo_id, MANIFEST, after)
        if new_text is None:
            return set(), source
        new = self._parse(new_text)
        commits = payload.get("commits") or []
        unsure = before == ZERO_SHA or bool(payload.get("forced")) or len(commits) >= GITHUB_COMMITS_CAP
        changed: list[str] | None = None
        if not unsure:
            changed = sorted({p for c in commits for k in ("added", "modified", "removed") for p in c.get(k) or []})
        elif before != ZERO_SHA:
            changed = self._repos.changed_files(link.installation_id, link.repo_id, before, after)
            if changed is not None and payload.get("forced"):
                # GitHub compares from the merge base: what a forced push dropped (the old head's side, as
                # when a branch is forced back to an earlier commit) is in the other direction.
                dropped = self._repos.changed_files(link.installation_id, link.repo_id, after, before)
                changed = None if dropped is None else sorted(set(changed) | set(dropped))
        if changed is None:
            return {m.name for m in new}, source  # still unsure: deploy every service
        old = None
        if MANIFEST in changed and before != ZERO_SHA:
            old_text = self._repos.file_at(link.installation_id, link.repo_id, MANIFEST, before)
            try:
                old = self._parse(old_text) if old_text else None
            except ValidationError:
                old = None
        elif MANIFEST not in changed:
            old = new
        return changed_services(old, new, changed), source


def _pushed_at(payload: dict[str, Any]) -> int | None:
    """``repository.pushed_at`` of a push payload: epoch seconds (the push flavour), or an ISO time."""
    value = (payload.get("repository") or {}).get("pushed_at")
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())
    return None


class GitHubStatusReporter:
    """Deployment progress on GitHub: a GitHub deployment (environment = the namespace) with its
    statuses, and a commit status linking to the platform's deployment. Only deployments that came
    from a linked repository carry the ids it needs; others report nothing."""

    STATES = {
        "pending": ("in_progress", "pending"),
        "success": ("success", "success"),
        "failure": ("failure", "failure"),
    }

    def __init__(self, repos: GitHubReposPort, public_url: str) -> None:
        self._repos = repos
        self._public_url = public_url.rstrip("/")

    def reports(self, refs: Mapping[str, str]) -> bool:
        return bool(refs.get("installation_id") and refs.get("repo_id"))

    def report(
        self,
        namespace: str,
        service: str,
        deployment_id: str,
        commit: str,
        state: str,
        description: str,
        refs: dict[str, str],
    ) -> dict[str, str]:
        if not self.reports(refs):
            return {}
        installation, repo = int(refs["installation_id"]), int(refs["repo_id"])
        url = f"{self._public_url}/v1/namespaces/{namespace}/services/{service}/deployments/{deployment_id}"
        deployment_state, commit_state = self.STATES.get(state, ("in_progress", "pending"))
        answer: dict[str, str] = {}
        github_id = refs.get("github_deployment_id")
        if not github_id:
            github_id = str(
                self._repos.create_deployment(installation, repo, commit, namespace, f"{service} on Micro as a Service")
            )
            answer["github_deployment_id"] = github_id
        self._repos.deployment_status(installation, repo, int(github_id), deployment_state, description, url)
        self._repos.commit_status(
            installation, repo, commit, commit_state, f"micro-platform/{namespace}/{service}", description, url
        )
        return answer

    def refused(self, namespace: str, service: str, commit: str, description: str, refs: dict[str, str]) -> None:
        """A push that was not deployed (a budget's hard cap): a failed commit status saying why, linking
        to the namespace's billing."""
        if not refs.get("installation_id") or not refs.get("repo_id"):
            return
        self._repos.commit_status(
            int(refs["installation_id"]),
            int(refs["repo_id"]),
            commit,
            "failure",
            f"micro-platform/{namespace}/{service}",
            description[:140],
            f"{self._public_url}/v1/namespaces/{namespace}/billing",
        )


__all__ = ["GitHubStatusReporter", "GitOpsService", "Link", "PushKey", "RepoRef"]
