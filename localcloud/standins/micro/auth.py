"""micro's auth service, as v3.19.0 runs it: accounts per issuer (namespace), JWT access tokens,
refresh tokens, and the namespace authorisation every handler applies.

- Accounts (``service/auth/handler/auth.go``, ``accounts.go``): keyed by issuer and id, and by issuer and
  name (both unique: 400 ``Account with this ID already exists`` / ``... Name already exists``). The
  ``micro`` issuer gets the default account ``admin`` / ``micro`` (type ``user``, scope ``admin``) the first
  time a token or a list is asked there and it has no user account (``setupDefaultAccount``).
- Tokens (``util/auth/token/jwt/jwt.go``): RS256 JWTs with the account's ``type``, ``scopes``,
  ``metadata``, ``name``, ``sub`` (its id), ``iss`` (its issuer) and ``exp`` (``token_expiry`` seconds from
  now). ``Inspect`` checks the signature and the expiry only: deleting an account does not invalidate the
  access tokens it was given (the gateway's blocklist does, ``service/api/auth/blocklist.go``).
- ``Auth.Token`` with an id and secret, or a refresh token (an opaque id kept per account, deleted with
  it). As micro does, a *valid JWT* given as the secret or the refresh token is exchanged for a new one
  without looking the account up (the "workaround to allow accounts issued by the runtime to be
  refreshed" in auth.go): so a token stays renewable until it expires or is blocked.
- Authorisation (``util/auth/namespace/namespace.go``): ``Authorize`` lets in the ``micro`` issuer's
  ``service``/``admin`` accounts everywhere and other accounts in their own issuer only (403 ``access
  denied to namespace``; 401 ``an account is required`` without one); ``AuthorizeAdmin`` also wants scope
  ``admin`` on a ``user`` (or ``service`` on a ``service``), else 401 ``Unauthorized``.

Secrets are kept hashed (micro uses bcrypt; here a salted PBKDF2, which no caller can tell apart).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from localcloud.standins.micro.wire import MicroError

DEFAULT_NAMESPACE = "micro"  # util/auth/namespace/namespace.go DefaultNamespace
DEFAULT_ADMIN = ("admin", "micro")  # service/auth/handler/auth.go defaultAccount: id admin, secret micro
INVALID_TOKEN = "invalid token provided"  # noqa: S105 - util/auth/token/token.go ErrInvalidToken


@dataclass
class Account:
    id: str
    type: str
    issuer: str
    scopes: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    name: str = ""
    secret_hash: str = ""

    def wire(self, secret: str = "") -> dict[str, Any]:
        """``auth.Account`` as jsonpb writes it (``serializeAccount``: the secret only from Generate)."""
        return {
            "id": self.id,
            "type": self.type,
            "metadata": dict(self.metadata),
            "scopes": list(self.scopes),
            "issuer": self.issuer,
            "secret": secret,
            "name": self.name,
        }


def _hash(secret: str) -> str:
    salt = secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt.encode(), 1000).hex()
    return f"{salt}${digest}"


def _matches(stored: str, secret: str) -> bool:
    salt, _, digest = stored.partition("$")
    return hmac.compare_digest(hashlib.pbkdf2_hmac("sha256", secret.encode(), salt.encode(), 1000).hex(), digest)


def has_type_and_scope(account: Account, kind: str, scope: str) -> bool:
    return account.type == kind and scope in account.scopes


def authorize(account: Account | None, namespace: str, method: str) -> None:
    """``namespace.Authorize`` (util/auth/namespace/namespace.go)."""
    if account is None:
        raise MicroError(401, "an account is required", method)
    if account.issuer == DEFAULT_NAMESPACE and (
        has_type_and_scope(account, "service", "service") or has_type_and_scope(account, "user", "admin")
    ):
        return
    if account.issuer != namespace or account.type not in ("user", "service"):
        raise MicroError(403, "access denied to namespace", method)


def authorize_admin(account: Account | None, namespace: str, method: str) -> None:
    """``namespace.AuthorizeAdmin``: ``Authorize``, then an admin user or a service."""
    authorize(account, namespace, method)
    assert account is not None
    if not has_type_and_scope(account, "user", "admin") and not has_type_and_scope(account, "service", "service"):
        raise MicroError(401, "Unauthorized", method)


class AuthService:
    """The ``auth`` service's handlers (``Auth.Generate``/``Inspect``/``Token``, ``Accounts.List``/
    ``Delete``/``ChangeSecret``), and ``inspect`` as the gateway and every service's auth wrapper call it."""

    def __init__(self, private_key_pem: bytes | None = None) -> None:
        if private_key_pem is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            private_key_pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        self.private_key_pem = private_key_pem
        loaded = serialization.load_pem_private_key(private_key_pem, password=None)
        assert isinstance(loaded, rsa.RSAPrivateKey)
        self._private_key = loaded
        self._public_key = loaded.public_key()
        self.lock = threading.RLock()
        self.accounts: dict[tuple[str, str], Account] = {}  # (issuer, id)
        self.refresh: dict[tuple[str, str], str] = {}  # (issuer, account id) -> refresh token
        self._defaults_checked: set[str] = set()

    # ------------------------------------------------------------------ tokens

    def sign(self, account: Account, expiry_seconds: float) -> tuple[str, int, int]:
        """A JWT for ``account`` (jwt.go ``Generate``): the token, its creation and its expiry (unix)."""
        now = time.time()
        expiry = int(now + expiry_seconds)
        claims = {
            "type": account.type,
            "scopes": list(account.scopes),
            "metadata": dict(account.metadata),
            "name": account.name or account.id,
            "sub": account.id,
            "iss": account.issuer,
            "exp": expiry,
        }
        return jwt.encode(claims, self._private_key, algorithm="RS256"), int(now), expiry

    def inspect(self, token: str) -> Account | None:
        """jwt.go ``Inspect``: the account a valid, unexpired token carries (no store lookup)."""
        if not token or token.count(".") != 2:
            return None
        try:
            claims = jwt.decode(token, self._public_key, algorithms=["RS256"], options={"require": ["exp"]})
        except jwt.PyJWTError:
            return None
        return Account(
            id=str(claims.get("sub") or ""),
            type=str(claims.get("type") or ""),
            issuer=str(claims.get("iss") or ""),
            scopes=[str(s) for s in claims.get("scopes") or []],
            metadata={str(k): str(v) for k, v in (claims.get("metadata") or {}).items()},
            name=str(claims.get("name") or claims.get("sub") or ""),
        )

    def admin_token(self, expiry_seconds: float) -> str:
        """A token of the ``micro`` issuer's default admin (what ``micro login`` as admin/micro gives)."""
        with self.lock:
            self._setup_default_account(DEFAULT_NAMESPACE)
            account = self.accounts[(DEFAULT_NAMESPACE, DEFAULT_ADMIN[0])]
        return self.sign(account, expiry_seconds)[0]

    # ------------------------------------------------------------------ store

    def _setup_default_account(self, namespace: str) -> None:
        """auth.go ``setupDefaultAccount``: admin/micro in ``micro`` while it has no user account."""
        if namespace != DEFAULT_NAMESPACE or namespace in self._defaults_checked:
            return
        if not any(a.issuer == namespace and a.type == "user" for a in self.accounts.values()):
            account_id, secret = DEFAULT_ADMIN
            self._create(Account(account_id, "user", namespace, ["admin"], {"created": str(int(time.time()))}), secret)
        self._defaults_checked.add(namespace)

    def _create(self, account: Account, secret: str) -> None:
        """auth.go ``createAccount``."""
        if (account.issuer, account.id) in self.accounts:
            raise MicroError(400, "Account with this ID already exists", "auth.Auth.Generate")
        account.metadata = dict(account.metadata or {})
        account.metadata.setdefault("created", str(int(time.time())))
        account.name = account.name or account.id
        if any(a.issuer == account.issuer and a.name == account.name for a in self.accounts.values()):
            raise MicroError(400, "Account with this Name already exists", "auth.Auth.Generate")
        account.secret_hash = _hash(secret)
        self.accounts[(account.issuer, account.id)] = account
        self.refresh[(account.issuer, account.id)] = str(uuid.uuid4())

    def _get(self, account_id: str, namespace: str, method: str) -> Account:
        """auth.go ``getAccountForID``: by id, else by name."""
        account = self.accounts.get((namespace, account_id))
        if account is None:
            account = next((a for a in self.accounts.values() if a.issuer == namespace and a.name == account_id), None)
        if account is None:
            raise MicroError(400, "Account not found with this ID", method)
        return account

    # ------------------------------------------------------------------ handlers

    def generate(self, caller: Account | None, header_namespace: str, req: dict[str, Any]) -> dict[str, Any]:
        """``Auth.Generate`` (auth.go)."""
        if not req.get("id"):
            raise MicroError(400, "ID required", "auth.Auth.Generate")
        kind = req.get("type") or "user"
        secret = req.get("secret") or str(uuid.uuid4())
        namespace = (req.get("options") or {}).get("namespace") or header_namespace or DEFAULT_NAMESPACE
        authorize_admin(caller, namespace, "auth.Auth.Generate")
        with self.lock:
            if (namespace, req["id"]) in self.accounts:
                raise MicroError(400, "Account with this ID already exists", "auth")
            account = Account(
                id=req["id"],
                type=kind,
                issuer=namespace,
                scopes=list(req.get("scopes") or []),
                metadata=dict(req.get("metadata") or {}),
                name=req.get("name") or "",
            )
            self._create(account, secret)
            return {"account": account.wire(secret)}

    def inspect_handler(self, req: dict[str, Any]) -> dict[str, Any]:
        """``Auth.Inspect``: a token that does not inspect is 400 (auth.go)."""
        account = self.inspect(str(req.get("token") or ""))
        if account is None:
            raise MicroError(400, INVALID_TOKEN, "auth.Auth.Inspect")
        return {"account": account.wire()}

    def token(self, req: dict[str, Any]) -> dict[str, Any]:
        """``Auth.Token`` (auth.go): id and secret, or a refresh token; a valid JWT is simply renewed."""
        namespace = (req.get("options") or {}).get("namespace") or DEFAULT_NAMESPACE
        account_id, secret, refresh = req.get("id") or "", req.get("secret") or "", req.get("refresh_token") or ""
        expiry = int(req.get("token_expiry") or 0)
        with self.lock:
            self._setup_default_account(namespace)
            if (not account_id or not secret) and not refresh:
                raise MicroError(400, "Credentials or a refresh token required", "auth.Auth.Token")
            carried = self.inspect(refresh or secret)
            if carried is not None:  # the JWT workaround: renewed without looking the account up
                token, created, expires = self.sign(carried, expiry)
                return {"token": _token_wire(token, token, created, expires)}
            if refresh:
                owner = next(
                    (key for key, value in self.refresh.items() if key[0] == namespace and value == refresh), None
                )
                if owner is None:
                    raise MicroError(400, INVALID_TOKEN, "auth.Auth.Token")
                account_id = owner[1]
            account = self._get(account_id, namespace, "auth.Auth.Token")
            if not refresh:
                if not _matches(account.secret_hash, secret):
                    raise MicroError(400, "Secret not correct", "auth.Auth.Token")
                refresh = self.refresh.get((account.issuer, account.id), "")
            token, created, expires = self.sign(account, expiry)
            return {"token": _token_wire(token, refresh, created, expires)}

    def list_accounts(self, caller: Account | None, req: dict[str, Any]) -> dict[str, Any]:
        """``Accounts.List`` (accounts.go)."""
        namespace = (req.get("options") or {}).get("namespace") or DEFAULT_NAMESPACE
        with self.lock:
            self._setup_default_account(namespace)
            authorize_admin(caller, namespace, "auth.Accounts.List")
            found = sorted((a for a in self.accounts.values() if a.issuer == namespace), key=lambda a: a.id)
            return {"accounts": [a.wire() for a in found]}

    def delete_account(self, caller: Account | None, req: dict[str, Any]) -> dict[str, Any]:
        """``Accounts.Delete`` (accounts.go): the account and its refresh token go; its JWTs stay valid."""
        if not req.get("id"):
            raise MicroError(400, "Missing ID", "auth.Accounts.Delete")
        if caller is None:
            raise MicroError(401, "Unauthorized", "auth.Accounts.Delete")
        namespace = (req.get("options") or {}).get("namespace") or DEFAULT_NAMESPACE
        authorize_admin(caller, namespace, "auth.Accounts.Delete")
        with self.lock:
            account = self._get(req["id"], namespace, "auth.Accounts.Delete")
            if req["id"] in (caller.id, caller.name):
                raise MicroError(400, "Can't delete your own account", "auth.Accounts.Delete")
            self.refresh.pop((namespace, account.id), None)
            del self.accounts[(namespace, account.id)]
            self._defaults_checked.discard(namespace)
        return {}

    def change_secret(self, caller: Account | None, req: dict[str, Any]) -> dict[str, Any]:
        """``Accounts.ChangeSecret`` (accounts.go): a micro admin needs no old secret."""
        if not req.get("new_secret"):
            raise MicroError(400, "New secret should not be blank", "auth.Auth.ChangeSecret")
        namespace = (req.get("options") or {}).get("namespace") or DEFAULT_NAMESPACE
        authorize(caller, namespace, "auth.Accounts.ChangeSecret")
        assert caller is not None
        with self.lock:
            account = self._get(str(req.get("id") or ""), namespace, "auth.Accounts.ChangeSecret")
            trusted = (caller.issuer == DEFAULT_NAMESPACE and "admin" in caller.scopes) or (
                caller.type == "service" and caller.issuer == namespace
            )
            if not trusted and not _matches(account.secret_hash, str(req.get("old_secret") or "")):
                raise MicroError(400, "Secret not correct", "auth.Accounts.ChangeSecret")
            account.secret_hash = _hash(req["new_secret"])
        return {}


def _token_wire(access: str, refresh: str, created: int, expiry: int) -> dict[str, Any]:
    """``auth.Token`` as jsonpb writes it (``int64`` as strings)."""
    return {"access_token": access, "refresh_token": refresh, "created": str(created), "expiry": str(expiry)}
