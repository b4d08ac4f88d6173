"""Authentication (platform tokens and dashboard sessions) and authorisation (scope and namespace
role), from the current records on every request: no cache, so a revocation or a removal from the
team takes effect at once."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import ForbiddenError, NotFoundError, UnauthenticatedError, ValidationError
from chalicelib.domain.events import Event
from chalicelib.domain.ids import new_id
from chalicelib.domain.model import (
    SCOPES,
    SCOPES_OF_ROLE,
    Account,
    ApiToken,
    Principal,
    Role,
    Scope,
    role_at_least,
)
from chalicelib.domain.stores import IngestTokenStore, LoginWindowStore, MemberStore, NamespaceStore, TokenStore

TOKEN_PREFIX = "mp_"  # noqa: S105 (a prefix, not a secret)
INGEST_PREFIX = "mp_ing_"
DEFAULT_EXPIRY = timedelta(days=90)
MAX_EXPIRY = timedelta(days=365)
LOGIN_TOKEN_EXPIRY = timedelta(days=30)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(kind: str) -> str:
    """``mp_pat_<43 url-safe characters>``: 256 bits, and a shape the log masking knows."""
    return f"{TOKEN_PREFIX}{kind}_{secrets.token_urlsafe(32).replace('-', 'A').replace('_', 'B')}"


@dataclass(frozen=True)
class Access:
    """The caller's standing in one namespace."""

    principal: Principal
    namespace: str
    role: Role
    scopes: frozenset[Scope]


class AuthService:
    def __init__(
        self,
        tokens: TokenStore,
        members: MemberStore,
        namespaces: NamespaceStore,
        windows: LoginWindowStore,
        clock: Clock,
        platform_admins: tuple[str, ...],
        ingest_tokens: IngestTokenStore | None = None,
    ) -> None:
        self._tokens = tokens
        self._ingest_tokens = ingest_tokens
        self._members = members
        self._namespaces = namespaces
        self._windows = windows
        self._clock = clock
        self._admins = frozenset(a.lower() for a in platform_admins)

    def is_platform_admin(self, login: str) -> bool:
        return login.lower() in self._admins

    # ------------------------------------------------------------------ authentication

    def authenticate_token(self, secret: str) -> Principal:
        if not secret.startswith(TOKEN_PREFIX):
            raise UnauthenticatedError("the token is malformed", {"reason": "malformed"})
        if secret.startswith(INGEST_PREFIX):
            return self._authenticate_ingest(secret)
        token_hash = hash_secret(secret)
        token = self._tokens.by_hash(token_hash)
        now = self._clock.now()
        if token is None:
            raise UnauthenticatedError("the token is not valid", {"reason": "unknown"})
        if token.revoked_at is not None:
            raise UnauthenticatedError("the token was revoked", {"reason": "revoked"})
        if token.expires_at <= now:
            raise UnauthenticatedError("the token has expired", {"reason": "expired"})
        if token.last_used_at is None or token.last_used_at < now - timedelta(seconds=60):
            self._tokens.touch(token_hash, now)  # at most once a minute: not a write per request
        return Principal(
            uid=token.uid,
            login=token.login,
            scopes=token.scopes | {"read"},  # every scope includes read: a deploy token follows its deployments
            token_id=token.id,
            token_namespace=token.namespace,
            platform_admin=self.is_platform_admin(token.login),
        )

    def _authenticate_ingest(self, secret: str) -> Principal:
        """A region's ingest token: a principal that is no user (uid 0, no scope, no namespace)."""
        token_hash = hash_secret(secret)
        token = self._ingest_tokens.by_hash(token_hash) if self._ingest_tokens is not None else None
        if token is None:
            raise UnauthenticatedError("the token is not valid", {"reason": "unknown"})
        if token.revoked_at is not None:
            raise UnauthenticatedError("the token was revoked", {"reason": "revoked"})
        assert self._ingest_tokens is not None
        now = self._clock.now()
        if token.last_used_at is None or token.last_used_at < now - timedelta(seconds=60):
            self._ingest_tokens.touch(token_hash, now)  # at most once a minute: not a write per batch
        return Principal(
            uid=0,
            login=f"ingest-token:{token.id}",
            scopes=frozenset(),
            token_id=token.id,
            via="ingest",
            ingest_region=token.region,
        )

    def authenticate_session(self, cookie: str) -> Principal:
        found = self._windows.get_session(hash_secret(cookie), self._clock.now())
        if found is None:
            raise UnauthenticatedError("the session has ended; log in again", {"reason": "session"})
        uid, login = found
        return Principal(
            uid=uid, login=login, scopes=frozenset(SCOPES), platform_admin=self.is_platform_admin(login), via="session"
        )

    # ------------------------------------------------------------------ authorisation

    def require_scope(self, principal: Principal, scope: Scope | None) -> None:
        if scope is not None and scope not in principal.scopes:
            raise ForbiddenError(f"this needs a token with the scope {scope!r}", {"needed_scope": scope})

    def access(
        self, principal: Principal, ns_id: str, *, scope: Scope | None = None, role: Role | None = None
    ) -> Access:
        """The caller's access to the namespace. A namespace the caller cannot see answers 404."""
        hidden = NotFoundError(f"namespace {ns_id!r} not found", {"namespace": ns_id})
        if principal.token_namespace is not None and principal.token_namespace != ns_id:
            raise hidden
        member = self._members.get(ns_id, principal.uid)
        if member is None:
            raise hidden
        if role is not None and not role_at_least(member.role, role):
            raise ForbiddenError(
                f"this needs the role {role!r} in {ns_id}; you are {member.role!r}",
                {"needed_role": role, "role": member.role},
            )
        effective = principal.scopes & SCOPES_OF_ROLE[member.role]
        if scope is not None and scope not in effective:
            raise ForbiddenError(
                f"this needs the scope {scope!r}", {"needed_scope": scope, "scopes": sorted(effective)}
            )
        return Access(principal, ns_id, member.role, effective)

    # ------------------------------------------------------------------ tokens

    def mint_login_token(self, account: Account) -> tuple[str, ApiToken]:
        """A token for the CLI after a login: every scope, capped in each namespace by the role."""
        now = self._clock.now()
        secret = new_secret("usr")
        token = ApiToken(
            id=new_id(now),
            name="login",
            uid=account.uid,
            login=account.login,
            namespace=None,
            scopes=frozenset(SCOPES),
            created_at=now,
            expires_at=now + LOGIN_TOKEN_EXPIRY,
            kind="login",
        )
        self._tokens.create(token, hash_secret(secret), [])
        return secret, token

    def create_token(
        self, principal: Principal, name: str, ns_id: str, scopes: list[Scope], expires_in: int | None
    ) -> tuple[str, ApiToken]:
        if principal.token_id is not None and principal.token_namespace is not None:
            raise ForbiddenError("an API token cannot create tokens; log in", {"needed": "login token or session"})
        access = self.access(principal, ns_id, scope="read")
        wanted = frozenset(scopes)
        beyond = wanted - SCOPES_OF_ROLE[access.role]
        if beyond:
            raise ForbiddenError(
                f"the role {access.role!r} cannot grant {sorted(beyond)}",
                {"role": access.role, "not_allowed": sorted(beyond)},
            )
        lifetime = DEFAULT_EXPIRY if expires_in is None else timedelta(seconds=expires_in)
        if lifetime <= timedelta(0) or lifetime > MAX_EXPIRY:
            raise ValidationError(
                "expires_in must be between 1 second and 365 days",
                {"fields": [{"field": "expires_in", "message": "at most 31536000"}]},
            )
        now = self._clock.now()
        secret = new_secret("pat")
        token = ApiToken(
            id=new_id(now),
            name=name,
            uid=principal.uid,
            login=principal.login,
            namespace=ns_id,
            scopes=wanted,
            created_at=now,
            expires_at=now + lifetime,
        )
        allowed_roles = [r for r, s in SCOPES_OF_ROLE.items() if wanted <= s]
        event = Event.create(
            "token.created", ns_id, now, {"token_id": token.id, "actor": principal.actor, "scopes": sorted(wanted)}
        )
        self._tokens.create(token, hash_secret(secret), [event], require_role=(ns_id, allowed_roles))
        return secret, token

    def list_tokens(self, principal: Principal) -> list[ApiToken]:
        now = self._clock.now()
        return sorted(
            (t for t in self._tokens.list_for_user(principal.uid) if t.revoked_at is None and t.expires_at > now),
            key=lambda t: t.created_at,
        )

    def revoke_token(self, principal: Principal, token_id: str) -> ApiToken:
        found = self._tokens.find_for_user(principal.uid, token_id)
        if found is None:
            raise NotFoundError(f"token {token_id!r} not found", {"token_id": token_id})
        token, token_hash = found
        now = self._clock.now()
        events = [Event.create("token.revoked", token.namespace, now, {"token_id": token.id, "actor": principal.actor})]
        self._tokens.revoke(token_hash, now, events if token.namespace else [])
        return token

    def revoke_secret(self, secret: str) -> None:
        self._tokens.revoke(hash_secret(secret), self._clock.now(), [])

    def now(self) -> datetime:
        return self._clock.now()
