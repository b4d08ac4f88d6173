"""GitHub App webhooks as GitHub sends them: the signature, the payloads of the events the platform
subscribes to, and one delivery.

- :func:`sign` gives ``X-Hub-Signature-256``: ``sha256=`` and the hex HMAC-SHA256 of the raw body.
- The payload builders (:func:`membership_payload`, :func:`team_payload`, :func:`organization_payload`,
  :func:`organization_renamed_payload`, :func:`installation_payload`, :func:`ping_payload`) take the GitHub
  stand-in (for its shapes: the same ``user_simple``/``org_simple``/``team_simple`` the REST API answers
  with) and its state objects, so the ids and URLs in a payload are the ones the API gives.
- Repository events (:func:`push_payload`, :func:`repository_payload`,
  :func:`installation_repositories_payload`) take the parts already shaped by the stand-in (the repository, the
  sender, the commits), and put them together in GitHub's key order.
- :func:`deliver` POSTs one payload with GitHub's headers and its 10 s timeout. It never retries: GitHub
  does not redeliver on its own either (a failed delivery is found through the deliveries API and
  redelivered on purpose).

Only the standard library and requests are used; nothing here imports the stand-in at run time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import TYPE_CHECKING, Any, Protocol

import requests

if TYPE_CHECKING:
    from localcloud.standins.github import Installation, Org, Team, User

__all__ = [
    "DEFAULT_TIMEOUT",
    "Shapes",
    "deliver",
    "encode",
    "installation_payload",
    "installation_ref",
    "installation_repositories_payload",
    "membership_payload",
    "organization_payload",
    "organization_renamed_payload",
    "ping_payload",
    "push_payload",
    "repository_payload",
    "sign",
    "team_payload",
    "verify",
]

DEFAULT_TIMEOUT = 10.0  # seconds: GitHub marks a delivery failed after 10 s without an answer
USER_AGENT = "GitHub-Hookshot/5f4c2e1"
ZEN = "Keep it logically awesome."


class Shapes(Protocol):
    """What the payload builders need from the stand-in: its REST shapes and its API address."""

    @property
    def api_url(self) -> str: ...

    def user_simple(self, user: User, api: str) -> dict[str, Any]: ...

    def org_simple(self, org: Org, api: str) -> dict[str, Any]: ...

    def team_simple(self, team: Team, api: str) -> dict[str, Any]: ...

    def installation_body(self, installation: Installation, api: str) -> dict[str, Any]: ...


# ---------------------------------------------------------------- signature


def sign(secret: str, body: bytes) -> str:
    """``X-Hub-Signature-256`` of ``body``: ``sha256=<hex HMAC-SHA256 keyed with secret>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str | None) -> bool:
    """Checks a ``X-Hub-Signature-256`` value in constant time."""
    return signature is not None and hmac.compare_digest(sign(secret, body), signature)


def encode(payload: Any) -> bytes:
    """The body GitHub sends: compact JSON, UTF-8."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


# ---------------------------------------------------------------- payloads


def installation_ref(installation: Installation | None) -> dict[str, Any] | None:
    """The ``installation`` field of an event sent to an app: ``{id, node_id}``."""
    if installation is None:
        return None
    return {"id": installation.id, "node_id": installation.node_id}


def _common(gh: Shapes, action: str, org: Org, sender: User, installation: Installation | None) -> dict[str, Any]:
    api = gh.api_url
    payload: dict[str, Any] = {"action": action}
    payload["organization"] = gh.org_simple(org, api)
    payload["sender"] = gh.user_simple(sender, api)
    ref = installation_ref(installation)
    if ref is not None:
        payload["installation"] = ref
    return payload


def membership_payload(
    gh: Shapes,
    action: str,
    org: Org,
    team: Team,
    member: User,
    sender: User,
    installation: Installation | None,
) -> dict[str, Any]:
    """``membership`` event: ``added`` / ``removed`` (someone joined or left a team). ``scope`` is ``team``."""
    if action not in ("added", "removed"):
        raise ValueError(f"membership: unknown action {action!r}")
    api = gh.api_url
    common = _common(gh, action, org, sender, installation)
    return {
        "action": action,
        "scope": "team",
        "member": gh.user_simple(member, api),
        "sender": common["sender"],
        "team": gh.team_simple(team, api),
        "organization": common["organization"],
        **({"installation": common["installation"]} if "installation" in common else {}),
    }


def team_payload(
    gh: Shapes,
    action: str,
    org: Org,
    team: Team,
    sender: User,
    installation: Installation | None,
    changes: dict[str, Any] | None = None,
    repository: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``team`` event: ``created``, ``deleted``, ``edited`` (with ``changes``), ``added_to_repository`` /
    ``removed_from_repository`` (with ``repository``)."""
    actions = ("created", "deleted", "edited", "added_to_repository", "removed_from_repository")
    if action not in actions:
        raise ValueError(f"team: unknown action {action!r}")
    team_body = gh.team_simple(team, gh.api_url)
    if action == "deleted":
        team_body["deleted"] = True
    payload: dict[str, Any] = {"action": action, "team": team_body}
    if action == "edited":
        payload["changes"] = changes or {}
    if repository is not None:
        payload["repository"] = repository
    common = _common(gh, action, org, sender, installation)
    return {**payload, **{k: v for k, v in common.items() if k != "action"}}


def organization_payload(
    gh: Shapes,
    action: str,
    org: Org,
    member: User,
    sender: User,
    installation: Installation | None,
    role: str = "member",
    state: str = "active",
    invitation_id: int | None = None,
) -> dict[str, Any]:
    """``organization`` event: ``member_added`` / ``member_removed`` carry ``membership {url, state, role,
    organization_url, user}``; ``member_invited`` carries ``invitation`` and ``user`` instead, as GitHub's."""
    api = gh.api_url
    user = gh.user_simple(member, api)
    common = _common(gh, action, org, sender, installation)
    if action in ("member_added", "member_removed"):
        body: dict[str, Any] = {
            "action": action,
            "membership": {
                "url": f"{api}/orgs/{org.login}/memberships/{member.login}",
                "state": state,
                "role": role,
                "organization_url": f"{api}/orgs/{org.login}",
                "user": user,
            },
        }
    elif action == "member_invited":
        body = {
            "action": action,
            "invitation": {
                "id": invitation_id if invitation_id is not None else member.id,
                "node_id": _node_id("OrganizationInvitation", invitation_id or member.id),
                "login": member.login,
                "email": None,
                "role": "direct_member" if role == "member" else role,
                "created_at": None,
                "failed_at": None,
                "failed_reason": None,
                "inviter": common["sender"],
                "team_count": 0,
                "invitation_teams_url": f"{api}/organizations/{org.id}/invitations/{member.id}/teams",
                "invitation_source": "member",
            },
            "user": user,
        }
    else:
        raise ValueError(f"organization: unknown action {action!r}")
    return {**body, **{k: v for k, v in common.items() if k != "action"}}


def organization_renamed_payload(
    gh: Shapes, org: Org, old_login: str, sender: User, installation: Installation | None
) -> dict[str, Any]:
    """``organization`` ``renamed``: ``changes.login.from`` is the old login, ``organization`` the renamed
    one (its id unchanged). GitHub's docs, "Webhook events and payloads", organization, action renamed
    (schema ``webhook-organization-renamed``: action, changes.login.from, organization, sender, installation)."""
    common = _common(gh, "renamed", org, sender, installation)
    return {
        "action": "renamed",
        "changes": {"login": {"from": old_login}},
        **{k: v for k, v in common.items() if k != "action"},
    }


def installation_payload(gh: Shapes, action: str, installation: Installation, sender: User) -> dict[str, Any]:
    """``installation`` event: ``created``, ``deleted``, ``suspend``, ``unsuspend``,
    ``new_permissions_accepted``. The whole installation object; no ``organization`` field (its
    ``account`` says which one), ``repositories`` (none here) and ``requester``."""
    actions = ("created", "deleted", "suspend", "unsuspend", "new_permissions_accepted")
    if action not in actions:
        raise ValueError(f"installation: unknown action {action!r}")
    api = gh.api_url
    return {
        "action": action,
        "installation": gh.installation_body(installation, api),
        "repositories": [],
        "requester": None,
        "sender": gh.user_simple(sender, api),
    }


def push_payload(
    *,
    ref: str,
    before: str,
    after: str,
    repository: dict[str, Any],
    pusher: dict[str, Any],
    organization: dict[str, Any] | None,
    sender: dict[str, Any],
    installation: dict[str, Any] | None,
    created: bool,
    deleted: bool,
    forced: bool,
    base_ref: str | None,
    compare: str,
    commits: list[dict[str, Any]],
    head_commit: dict[str, Any] | None,
) -> dict[str, Any]:
    """``push`` event (no ``action``): ``before``/``after`` (all zeros for a created/deleted branch), the
    pushed ``commits`` (each ``{id, tree_id, distinct, message, timestamp, url, author, committer, added,
    removed, modified}``) and ``head_commit``; ``repository`` in the push flavour (integer timestamps)."""
    payload: dict[str, Any] = {
        "ref": ref,
        "before": before,
        "after": after,
        "repository": repository,
        "pusher": pusher,
    }
    if organization is not None:
        payload["organization"] = organization
    payload["sender"] = sender
    if installation is not None:
        payload["installation"] = installation
    payload.update(
        {
            "created": created,
            "deleted": deleted,
            "forced": forced,
            "base_ref": base_ref,
            "compare": compare,
            "commits": commits,
            "head_commit": head_commit,
        }
    )
    return payload


def repository_payload(
    action: str,
    repository: dict[str, Any],
    sender: dict[str, Any],
    installation: dict[str, Any] | None,
    organization: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``repository`` event: ``created``, ``deleted``, ``renamed`` (``changes.repository.name.from``),
    ``transferred`` (``changes.owner.from.organization|user``), ``archived``, ...; the REST repository shape."""
    actions = ("created", "deleted", "renamed", "transferred", "archived", "unarchived", "edited", "privatized")
    if action not in actions:
        raise ValueError(f"repository: unknown action {action!r}")
    payload: dict[str, Any] = {"action": action}
    if changes is not None:
        payload["changes"] = changes
    payload["repository"] = repository
    if organization is not None:
        payload["organization"] = organization
    payload["sender"] = sender
    if installation is not None:
        payload["installation"] = installation
    return payload


def installation_repositories_payload(
    action: str,
    installation: dict[str, Any],
    repository_selection: str,
    added: list[dict[str, Any]],
    removed: list[dict[str, Any]],
    sender: dict[str, Any],
) -> dict[str, Any]:
    """``installation_repositories`` event: ``added`` / ``removed``, with the whole installation and the
    repositories as ``{id, node_id, name, full_name, private}``."""
    if action not in ("added", "removed"):
        raise ValueError(f"installation_repositories: unknown action {action!r}")
    return {
        "action": action,
        "installation": installation,
        "repository_selection": repository_selection,
        "repositories_added": added,
        "repositories_removed": removed,
        "requester": None,
        "sender": sender,
    }


def ping_payload(gh: Shapes, hook_id: int, app_id: int, events: list[str], url: str, created_at: str) -> dict[str, Any]:
    """``ping`` event of an app's webhook (sent when the webhook is set up)."""
    return {
        "zen": ZEN,
        "hook_id": hook_id,
        "hook": {
            "type": "App",
            "id": hook_id,
            "name": "web",
            "active": True,
            "events": list(events),
            "config": {"content_type": "json", "insecure_ssl": "0", "url": url},
            "updated_at": created_at,
            "created_at": created_at,
            "app_id": app_id,
            "deliveries_url": f"{gh.api_url}/app/hook/deliveries",
        },
    }


def _node_id(kind: str, number: int) -> str:
    import base64

    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


# ---------------------------------------------------------------- delivery


def delivery_headers(
    event: str, body: bytes, secret: str, delivery_id: str, hook_id: int, app_id: int
) -> dict[str, str]:
    return {
        "Accept": "*/*",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-GitHub-Delivery": delivery_id,
        "X-GitHub-Event": event,
        "X-GitHub-Hook-ID": str(hook_id),
        "X-GitHub-Hook-Installation-Target-ID": str(app_id),
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "X-Hub-Signature-256": sign(secret, body),
    }


def deliver(
    url: str,
    event: str,
    payload: Any,
    secret: str,
    delivery_id: str | None = None,
    *,
    hook_id: int = 0,
    app_id: int = 0,
    timeout: float = DEFAULT_TIMEOUT,
    session: requests.Session | None = None,
) -> requests.Response:
    """POSTs one webhook as GitHub does (no redirects followed, no retry). ``payload`` is a JSON-able
    object or the body's bytes. Raises ``requests.RequestException`` when nothing was answered."""
    body = payload if isinstance(payload, bytes) else encode(payload)
    headers = delivery_headers(event, body, secret, delivery_id or str(uuid.uuid4()), hook_id, app_id)
    poster = session.post if session is not None else requests.post
    return poster(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
