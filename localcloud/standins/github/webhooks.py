"""Webhooks the stand-in sends, as GitHub's App webhooks: which installation gets an event, the
``push``/``repository``/``installation_repositories``/``membership``/``organization``/``installation``
payloads (built by :mod:`localcloud.standins.github_webhooks`), one background sender, and the record the
deliveries API reads.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from localcloud.standins import github_webhooks as hooks
from localcloud.standins.github.common import HTML_BASE, _iso, log
from localcloud.standins.github.git import ZERO_SHA
from localcloud.standins.github.state import Delivery, Installation, Org, Repo, Team, User


class WebhooksMixin:
    """Mixed into :class:`~localcloud.standins.github.server.GitHubStandIn` (its ``state``, ``lock``, ``clock``)."""

    def _repo_installation(self, repo: Repo, event: str) -> Installation | None:
        """The installation that gets ``event`` for the repository, when a webhook URL is set."""
        org = self.state.orgs.get(repo.owner.lower())
        if org is None:
            return None
        installation = self._subscribed(org, event)
        return installation if installation is not None and self._covers(installation, repo) else None

    def _emit_push(
        self, repo: Repo, branch: str, before: str, after: str, pusher: User, others: Mapping[str, str]
    ) -> _Outgoing | None:
        installation = self._repo_installation(repo, "push")
        if installation is None:
            return None
        bare = self.bare(repo)
        created, deleted = before == ZERO_SHA, after == ZERO_SHA
        forced = not created and not deleted and bare.merge_base(before, after) != before
        commits: list[dict[str, Any]] = []
        head_commit: dict[str, Any] | None = None
        base_ref: str | None = None
        if not deleted:
            # The pushed commits: new to the branch (a new branch: new to the repository). ``distinct``: on
            # no other branch before.
            fresh = set(bare.rev_list(after, list(others.values())))
            shas = bare.rev_list(after, list(others.values()) if created else [before])
            if created:
                base_ref = next((f"refs/heads/{b}" for b, sha in sorted(others.items()) if sha == after), None)
            payload_commits = [self._push_commit(repo, sha, sha in fresh) for sha in shas]
            commits = payload_commits[-self.push_commits_limit :] if self.push_commits_limit else []
            head_commit = self._push_commit(repo, after, after in fresh)
        html = f"{HTML_BASE}/{repo.full_name}"
        compare = f"{html}/compare/{branch}" if created else f"{html}/compare/{before[:12]}...{after[:12]}"
        api = self.api_url
        org = self.state.orgs.get(repo.owner.lower())
        payload = hooks.push_payload(
            ref=f"refs/heads/{branch}",
            before=before,
            after=after,
            repository=self.push_repository(repo, api),
            pusher={"name": pusher.login, "email": self._identity(pusher)[1]},
            organization=self.org_simple(org, api) if org is not None else None,
            sender=self.user_simple(pusher, api),
            installation=hooks.installation_ref(installation),
            created=created,
            deleted=deleted,
            forced=forced,
            base_ref=base_ref,
            compare=compare,
            commits=commits,
            head_commit=head_commit,
        )
        return self._emit("push", None, payload, installation, repo.id)

    def _push_commit(self, repo: Repo, sha: str, distinct: bool) -> dict[str, Any]:
        bare = self.bare(repo)
        info = bare.commit_info(sha)
        changes = bare.diff(info.parents[0] if info.parents else None, sha, renames=False)

        def person(name: str, email: str) -> dict[str, Any]:
            user = self._user_by_email(email)
            return {"name": name, "email": email, **({"username": user.login} if user else {})}

        return {
            "id": info.sha,
            "tree_id": info.tree,
            "distinct": distinct,
            "message": info.message,
            "timestamp": info.author_date,
            "url": f"{HTML_BASE}/{repo.full_name}/commit/{info.sha}",
            "author": person(info.author_name, info.author_email),
            "committer": person(info.committer_name, info.committer_email),
            "added": [c.filename for c in changes if c.status == "added"],
            "removed": [c.filename for c in changes if c.status == "removed"],
            "modified": [c.filename for c in changes if c.status not in ("added", "removed")],
        }

    def _user_by_email(self, email: str) -> User | None:
        for user in self.state.users.values():
            if email.lower() in ((user.email or "").lower(), self._identity(user)[1].lower()):
                return user
        return None

    def _emit_repository(self, action: str, repo: Repo, sender: User, changes: dict[str, Any] | None = None) -> None:
        installation = self._repo_installation(repo, "repository")
        if installation is None:
            return
        api = self.api_url
        org = self.state.orgs.get(repo.owner.lower())
        payload = hooks.repository_payload(
            action,
            self.repo_body(repo, api),
            self.user_simple(sender, api),
            hooks.installation_ref(installation),
            self.org_simple(org, api) if org is not None else None,
            changes,
        )
        self._emit("repository", action, payload, installation, repo.id)

    def _emit_installation_repositories(
        self, action: str, installation: Installation, added: list[Repo], removed: list[Repo], actor: str | None
    ) -> None:
        if self.webhook_url is None:  # an app always gets these, as its installation events
            return
        api = self.api_url
        sender = self._sender(self.state.org(installation.account), actor)
        payload = hooks.installation_repositories_payload(
            action,
            self.installation_body(installation, api),
            installation.repository_selection,
            [self.repo_mini(r) for r in added],
            [self.repo_mini(r) for r in removed],
            self.user_simple(sender, api),
        )
        self._emit("installation_repositories", action, payload, installation)

    # ------------------------------------------------ webhooks

    def deliveries(self) -> list[dict[str, Any]]:
        """The deliveries sent so far, oldest first, in the deliveries API's shape."""
        with self.lock:
            return [d.summary() for d in self.state.deliveries]

    def delivery(self, delivery_id: int) -> Delivery:
        with self.lock:
            found = next((d for d in self.state.deliveries if d.id == delivery_id), None)
            if found is None:
                raise KeyError(f"no delivery {delivery_id}")
            return found

    def redeliver(self, delivery_id: int) -> None:
        """Sends a recorded delivery again (same GUID and body, ``redelivery: true``), as GitHub's button."""
        with self.lock:
            original = self.delivery(delivery_id)
            url = self.webhook_url or original.url
            self._enqueue(
                _Outgoing(
                    url,
                    original.event,
                    original.action,
                    original.installation_id,
                    original.body,
                    original.guid,
                    True,
                    original.repository_id,
                )
            )

    def ping(self) -> None:
        """Sends a ``ping`` (GitHub sends one when the app's webhook is set up)."""
        with self.lock:
            if self.webhook_url is None:
                return
            payload = hooks.ping_payload(
                self, self.app.hook_id, self.app.id, self.app.events, self.webhook_url, self.app.created_at
            )
            self._emit("ping", None, payload, None)

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Waits until every queued webhook was sent (or failed); False on timeout."""
        with self._pending_changed:
            return self._pending_changed.wait_for(lambda: self._pending == 0, timeout)

    def _sender(self, org: Org, actor: str | User | None) -> User:
        if isinstance(actor, User):
            return actor
        if actor is not None:
            return self.state.user(actor)
        owners = [self.state.user(k) for k, m in org.members.items() if m.state == "active" and m.role == "admin"]
        if owners:
            return min(owners, key=lambda u: u.id)
        return self.app.bot

    def _subscribed(self, org: Org, event: str) -> Installation | None:
        """The org's installation if it is active and subscribed to ``event`` and a webhook URL is set."""
        if self.webhook_url is None:
            return None
        installation = self.state.installation_for(org.login)
        if installation is None or installation.suspended_at is not None or event not in installation.events:
            return None
        return installation

    def _emit_membership(self, action: str, org: Org, team: Team, member: User, sender: User) -> None:
        installation = self._subscribed(org, "membership")
        if installation is not None:
            payload = hooks.membership_payload(self, action, org, team, member, sender, installation)
            self._emit("membership", action, payload, installation)

    def _emit_organization(self, action: str, org: Org, member: User, sender: User, role: str, state: str) -> None:
        installation = self._subscribed(org, "organization")
        if installation is not None:
            payload = hooks.organization_payload(self, action, org, member, sender, installation, role, state)
            self._emit("organization", action, payload, installation)

    def _emit_installation(self, action: str, installation: Installation, sender: User) -> None:
        if self.webhook_url is not None:  # an app always gets its installation events
            self._emit(
                "installation", action, hooks.installation_payload(self, action, installation, sender), installation
            )

    def _emit(
        self,
        event: str,
        action: str | None,
        payload: Any,
        installation: Installation | None,
        repository_id: int | None = None,
    ) -> _Outgoing | None:
        if self.webhook_url is None:
            return None
        outgoing = _Outgoing(
            self.webhook_url,
            event,
            action,
            installation.id if installation else None,
            hooks.encode(payload),
            str(uuid.uuid4()),
            False,
            repository_id,
        )
        self._enqueue(outgoing)
        return outgoing

    def _enqueue(self, outgoing: _Outgoing) -> None:
        with self.lock:  # ids in the order the webhooks are queued (and sent: one worker, first in first out)
            outgoing.delivery_id = self._next_delivery_id
            self._next_delivery_id += 1
            if self._drop_next > 0 and not outgoing.redelivery:
                self._drop_next -= 1
                outgoing.drop = True
        with self._pending_changed:
            self._pending += 1
        with self._outbox_lock:
            if self._outbox is None:
                self._outbox = queue.Queue()
                worker = threading.Thread(
                    target=self._send_loop, args=(self._outbox,), name=f"{self.name} webhooks", daemon=True
                )
                worker.start()
            self._outbox.put(outgoing)

    def _send_loop(self, outbox: queue.Queue[_Outgoing | None]) -> None:
        while True:
            outgoing = outbox.get()
            if outgoing is None:
                return
            try:
                self._send(outgoing)
            except Exception:
                log.exception("%s: error sending a webhook", self.name)
            finally:
                with self._pending_changed:
                    self._pending -= 1
                    self._pending_changed.notify_all()

    def _send(self, outgoing: _Outgoing) -> None:
        app = self.app
        delivered_at = self.clock.now()
        request_headers = hooks.delivery_headers(
            outgoing.event, outgoing.body, app.webhook_secret, outgoing.guid, app.hook_id, app.id
        )
        response_headers: dict[str, str] = {}
        response_body = ""
        started = time.monotonic()
        try:
            if outgoing.drop:  # drop_next_delivery(): as if the receiver never answered
                raise requests.Timeout("dropped by drop_next_delivery()")
            response = hooks.deliver(
                outgoing.url,
                outgoing.event,
                outgoing.body,
                app.webhook_secret,
                outgoing.guid,
                hook_id=app.hook_id,
                app_id=app.id,
                timeout=self.webhook_timeout,
            )
            status_code = response.status_code
            status = "OK" if 200 <= status_code < 300 else f"Invalid HTTP Response: {status_code}"
            response_headers = dict(response.headers)
            response_body = response.text[:4096]
        except requests.Timeout:
            status_code, status = 0, "timed out"
        except requests.RequestException as error:
            status_code, status = 0, f"We couldn't deliver this payload: {type(error).__name__}: {error}"
        duration = round(time.monotonic() - started, 3)
        if outgoing.drop:
            duration = self.webhook_timeout
        with self.lock:
            self.state.deliveries.append(
                Delivery(
                    id=outgoing.delivery_id,
                    guid=outgoing.guid,
                    event=outgoing.event,
                    action=outgoing.action,
                    installation_id=outgoing.installation_id,
                    url=outgoing.url,
                    body=outgoing.body,
                    redelivery=outgoing.redelivery,
                    delivered_at=_iso(delivered_at),
                    duration=duration,
                    status=status,
                    status_code=status_code,
                    request_headers=request_headers,
                    response_headers=response_headers,
                    response_body=response_body,
                    repository_id=outgoing.repository_id,
                )
            )


@dataclass
class _Outgoing:
    url: str
    event: str
    action: str | None
    installation_id: int | None
    body: bytes
    guid: str
    redelivery: bool
    repository_id: int | None = None
    delivery_id: int = 0
    drop: bool = False  # record as timed out without sending (drop_next_delivery)
