"""Domain rules of accounts, roles, tokens and webhooks, on in-memory adapters (no network)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.adapters.memory.github import InMemoryGitHub
from chalicelib.domain.errors import ForbiddenError, NotFoundError, UnauthenticatedError
from chalicelib.domain.model import SCOPES_OF_ROLE, Member, Principal, namespace_id, role_at_least
from chalicelib.domain.services.auth import AuthService, hash_secret, new_secret
from chalicelib.domain.services.github_webhooks import signature_of, verify_signature
from chalicelib.domain.services.namespaces import failure_reason


def test_github_s_documented_signature_test_vector() -> None:
    secret, body = "It's a Secret to Everybody", b"Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature_of(secret, body) == expected
    assert verify_signature(secret, body, expected)
    assert not verify_signature(secret, body + b" ", expected)
    assert not verify_signature(secret, body, None) and not verify_signature("", body, expected)


def test_roles_are_ordered_and_cap_scopes() -> None:
    assert role_at_least("owner", "admin") and role_at_least("member", "member")
    assert not role_at_least("viewer", "member")
    assert SCOPES_OF_ROLE["viewer"] == {"read"} and "deploy" in SCOPES_OF_ROLE["member"]
    assert "billing" not in SCOPES_OF_ROLE["member"]


def test_namespace_ids_are_dns_labels() -> None:
    assert namespace_id("Acme", "Back_End") == "acme-back-end"
    assert namespace_id("a" * 40, "b" * 40).__len__() <= 63


def test_secrets_are_long_prefixed_and_stored_as_hashes() -> None:
    s = new_secret("pat")
    assert s.startswith("mp_pat_") and len(s) > 40
    assert hash_secret(s) != s and len(hash_secret(s)) == 64


def test_failure_reasons_come_from_the_error_message_never_a_trace() -> None:
    error = {
        "Error": "NoCapacityError",
        "Cause": '{"errorType": "NoCapacityError", "errorMessage": "no room in tiny-1", "stackTrace": ["secret line"]}',
    }
    assert failure_reason(error) == "NoCapacityError: no room in tiny-1"
    assert failure_reason(None) == "unknown failure"


class Members:
    def __init__(self, members: list[Member]) -> None:
        self.by_key = {(m.namespace, m.uid): m for m in members}

    def get(self, ns: str, uid: int) -> Member | None:
        return self.by_key.get((ns, uid))


def auth_with(members: list[Member], clock: Any) -> AuthService:
    return AuthService(
        tokens=None,
        members=Members(members),
        namespaces=None,
        windows=None,  # type: ignore[arg-type]
        clock=clock,
        platform_admins=("ops",),
    )


def principal(uid: int, scopes: set[str], token_ns: str | None = None) -> Principal:
    return Principal(uid=uid, login=f"u{uid}", scopes=frozenset(scopes), token_id="t", token_namespace=token_ns)  # type: ignore[arg-type]


def test_access_hides_namespaces_and_names_what_is_missing(clock: Any) -> None:
    auth = auth_with(
        [
            Member("ns1", 1, "ada", "owner", "org_owner"),
            Member("ns1", 3, "grace", "member", "team"),
            Member("ns1", 5, "ops", "viewer", "outside"),
        ],
        clock,
    )
    everything = {"read", "deploy", "billing", "admin"}
    assert auth.access(principal(1, everything), "ns1", scope="admin", role="owner").role == "owner"
    with pytest.raises(NotFoundError):
        auth.access(principal(4, everything), "ns1", scope="read")  # not a member
    with pytest.raises(NotFoundError):
        auth.access(principal(1, everything, token_ns="ns2"), "ns1", scope="read")  # a token of another namespace
    with pytest.raises(ForbiddenError) as e:
        auth.access(principal(3, everything), "ns1", scope="read", role="admin")
    assert e.value.details["needed_role"] == "admin"
    with pytest.raises(ForbiddenError) as e:
        auth.access(principal(3, everything), "ns1", scope="billing")  # beyond a member's role
    assert e.value.details["needed_scope"] == "billing"
    with pytest.raises(ForbiddenError):
        auth.access(principal(1, {"read"}), "ns1", scope="deploy")  # beyond the token's scopes
    assert auth.access(principal(5, everything), "ns1").scopes == {"read"}
    assert auth.is_platform_admin("OPS") and not auth.is_platform_admin("ada")


def test_malformed_tokens_are_refused_before_any_lookup(clock: Any) -> None:
    with pytest.raises(UnauthenticatedError) as e:
        auth_with([], clock).authenticate_token("ghp_something")
    assert e.value.details["reason"] == "malformed"


def test_in_memory_github_answers_the_port() -> None:
    gh = InMemoryGitHub()
    gh.add_user("ada")
    gh.add_org_member("acme", "ada", "admin")
    gh.add_team_member("acme", "backend", "linus", "maintainer")
    assert [u.login for u in gh.org_owners("acme")] == ["ada"]
    team = gh.get_team("acme", "backend")
    assert team is not None and team.slug == "backend"
    assert gh.get_team("acme", "nope") is None and gh.get_user_by_login("nobody") is None


def test_outside_the_local_stage_a_deploy_source_must_be_an_https_url(clock: Any) -> None:
    from chalicelib.domain.errors import ValidationError
    from chalicelib.domain.services.deploys import DeployService, DeploySettings

    service = DeployService(
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        clock,  # type: ignore[arg-type]
        DeploySettings(allow_local_sources=False),
    )
    for source in ("/etc", "file:///srv/repo.git", "git@github.com:acme/hello.git", "http://example.com/r.git"):
        with pytest.raises(ValidationError) as e:
            service.request("ns1", "hello", source, "HEAD", {"kind": "api"})
        assert e.value.details["fields"][0]["field"] == "source"
    for bad in ("Bad_Name", "api\n", "-api"):
        with pytest.raises(ValidationError):
            service.request("ns1", bad, "https://github.com/acme/hello.git", "HEAD", {"kind": "api"})
