"""The commands: each takes the :class:`~cli.platform_cli.context.Context` and the parsed arguments and
returns the exit code (errors are raised as :class:`~cli.platform_cli.errors.CliError` and mapped by
:func:`cli.platform_cli.main.main`)."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from cli.platform_cli import micro_config
from cli.platform_cli.client import ApiClient
from cli.platform_cli.config import (
    DEFAULT_API_URL,
    MICRO_AUTH_TOKEN,
    MICRO_NAMESPACE,
    MICRO_PROXY_ADDRESS,
    OWNED_KEYS,
    PLATFORM_API_URL,
    PLATFORM_TOKEN,
    display_path,
    ensure_micro_directory,
    normalise_api_url,
    write_atomic,
)
from cli.platform_cli.context import Context, show_secret_key
from cli.platform_cli.errors import (
    EXIT_API,
    EXIT_AUTH,
    EXIT_OK,
    ApiError,
    CliError,
    UsageError,
)
from cli.platform_cli.output import clean, key_values, table

LOCAL_API_URL = DEFAULT_API_URL
SCOPES = ("read", "deploy", "billing", "admin")
CREATE_HINT = "platform namespaces create --org ORG --team TEAM --region REGION --plan PLAN"

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """Seconds in ``30d``, ``12h``, ``45m``, ``90s``, ``2w`` or a plain number of seconds."""
    match = _DURATION.match(text.lower())
    if not match or int(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30d, 12h, 45m or seconds)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def seg(value: str) -> str:
    """``value`` as one URL path segment."""
    return quote(value, safe="")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any, key: str) -> list[dict[str, Any]]:
    items = _dict(value).get(key)
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


# -- logging in ---------------------------------------------------------------------------------------


def device_login(client: ApiClient, ctx: Context) -> dict[str, Any]:
    """The OAuth-style device flow: show the code, poll until approved, denied or expired."""
    start = _dict(client.request("POST", "/v1/auth/device"))
    device_code = start.get("device_code")
    if not isinstance(device_code, str):
        raise CliError("the API's device login answer has no device_code", "invalid_response")
    ctx.note(
        f"To log in, open {clean(str(start.get('verification_uri', '')))} "
        f"and enter the code {clean(str(start.get('user_code', '')))}"
    )
    ctx.note("Waiting for the approval...")
    interval = float(start.get("interval") or 5)
    expires_in = float(start.get("expires_in") or 900)
    waited = 0.0
    while True:
        if waited >= expires_in:
            raise CliError(
                "the login code expired before it was approved: run the login again", "expired_token", EXIT_AUTH
            )
        ctx.sleep(interval)
        waited += interval
        try:
            return _dict(client.request("POST", "/v1/auth/device/token", json={"device_code": device_code}))
        except ApiError as exc:
            given = _dict(exc.details).get("interval")
            if exc.code == "authorization_pending":
                # the interval the API holds polls to (GitHub's, after an earlier slow_down): never poll sooner
                if isinstance(given, int | float) and not isinstance(given, bool) and given > interval:
                    interval = float(given)
                continue
            if exc.code == "slow_down":
                interval = float(given) if isinstance(given, int | float) and given > interval else interval + 5
                continue
            if exc.code == "expired_token":
                raise CliError(
                    "the login code expired before it was approved: run the login again", "expired_token", EXIT_AUTH
                ) from exc
            if exc.code == "access_denied":
                raise CliError("the login was denied in the browser", "access_denied", EXIT_AUTH) from exc
            raise


def local_login(client: ApiClient, api_url: str, login: str) -> dict[str, Any]:
    try:
        return _dict(client.request("POST", "/v1/auth/local-login", json={"login": login}))
    except ApiError as exc:
        # A 404 naming the login is an unknown seeded user; any other 404 means the route is not there.
        unknown_login = isinstance(exc.details, dict) and "login" in exc.details
        if exc.status == 404 and not unknown_login:
            raise CliError(
                f"the API at {api_url} is not a local-stage API (no local login): log in without --local",
                "not_local",
                exc.exit_code,
            ) from exc
        raise


def _login(ctx: Context, api_url: str, *, local: bool, login: str | None, interactive: bool) -> dict[str, Any]:
    client = ctx.api(base_url=api_url, auth=False)
    if local:
        if not login:
            if not interactive:
                raise UsageError("which seeded login to use? pass --login LOGIN (e.g. --login ada)", "missing_answer")
            login = ctx.ask("Log in as which seeded user (ada, linus, grace, ken, ops)", flag="--login")
        answer = local_login(client, api_url, login)
    else:
        answer = device_login(client, ctx)
    if not isinstance(answer.get("token"), str) or not answer["token"]:
        raise CliError("the API's login answer has no token", "invalid_response")
    return answer


def _login_summary(answer: dict[str, Any]) -> dict[str, Any]:
    """The login answer without its secret, for output."""
    return {k: v for k, v in answer.items() if k != "token"}


def cmd_login(ctx: Context, args: argparse.Namespace) -> int:
    api_url = normalise_api_url(args.api_url) if args.api_url else ctx.config.api_url
    local = bool(args.local or args.login)
    answer = _login(ctx, api_url, local=local, login=args.login, interactive=ctx.interactive(args.yes))
    ctx.save({PLATFORM_API_URL: api_url, PLATFORM_TOKEN: answer["token"]})
    summary = {**_login_summary(answer), "api_url": api_url, "config": str(ctx.config.location.path)}
    ctx.emit(
        summary,
        f"Logged in to {api_url} as {cellify(answer.get('login'))} (expires {cellify(answer.get('expires_at'))})\n",
    )
    return EXIT_OK


def cellify(value: Any) -> str:
    return clean(str(value)) if value is not None else "-"


def cmd_logout(ctx: Context, args: argparse.Namespace) -> int:
    config = ctx.config
    client = ctx.api()
    revoked = True
    try:
        client.request("POST", "/v1/auth/logout")
    except ApiError as exc:
        if exc.status != 401:
            raise
        revoked = False  # already expired or revoked: forget it all the same
    if config.file_values.get(PLATFORM_TOKEN):
        ctx.save({PLATFORM_TOKEN: None})
    if config.source(PLATFORM_TOKEN) == "environment":
        ctx.note("note: PLATFORM_TOKEN is set in the environment: unset it too")
    text = "Logged out: the token was revoked\n" if revoked else "Logged out (the token was already invalid)\n"
    ctx.emit({"logged_out": True, "revoked": revoked}, text)
    return EXIT_OK


def _namespace_rows(namespaces: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [n.get("id"), n.get("role"), n.get("status"), n.get("github_org"), n.get("github_team"), n.get("region")]
        for n in namespaces
    ]


def cmd_whoami(ctx: Context, args: argparse.Namespace) -> int:
    me = _dict(ctx.api().request("GET", "/v1/me"))
    namespaces = _list(me, "namespaces")
    text = key_values(
        [
            ("login", me.get("login")),
            ("id", me.get("id")),
            ("platform admin", bool(me.get("platform_admin"))),
            ("api", ctx.config.api_url),
            ("namespace", ctx.config.namespace),
        ]
    )
    if namespaces:
        text += "\n" + table(["id", "role", "status", "org", "team", "region"], _namespace_rows(namespaces))
    else:
        text += f"\nNo namespaces yet: create one with `{CREATE_HINT}`\n"
    ctx.emit(me, text)
    return EXIT_OK


# -- init ---------------------------------------------------------------------------------------------


def _pick_namespace(
    ctx: Context, args: argparse.Namespace, namespaces: list[dict[str, Any]], interactive: bool
) -> dict[str, Any] | None:
    by_id = {str(n.get("id")): n for n in namespaces}
    if args.namespace:
        found = by_id.get(args.namespace)
        if found is not None:
            return found
        # Not among the caller's memberships (a platform admin may still see it): the API decides.
        return _dict(ctx.api().request("GET", f"/v1/namespaces/{seg(args.namespace)}"))
    if not namespaces:
        ctx.note(f"You have no namespaces yet: create one with `{CREATE_HINT}`,")
        ctx.note("then run `platform init --namespace ID --yes` to configure it.")
        return None
    current = ctx.config.namespace
    default = current if current in by_id else (next(iter(by_id)) if len(by_id) == 1 else None)
    if not interactive:
        if default is None:
            raise UsageError(
                f"which namespace? you have several ({', '.join(by_id)}): pass --namespace ID", "missing_answer"
            )
        if default != current:
            ctx.note(f"Using your only namespace, {default}")
        return by_id[default]
    ctx.note("Your namespaces:")
    for i, n in enumerate(namespaces, 1):
        about = ", ".join(cellify(n.get(k)) for k in ("role", "status", "region"))
        ctx.note(f"  {i}) {cellify(n.get('id'))}  ({about})")
    while True:
        answer = ctx.ask("Namespace (number or id; 'none' to skip)", flag="--namespace", default=default)
        if answer.lower() == "none":
            return None
        if answer.isdigit() and 1 <= int(answer) <= len(namespaces):
            return namespaces[int(answer) - 1]
        if answer in by_id:
            return by_id[answer]
        ctx.note(f"not one of your namespaces: {clean(answer)}")


def cmd_init(ctx: Context, args: argparse.Namespace) -> int:
    interactive = ctx.interactive(args.yes)
    config = ctx.config
    configured_url = config.get(PLATFORM_API_URL)
    local = bool(args.local or args.login)
    micro_path = micro_config.config_path(ctx.environ, config.location.home)
    micro_config.load(micro_path)  # a config.json micro cannot read is refused before anything is written

    # 1. Which API.
    if args.api_url:
        api_url = normalise_api_url(args.api_url)
    elif args.local:
        api_url = LOCAL_API_URL
    elif interactive:
        answer = ctx.ask(
            f"Environment: 'local' ({LOCAL_API_URL}) or the platform API address",
            flag="--api-url URL or --local",
            default=configured_url or "local",
        )
        if answer.lower() == "local":
            api_url, local = LOCAL_API_URL, True
        else:
            api_url = normalise_api_url(answer)
    elif configured_url:
        api_url = normalise_api_url(configured_url)
    elif args.login:
        api_url = LOCAL_API_URL
    else:
        raise UsageError("which platform API? pass --api-url URL, or --local for the local cloud", "missing_answer")
    if api_url.startswith("http://") and not re.match(r"^http://(127\.0\.0\.1|localhost|\[::1\])(:|$)", api_url):
        ctx.note(f"warning: {api_url} is not https: the token would travel in clear text")

    # 2. Who: a given token, the saved one (same API), or a login.
    token: str | None = args.token
    me: dict[str, Any] | None = None
    saved = config.token
    if token is None and saved and configured_url and normalise_api_url(configured_url) == api_url and not local:
        try:
            me = _dict(ctx.api(base_url=api_url, token=saved).request("GET", "/v1/me"))
        except ApiError as exc:
            if exc.status != 401:
                raise
            ctx.note("The saved token is no longer valid: logging in again")
        else:
            if not interactive or ctx.confirm(f"Keep the current login ({cellify(me.get('login'))})?", default=True):
                token = saved
            else:
                me = None
    if token is None:
        token = _login(ctx, api_url, local=local, login=args.login, interactive=interactive)["token"]
    assert token is not None
    if me is None:
        me = _dict(ctx.api(base_url=api_url, token=token).request("GET", "/v1/me"))
    changes: dict[str, str | None] = {PLATFORM_API_URL: api_url, PLATFORM_TOKEN: token}
    ctx.save(changes)  # the login is kept even if choosing a namespace fails below

    # 3. Which namespace, and its runtime credential when it is active.
    namespace = _pick_namespace(ctx, args, _list(me, "namespaces"), interactive)
    ns_id: str | None = None
    status: str | None = None
    access: micro_config.RuntimeAccess | None = None
    ns_changes: dict[str, str | None] = {}
    if namespace is not None:
        ns_id = str(namespace.get("id"))
        status = namespace.get("status") if isinstance(namespace.get("status"), str) else None
        if status == "active":
            runtime = _dict(
                ctx.api(base_url=api_url, token=token).request("GET", f"/v1/namespaces/{seg(ns_id)}/runtime")
            )
            access = _runtime_access(ctx, runtime, ns_id)
            ns_changes = {
                MICRO_NAMESPACE: access.namespace,
                MICRO_PROXY_ADDRESS: access.proxy_address,
                MICRO_AUTH_TOKEN: access.auth_token,
            }
        else:
            ns_changes = {MICRO_NAMESPACE: ns_id, MICRO_PROXY_ADDRESS: None, MICRO_AUTH_TOKEN: None}
            ctx.note(
                f"Namespace {clean(ns_id)} is {cellify(status)}, not active: no runtime credential yet; "
                f"run `platform init --namespace {clean(ns_id)} --yes` once it is active"
            )
        ctx.save(ns_changes)
        changes.update(ns_changes)
        _configure_micro(ctx, micro_path, api_url, access.namespace if access else ns_id, access)

    values = {k: ctx.config.file_values.get(k) for k in OWNED_KEYS}
    expires_at = (
        access.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if access and access.expires_at else None
    )
    result = {
        "config": str(ctx.config.location.path),
        "api_url": api_url,
        "login": me.get("login"),
        "namespace": ns_id,
        "namespace_status": status,
        "proxy_address": values.get(MICRO_PROXY_ADDRESS),
        "auth_token_expires_at": expires_at,
        "micro_config": str(micro_path) if ns_id else None,
        "micro_env": micro_config.ENV_NAME if access else None,
        "written": [k for k, v in changes.items() if v is not None],
    }
    rows: list[tuple[str, Any]] = [(k, show_secret_key(k, values[k])) for k in OWNED_KEYS]
    if access:
        rows.append(("micro env", f"{micro_config.ENV_NAME} in {display_path(micro_path, ctx.config.location.home)}"))
        rows.append(("runtime token expires", expires_at or "-"))
    text = f"Configured {ctx.config.location.display()} for {cellify(me.get('login'))}:\n" + key_values(rows)
    if access:
        text += 'For this shell too: eval "$(platform env)"\n'
    ctx.emit(result, text)
    return EXIT_OK


def _required(answer: dict[str, Any], key: str) -> str:
    value = answer.get(key)
    if not isinstance(value, str) or not value:
        raise CliError(f"the API's runtime answer has no {key}", "invalid_response")
    return value


def _runtime_access(ctx: Context, runtime: dict[str, Any], ns_id: str) -> micro_config.RuntimeAccess:
    """``GET /v1/namespaces/{ns}/runtime``'s answer: ``proxy_address`` and ``auth_token`` (required), and,
    when the API gives them, ``refresh_token`` and ``expires_at`` (ISO 8601, or Unix seconds)."""
    refresh = runtime.get("refresh_token")
    raw_expiry = runtime.get("expires_at")
    expires_at = parse_expiry(raw_expiry)
    if raw_expiry is not None and expires_at is None:
        ctx.note("warning: the API's runtime answer has an expires_at that is not a time: micro will refresh at once")
    return micro_config.RuntimeAccess(
        namespace=str(runtime.get("namespace") or ns_id),
        proxy_address=_required(runtime, "proxy_address"),
        auth_token=_required(runtime, "auth_token"),
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_at=expires_at,
    )


def parse_expiry(value: Any) -> datetime | None:
    """An ISO 8601 time (UTC when it has no zone) or Unix seconds as an aware datetime; else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _configure_micro(
    ctx: Context, path: Path, api_url: str, ns_id: str, access: micro_config.RuntimeAccess | None
) -> None:
    """Write micro v3's own ``config.json`` (see :mod:`cli.platform_cli.micro_config`), keeping every other key."""
    home = ctx.config.location.home
    moved = ensure_micro_directory(home)  # micro exits fatally unless ~/.micro is a directory
    if moved:
        ctx.note(moved)
    document = micro_config.load(path)
    micro_config.configure(document, namespace=ns_id, api_url=api_url, access=access, path=path)
    write_atomic(path, micro_config.dump(document))
    shown = display_path(path, home)
    if access:
        ctx.note(f"wrote micro's environment {micro_config.ENV_NAME} (current) to {shown} (mode 0600)")
    else:
        ctx.note(f"wrote the namespace of micro's environment {micro_config.ENV_NAME} to {shown} (mode 0600)")


# -- env ----------------------------------------------------------------------------------------------


def env_exports(values: dict[str, str], *, micro_env: bool) -> list[tuple[str, str | None]]:
    """The variables ``platform env`` sets (``None``: unset), from the configuration file's ``values``.

    ``MICRO_PROXY`` (the proxy micro's CLI dials, host:port) and ``MICRO_ENV`` (so micro takes the
    namespace and token of the platform's environment in ``config.json``, set only when ``micro_env``:
    that file defines it) are micro v3's own (cmd/cmd.go); ``MICRO_PROXY_ADDRESS`` is not exported:
    micro v3 reads it as the listen address of a ``micro proxy`` server (service/proxy/server/server.go)."""
    proxy = values.get(MICRO_PROXY_ADDRESS)
    return [
        ("MICRO_ENV", micro_config.ENV_NAME if proxy and micro_env else None),
        ("MICRO_PROXY", micro_config.proxy_host_port(proxy) if proxy else None),
        ("MICRO_NAMESPACE", values.get(MICRO_NAMESPACE) or None),
        (MICRO_AUTH_TOKEN, values.get(MICRO_AUTH_TOKEN) or None),
        (PLATFORM_API_URL, values.get(PLATFORM_API_URL) or None),
        (PLATFORM_TOKEN, values.get(PLATFORM_TOKEN) or None),
    ]


def cmd_env(ctx: Context, args: argparse.Namespace) -> int:
    config = ctx.config
    micro_path = micro_config.config_path(ctx.environ, config.location.home)
    micro_env = micro_config.has_platform_env(micro_path)
    exports = env_exports(config.file_values, micro_env=micro_env)  # the file's: not a stale exported value
    if not any(value for _, value in exports):
        ctx.note(f"nothing configured in {config.location.display()}: run `platform init` first")
    elif config.file_values.get(MICRO_PROXY_ADDRESS) and not micro_env:
        shown = display_path(micro_path, config.location.home)
        ctx.note(f"{shown} has no environment {micro_config.ENV_NAME} for micro: run `platform init` to add it")
    text = "".join(
        f"export {key}={shlex.quote(value)}\n" if value is not None else f"unset {key}\n" for key, value in exports
    )
    ctx.emit(dict(exports), text)
    return EXIT_OK


# -- regions ------------------------------------------------------------------------------------------


def cmd_regions_list(ctx: Context, args: argparse.Namespace) -> int:
    answer = ctx.api().request("GET", "/v1/regions")
    rows = [
        [r.get("name"), r.get("display_name"), r.get("cloud"), r.get("status"), r.get("health") or "-"]
        for r in _list(answer, "regions")
    ]
    ctx.emit(answer, table(["name", "display name", "cloud", "status", "health"], rows) if rows else "No regions.\n")
    return EXIT_OK


# -- namespaces ---------------------------------------------------------------------------------------

_NS_FIELDS = ("id", "status", "github_org", "github_team", "region", "plan", "created_at", "failure_reason")


def _ns_text(ns: dict[str, Any]) -> str:
    return key_values([(k, ns.get(k)) for k in _NS_FIELDS if k in ns])


def _ns_arg(ctx: Context, value: str | None) -> str:
    ns = value or ctx.config.namespace
    if not ns:
        raise UsageError("which namespace? pass it as an argument (or set MICRO_NAMESPACE)", "missing_answer")
    return ns


def cmd_namespaces_list(ctx: Context, args: argparse.Namespace) -> int:
    answer = ctx.api().request("GET", "/v1/namespaces")
    namespaces = _list(answer, "namespaces")
    rows = [
        [n.get(k) for k in ("id", "status", "github_org", "github_team", "region", "plan", "created_at")]
        for n in namespaces
    ]
    text = (
        table(["id", "status", "org", "team", "region", "plan", "created"], rows)
        if rows
        else f"No namespaces yet: create one with `{CREATE_HINT}`\n"
    )
    ctx.emit(answer, text)
    return EXIT_OK


def cmd_namespaces_show(ctx: Context, args: argparse.Namespace) -> int:
    ns = _ns_arg(ctx, args.namespace)
    answer = _dict(ctx.api().request("GET", f"/v1/namespaces/{seg(ns)}"))
    ctx.emit(answer, _ns_text(answer))
    return EXIT_OK


def wait_for_namespace(
    client: ApiClient,
    ns: str,
    *,
    sleep: Callable[[float], None],
    interval: float,
    timeout: float,
    report: Callable[[str], None],
) -> dict[str, Any]:
    """Poll the namespace until it is ``active`` or ``failed`` (or ``timeout`` seconds of waiting).

    The API answers 404 to a namespace the caller is not a member of, and the members (its creator
    included) are added by the onboarding itself: a 404 while waiting means "not visible to you yet".
    A namespace whose onboarding failed stays hidden the same way, so the timeout says it may have failed.
    """
    waited = 0.0
    last: str | None = None
    while True:
        try:
            current = _dict(client.request("GET", f"/v1/namespaces/{seg(ns)}"))
        except ApiError as exc:
            if exc.status != 404:
                raise
            current = {"status": "provisioning"}
            if waited >= timeout:
                raise CliError(
                    f"namespace {ns} is still not visible to you after {int(timeout)}s: its onboarding may have "
                    "failed (the API hides a failed namespace); check `platform namespaces list`",
                    "timeout",
                    EXIT_API,
                ) from exc
        status = str(current.get("status"))
        if status != last:
            report(f"namespace {clean(ns)}: {clean(status)}")
            last = status
        if status in ("active", "failed"):
            return current
        if waited >= timeout:
            raise CliError(f"namespace {ns} is still {status} after {int(timeout)}s", "timeout", EXIT_API)
        sleep(interval)
        waited += interval


def cmd_namespaces_create(ctx: Context, args: argparse.Namespace) -> int:
    body = {"github_org": args.org, "github_team": args.team, "region": args.region, "plan": args.plan}
    client = ctx.api()
    answer = _dict(client.request("POST", "/v1/namespaces", json=body))
    if not args.wait:
        hint = f"\nFollow it with `platform namespaces show {cellify(answer.get('id'))}` (or pass --wait)\n"
        ctx.emit(answer, _ns_text(answer) + hint)
        return EXIT_OK
    ns = str(answer.get("id"))
    final = wait_for_namespace(
        client, ns, sleep=ctx.sleep, interval=args.interval, timeout=args.timeout, report=ctx.note
    )
    if final.get("status") == "failed":
        if ctx.json:
            ctx.emit(final, "")
        reason = final.get("failure_reason") or "no reason given"
        raise CliError(f"namespace {ns} failed: {reason}", "provisioning_failed", EXIT_API)
    ctx.emit(final, _ns_text(final) + f"\nUse it with `platform init --namespace {clean(ns)} --yes`\n")
    return EXIT_OK


def _confirm_destructive(ctx: Context, args: argparse.Namespace, question: str) -> None:
    if args.yes:
        return
    if not ctx.interactive():
        raise UsageError(f"{question} needs confirmation: pass --yes", "confirmation_required")
    if not ctx.confirm(question, default=False):
        raise CliError("cancelled", "cancelled", EXIT_API)


def cmd_namespaces_delete(ctx: Context, args: argparse.Namespace) -> int:
    ns = args.namespace
    _confirm_destructive(ctx, args, f"Delete namespace {clean(ns)} and everything in it?")
    answer = _dict(ctx.api().request("DELETE", f"/v1/namespaces/{seg(ns)}"))
    ctx.emit(answer, f"Namespace {clean(ns)}: {cellify(answer.get('status', 'deleting'))}\n")
    return EXIT_OK


def cmd_namespaces_members(ctx: Context, args: argparse.Namespace) -> int:
    ns = _ns_arg(ctx, args.namespace)
    answer = ctx.api().request("GET", f"/v1/namespaces/{seg(ns)}/members")
    rows = [[m.get("login"), m.get("id"), m.get("role"), m.get("source")] for m in _list(answer, "members")]
    ctx.emit(answer, table(["login", "id", "role", "source"], rows) if rows else "No members.\n")
    return EXIT_OK


# -- tokens -------------------------------------------------------------------------------------------


def cmd_tokens_create(ctx: Context, args: argparse.Namespace) -> int:
    ns = args.namespace or ctx.config.namespace
    if not ns:
        raise UsageError("which namespace is the token for? pass --namespace ID", "missing_answer")
    scopes = list(dict.fromkeys(args.scope))
    body = {"name": args.name, "namespace": ns, "scopes": scopes, "expires_in": args.expires_in}
    answer = _dict(ctx.api().request("POST", "/v1/tokens", json=body))
    ctx.note("warning: this is the only time the token is shown: store it now (it cannot be retrieved later)")
    text = key_values([(k, answer.get(k)) for k in ("id", "name", "namespace", "scopes", "expires_at")])
    text += f"token:  {cellify(answer.get('token'))}\n"
    ctx.emit(answer, text)
    return EXIT_OK


def cmd_tokens_list(ctx: Context, args: argparse.Namespace) -> int:
    answer = ctx.api().request("GET", "/v1/tokens")
    keys = ("id", "name", "namespace", "scopes", "created_at", "expires_at", "last_used_at")
    rows = [[t.get(k) for k in keys] for t in _list(answer, "tokens")]
    headers = ["id", "name", "namespace", "scopes", "created", "expires", "last used"]
    ctx.emit(answer, table(headers, rows) if rows else "No tokens.\n")
    return EXIT_OK


def cmd_tokens_revoke(ctx: Context, args: argparse.Namespace) -> int:
    ctx.api().request("DELETE", f"/v1/tokens/{seg(args.id)}")
    ctx.emit({"id": args.id, "revoked": True}, f"Revoked token {clean(args.id)}\n")
    return EXIT_OK


# -- audit --------------------------------------------------------------------------------------------


def parse_since(text: str, now: datetime) -> str:
    """An ISO 8601 time as given, or a duration back from ``now`` (``24h``, ``7d``) as ISO 8601 UTC."""
    try:
        seconds = parse_duration(text)
    except argparse.ArgumentTypeError:
        pass
    else:
        return (now - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since: not an ISO 8601 time nor a duration: {text!r} (e.g. 2024-05-01T00:00:00Z or 24h)"
        ) from None
    return text


def cmd_audit(ctx: Context, args: argparse.Namespace) -> int:
    ns = args.namespace or ctx.config.namespace
    if not ns:
        raise UsageError("which namespace? pass --namespace ID (or set MICRO_NAMESPACE)", "missing_answer")
    params: dict[str, str] = {}
    if args.since:
        params["since"] = parse_since(args.since, ctx.now())
    if args.actor:
        params["actor"] = args.actor
    if args.action:
        params["action"] = args.action
    path = f"/v1/namespaces/{seg(ns)}/audit" + (f"?{urlencode(params)}" if params else "")
    answer = ctx.api().request("GET", path)
    keys = ("at", "actor", "action", "target", "outcome", "source_ip")
    rows = [[e.get(k) for k in keys] for e in _list(answer, "entries")]
    ctx.emit(
        answer, table(["at", "actor", "action", "target", "outcome", "source ip"], rows) if rows else "No entries.\n"
    )
    return EXIT_OK
