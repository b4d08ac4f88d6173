"""The third-party stand-ins over real HTTP on loopback: the GitHub one driven through PyGithub, the
Slack one through requests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from github import Auth, BadCredentialsException, Github, GithubException, UnknownObjectException

from localcloud.standins.github import GitHubStandIn, default_token
from localcloud.standins.slack import SlackStandIn


@pytest.fixture
def gh() -> Iterator[GitHubStandIn]:
    stand_in = GitHubStandIn().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    stand_in = SlackStandIn().start()
    yield stand_in
    stand_in.stop()


def client(gh: GitHubStandIn, login: str = "ada", per_page: int = 30) -> Github:
    # PyGithub sleeps 0.25 s between requests and 1 s between writes by default: not against a stand-in.
    return Github(
        base_url=gh.api_url,
        auth=Auth.Token(gh.token_for(login)),
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
        per_page=per_page,
    )


# ---------------------------------------------------------------- GitHub


def test_the_seeded_tokens_are_deterministic_and_shaped_as_user_access_tokens(gh: GitHubStandIn) -> None:
    for login in ("ada", "linus", "grace", "ken", "ops"):
        token = gh.token_for(login)
        assert token == default_token(login)
        assert token.startswith("ghu_") and len(token) == 40 and token[4:].isalnum()
    assert len({gh.token_for(login) for login in ("ada", "linus", "grace", "ken", "ops")}) == 5


def test_the_authenticated_user(gh: GitHubStandIn) -> None:
    me = client(gh, "grace").get_user()
    assert (me.login, me.id, me.type, me.site_admin) == ("grace", 3, "User", False)
    assert me.url == f"{gh.api_url}/users/grace"
    assert me.html_url == "https://github.com/grace"


def test_another_user_and_an_unknown_one(gh: GitHubStandIn) -> None:
    g = client(gh)
    assert g.get_user("linus").id == 2
    with pytest.raises(UnknownObjectException):
        g.get_user("nobody")


def test_organization_membership_roles(gh: GitHubStandIn) -> None:
    g = client(gh, "ada")
    org = g.get_organization("acme")
    assert (org.login, org.id) == ("acme", 1000)
    membership = g.get_user("ada").get_organization_membership(org)
    assert (membership.role, membership.state) == ("admin", "active")
    assert membership.user.login == "ada" and membership.organization.login == "acme"
    assert g.get_user("grace").get_organization_membership("acme").role == "member"
    with pytest.raises(UnknownObjectException):
        g.get_user("ops").get_organization_membership("acme")


def test_a_users_own_organization_membership(gh: GitHubStandIn) -> None:
    assert client(gh, "grace").get_user().get_organization_membership("acme").role == "member"
    assert client(gh, "ada").get_user().get_organization_membership("acme").role == "admin"
    with pytest.raises(UnknownObjectException):
        client(gh, "ops").get_user().get_organization_membership("acme")
    assert [o.login for o in client(gh, "ken").get_user().get_orgs()] == ["acme"]
    assert list(client(gh, "ops").get_user().get_orgs()) == []


def test_named_user_organization_membership(gh: GitHubStandIn) -> None:
    g = client(gh, "ada")
    assert g.get_user("linus").get_organization_membership("acme").role == "member"


def test_organization_members_by_role(gh: GitHubStandIn) -> None:
    org = client(gh).get_organization("acme")
    assert [u.login for u in org.get_members()] == ["ada", "linus", "grace", "ken"]
    assert [u.login for u in org.get_members(role="admin")] == ["ada"]
    assert [u.login for u in org.get_members(role="member")] == ["linus", "grace", "ken"]
    assert org.has_in_members(client(gh).get_user("grace"))
    assert not org.has_in_members(client(gh).get_user("ops"))


def test_teams_are_listed(gh: GitHubStandIn) -> None:
    teams = list(client(gh).get_organization("acme").get_teams())
    assert [(t.slug, t.id, t.name) for t in teams] == [("backend", 2001, "backend"), ("frontend", 2002, "frontend")]
    assert teams[0].privacy == "closed" and teams[0].permission == "pull"


def test_team_by_slug_and_its_members_by_role(gh: GitHubStandIn) -> None:
    team = client(gh).get_organization("acme").get_team_by_slug("backend")
    assert team.id == 2001 and team.organization.login == "acme" and team.members_count == 2
    assert [u.login for u in team.get_members(role="maintainer")] == ["linus"]
    assert [u.login for u in team.get_members(role="member")] == ["grace"]
    assert [u.login for u in team.get_members(role="all")] == ["linus", "grace"]
    assert [u.login for u in team.get_members()] == ["linus", "grace"]


def test_team_membership_and_has_in_members(gh: GitHubStandIn) -> None:
    g = client(gh)
    team = g.get_organization("acme").get_team_by_slug("backend")
    assert team.has_in_members(g.get_user("grace"))
    assert not team.has_in_members(g.get_user("ken"))
    membership = team.get_team_membership("linus")
    assert (membership.role, membership.state) == ("maintainer", "active")
    with pytest.raises(UnknownObjectException):
        team.get_team_membership("ken")


def test_teams_from_the_list_use_githubs_team_url(gh: GitHubStandIn) -> None:
    backend = next(t for t in client(gh).get_organization("acme").get_teams() if t.slug == "backend")
    assert backend.url == f"{gh.api_url}/organizations/1000/team/2001"
    assert [u.login for u in backend.get_members(role="maintainer")] == ["linus"]
    assert client(gh).get_organization("acme").get_team(2002).slug == "frontend"  # legacy /teams/{id}


def test_the_users_own_teams(gh: GitHubStandIn) -> None:
    assert [t.slug for t in client(gh, "grace").get_user().get_teams()] == ["backend"]
    assert list(client(gh, "ops").get_user().get_teams()) == []


def test_pagination_across_pages_gives_every_member(gh: GitHubStandIn) -> None:
    for login in ("u1", "u2", "u3"):
        gh.add_user(login)
        gh.add_team_member("acme", "backend", login)
    g = client(gh, per_page=2)
    team = g.get_organization("acme").get_team_by_slug("backend")
    assert [u.login for u in team.get_members()] == ["linus", "grace", "u1", "u2", "u3"]
    assert [u.login for u in g.get_organization("acme").get_members()] == [
        "ada",
        "linus",
        "grace",
        "ken",
        "u1",
        "u2",
        "u3",
    ]
    pages = [r for r in gh.requests_log() if r["path"] == "/api/v3/organizations/1000/team/2001/members"]
    pages += [r for r in gh.requests_log() if r["path"] == "/api/v3/orgs/acme/teams/backend/members"]
    assert len(pages) == 3  # 5 members, 2 a page


def test_the_link_header_is_githubs(gh: GitHubStandIn) -> None:
    headers = {"Authorization": f"token {gh.token_for('ada')}"}
    r = requests.get(f"{gh.api_url}/orgs/acme/members?per_page=1&page=2", headers=headers, timeout=5)
    assert r.status_code == 200 and [u["login"] for u in r.json()] == ["linus"]
    members = f"{gh.api_url}/orgs/acme/members"
    assert r.headers["Link"] == (
        f'<{members}?per_page=1&page=1>; rel="prev", <{members}?per_page=1&page=3>; rel="next", '
        f'<{members}?per_page=1&page=4>; rel="last", <{members}?per_page=1&page=1>; rel="first"'
    )
    assert r.links["next"]["url"] == f"{members}?per_page=1&page=3"
    last = requests.get(r.links["last"]["url"], headers=headers, timeout=5)
    assert [u["login"] for u in last.json()] == ["ken"] and "next" not in last.links
    assert "Link" not in requests.get(members, headers=headers, timeout=5).headers  # one page: no Link


def test_removing_a_member_through_the_api_is_seen_by_the_next_read(gh: GitHubStandIn) -> None:
    g = client(gh, "ada")
    team = g.get_organization("acme").get_team_by_slug("backend")
    team.remove_membership(g.get_user("grace"))
    assert [u.login for u in team.get_members()] == ["linus"]
    assert not team.has_in_members(g.get_user("grace"))
    assert gh.team_members("acme", "backend") == {"linus": "maintainer"}


def test_adding_a_member_through_the_api(gh: GitHubStandIn) -> None:
    g = client(gh, "linus")  # a maintainer of backend may change it
    team = g.get_organization("acme").get_team_by_slug("backend")
    team.add_membership(g.get_user("ken"), "maintainer")
    assert [u.login for u in team.get_members(role="maintainer")] == ["linus", "ken"]
    assert team.get_team_membership("ken").role == "maintainer"


def test_adding_someone_outside_the_organization_invites_them(gh: GitHubStandIn) -> None:
    g = client(gh, "ada")
    team = g.get_organization("acme").get_team_by_slug("frontend")
    team.add_membership(g.get_user("ops"))
    assert team.get_team_membership("ops").state == "pending"
    assert [u.login for u in team.get_members()] == ["ken"]
    assert g.get_user("ops").get_organization_membership("acme").state == "pending"
    gh.accept_invitation("acme", "ops")
    assert [u.login for u in team.get_members()] == ["ken", "ops"]


def test_a_plain_member_cannot_change_a_team(gh: GitHubStandIn) -> None:
    g = client(gh, "grace")
    team = g.get_organization("acme").get_team_by_slug("backend")
    with pytest.raises(GithubException) as raised:
        team.add_membership(g.get_user("grace"), "maintainer")
    assert raised.value.status == 403
    assert gh.team_members("acme", "backend") == {"linus": "maintainer", "grace": "member"}


def test_changes_by_the_local_cloud_are_seen_through_the_api(gh: GitHubStandIn) -> None:
    team = client(gh).get_organization("acme").get_team_by_slug("backend")
    gh.remove_team_member("acme", "backend", "grace")
    gh.add_team_member("acme", "backend", "ken", role="maintainer")
    assert [(u.login) for u in team.get_members(role="maintainer")] == ["linus", "ken"]
    assert [u.login for u in team.get_members(role="member")] == []


def test_organization_membership_changes_through_the_api(gh: GitHubStandIn) -> None:
    g = client(gh, "ada")
    org = g.get_organization("acme")
    org.add_to_members(g.get_user("ken"), role="admin")
    assert g.get_user("ken").get_organization_membership("acme").role == "admin"
    org.remove_from_membership(g.get_user("grace"))
    assert [u.login for u in org.get_members()] == ["ada", "linus", "ken"]
    assert gh.team_members("acme", "backend") == {"linus": "maintainer"}  # gone from its teams too
    with pytest.raises(GithubException) as raised:
        client(gh, "linus").get_organization("acme").add_to_members(g.get_user("linus"), role="admin")
    assert raised.value.status == 403


def test_outsiders_do_not_see_the_organizations_teams(gh: GitHubStandIn) -> None:
    g = client(gh, "ops")
    with pytest.raises(UnknownObjectException):
        list(g.get_organization("acme").get_teams())
    with pytest.raises(UnknownObjectException):
        g.get_organization("acme").get_team_by_slug("backend").id  # noqa: B018
    assert list(g.get_organization("acme").get_members()) == []  # no public members
    # an outsider asking about a member is redirected (302) to public_members, where grace is not
    assert not g.get_organization("acme").has_in_members(g.get_user("grace"))
    r = requests.get(f"{gh.api_url}/orgs/acme/members/grace", allow_redirects=False, timeout=5)
    assert r.status_code == 302 and r.headers["Location"] == f"{gh.api_url}/orgs/acme/public_members/grace"


def test_a_bad_token_is_bad_credentials(gh: GitHubStandIn) -> None:
    g = Github(base_url=gh.api_url, auth=Auth.Token("ghu_" + "x" * 36), retry=None, seconds_between_requests=None)
    with pytest.raises(BadCredentialsException) as raised:
        g.get_user().login  # noqa: B018
    assert raised.value.status == 401
    assert raised.value.data == {
        "message": "Bad credentials",
        "documentation_url": "https://docs.github.com/rest",
        "status": "401",
    }


@pytest.mark.parametrize("scheme", ["token", "Bearer"])
def test_both_authorization_schemes(gh: GitHubStandIn, scheme: str) -> None:
    r = requests.get(f"{gh.api_url}/user", headers={"Authorization": f"{scheme} {gh.token_for('ken')}"}, timeout=5)
    assert r.status_code == 200 and r.json()["login"] == "ken"


def test_no_credential_where_one_is_needed_is_401(gh: GitHubStandIn) -> None:
    r = requests.get(f"{gh.api_url}/user", timeout=5)
    assert r.status_code == 401
    assert r.json()["message"] == "Requires authentication" and r.json()["status"] == "401"
    assert requests.get(f"{gh.api_url}/orgs/acme", timeout=5).status_code == 200  # public


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nowhere"),
        ("GET", "/orgs/nope"),
        ("GET", "/orgs/acme/teams/nope"),
        ("POST", "/user"),  # a wrong method is 404 too
        ("PATCH", "/orgs/acme/teams/backend"),
    ],
)
def test_not_found_has_githubs_shape(gh: GitHubStandIn, method: str, path: str) -> None:
    headers = {"Authorization": f"token {gh.token_for('ada')}"}
    r = requests.request(method, gh.api_url + path, headers=headers, timeout=5)
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert r.json() == {"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}


def test_github_headers(gh: GitHubStandIn) -> None:
    g = client(gh)
    g.get_user().login  # noqa: B018
    remaining, limit = g.rate_limiting
    assert limit == 5000 and 0 < remaining < 5000
    assert g.rate_limiting_resettime > 0
    r = requests.get(f"{gh.api_url}/orgs/acme", timeout=5)
    assert r.headers["X-RateLimit-Limit"] == "60"
    assert r.headers["X-GitHub-Request-Id"]


def test_the_request_log_keeps_no_credentials(gh: GitHubStandIn) -> None:
    token = gh.token_for("ada")
    client(gh).get_organization("acme").login  # noqa: B018
    r = requests.get(f"{gh.url}/_stand-in/requests", timeout=5)
    assert r.status_code == 200
    assert {"method": "GET", "path": "/api/v3/orgs/acme", "status": 200, "user": "ada"}.items() <= r.json()[-1].items()
    assert token not in r.text
    assert requests.delete(f"{gh.url}/_stand-in/requests", timeout=5).status_code == 204
    assert gh.requests_log() == []


def test_a_port_in_use_is_a_clear_error(gh: GitHubStandIn) -> None:
    with pytest.raises(OSError, match=f"port {gh.port} .*already in use"):
        GitHubStandIn(port=gh.port).start()


def test_a_stopped_stand_in_answers_nothing() -> None:
    stand_in = GitHubStandIn().start()
    session = requests.Session()  # a keep-alive connection must not outlive stop()
    assert session.get(f"{stand_in.api_url}/orgs/acme", timeout=5).status_code == 200
    stand_in.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(f"{stand_in.api_url}/orgs/acme", timeout=5)
    again = GitHubStandIn(port=stand_in.port).start()  # the port can be taken again at once
    try:
        assert requests.get(f"{again.api_url}/orgs/acme", timeout=5).status_code == 200
    finally:
        again.stop()


def test_a_custom_seed() -> None:
    seed = {
        "users": [{"login": "octo", "id": 7, "token": "ghu_" + "o" * 36}],
        "orgs": [{"login": "tiny", "id": 9, "members": {"octo": "admin"}, "teams": [{"id": 11, "name": "Core Team"}]}],
    }
    with GitHubStandIn(seed=seed) as gh:
        g = Github(base_url=gh.api_url, auth=Auth.Token("ghu_" + "o" * 36), retry=None, seconds_between_requests=None)
        assert g.get_user().login == "octo"
        assert [t.slug for t in g.get_organization("tiny").get_teams()] == ["core-team"]


# ---------------------------------------------------------------- Slack


def test_a_slack_message_is_received(slack: SlackStandIn) -> None:
    url = slack.webhook_url("alerts")
    r = requests.post(url, json={"text": "deploy failed", "blocks": [{"type": "section"}]}, timeout=5)
    assert (r.status_code, r.text) == (200, "ok")
    assert r.headers["Content-Type"].startswith("text/plain")
    [message] = slack.received()
    assert message["path"] == url.removeprefix(slack.url)
    assert message["body"] == {"text": "deploy failed", "blocks": [{"type": "section"}]}
    assert message["received_at"]
    assert slack.received(url) == [message]
    assert slack.received("/services/T/B/other") == []
    assert requests.get(f"{slack.url}/_stand-in/received", timeout=5).json() == [message]


def test_a_slack_form_payload_is_accepted(slack: SlackStandIn) -> None:
    r = requests.post(slack.webhook_url("x"), data={"payload": '{"text": "hi"}'}, timeout=5)
    assert (r.status_code, r.text) == (200, "ok")
    assert slack.received()[0]["body"] == {"text": "hi"}


@pytest.mark.parametrize(
    ("name", "kwargs", "status", "answer"),
    [
        ("alerts", {"data": b"not json"}, 400, "invalid_payload"),
        ("alerts", {"json": ["a", "list"]}, 400, "invalid_payload"),
        ("alerts", {"json": {"text": ""}}, 400, "no_text"),
        ("alerts", {"json": {"username": "bot"}}, 400, "no_text"),
        ("gone", {"json": {"text": "hi"}}, 404, "no_service"),
        ("fail500", {"json": {"text": "hi"}}, 500, "rollup_error"),
    ],
)
def test_slack_error_answers(
    slack: SlackStandIn, name: str, kwargs: dict[str, object], status: int, answer: str
) -> None:
    r = requests.post(slack.webhook_url(name), timeout=5, **kwargs)  # type: ignore[arg-type]
    assert (r.status_code, r.text) == (status, answer)
    assert slack.received() == []


def test_slack_received_can_be_cleared(slack: SlackStandIn) -> None:
    requests.post(slack.webhook_url("a"), json={"text": "1"}, timeout=5)
    assert len(slack.received()) == 1
    assert requests.delete(f"{slack.url}/_stand-in/received", timeout=5).status_code == 204
    assert slack.received() == []


def test_slack_port_in_use_is_a_clear_error(slack: SlackStandIn) -> None:
    with pytest.raises(OSError, match=f"port {slack.port} .*already in use"):
        SlackStandIn(port=slack.port).start()
