"""The commands for a namespace's services: deploy, follow, roll back, auto-deploy, config vars and logs.

Every command works in ``--namespace`` (default: ``MICRO_NAMESPACE``) and talks to
``/v1/namespaces/{ns}/services/...``. Secret config values are never printed: the API does not
return them, and the output masks them all the same.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from cli.platform_cli.client import ApiClient
from cli.platform_cli.commands import _confirm_destructive, _dict, _list, cellify, parse_since, seg
from cli.platform_cli.context import Context
from cli.platform_cli.errors import EXIT_API, EXIT_OK, CliError, UsageError
from cli.platform_cli.output import clean, key_values, table

DEPLOY_POLL_INTERVAL = 1.0
LOGS_POLL_INTERVAL = 2.0
LOGS_FOLLOW_TAIL = 1000  # the API's maximum: a poll every 2 s should miss nothing
HIDDEN_VALUE = "(secret)"

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^[\w.-]+@[\w.-]+:")
_COMMIT = re.compile(r"^[0-9a-fA-F]{7,40}$")


# -- arguments ----------------------------------------------------------------------------------------


def commit_arg(text: str) -> str:
    if not _COMMIT.match(text):
        raise argparse.ArgumentTypeError(f"not a commit SHA: {text!r} (7 to 40 hex digits)")
    return text


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return value


def resolve_source(source: str) -> str:
    """A git URL as given; a local path made absolute (``~`` expanded): the API resolves it on its machine."""
    if _URL.match(source):
        return source
    return os.path.abspath(os.path.expanduser(source))


def _ns(ctx: Context, args: argparse.Namespace) -> str:
    ns = getattr(args, "namespace", None) or ctx.config.namespace
    if not ns:
        raise UsageError("which namespace? pass --namespace ID (or set MICRO_NAMESPACE)", "missing_answer")
    return str(ns)


def _services_path(ns: str) -> str:
    return f"/v1/namespaces/{seg(ns)}/services"


def _svc_path(ns: str, svc: str) -> str:
    return f"{_services_path(ns)}/{seg(svc)}"


# -- formatting ---------------------------------------------------------------------------------------


def _short(commit: Any) -> Any:
    return commit[:12] if isinstance(commit, str) else commit


def _auto_deploy(service: dict[str, Any]) -> str:
    if not service.get("auto_deploy"):
        return "off"
    return "paused" if service.get("auto_deploy_paused") else "on"


def _trigger(trigger: Any) -> str:
    if not isinstance(trigger, dict) or not trigger:
        return "-"
    parts = [str(trigger["kind"])] if "kind" in trigger else []
    parts += [f"{k}={v}" for k, v in trigger.items() if k != "kind"]
    return clean(" ".join(parts))


def _short_trigger(trigger: Any) -> str:
    """What started a deployment, in a few words for a table (``push ada main``, ``api ada``,
    ``rollback``); ``deployments show`` gives every detail."""
    if not isinstance(trigger, dict) or not trigger.get("kind"):
        return "-"
    kind = str(trigger["kind"])
    who = str(trigger.get("actor") or "").split(":", 1)[-1]  # user:ada, github:ada -> ada
    words = {"push": [kind, who, str(trigger.get("branch") or "")], "rollback": [kind]}.get(kind, [kind, who])
    return clean(" ".join(w for w in words if w))


def _service_text(s: dict[str, Any]) -> str:
    text = key_values(
        [
            ("name", s.get("name")),
            ("status", s.get("status")),
            ("address", s.get("address")),
            ("deployment", s.get("current_deployment_id")),
            ("commit", s.get("current_commit")),
            ("auto-deploy", _auto_deploy(s)),
        ]
    )
    instances = _list(s, "instances")
    if instances:
        rows = [[i.get(k) for k in ("version", "status", "address", "started_at")] for i in instances]
        text += "\n" + table(["version", "status", "address", "started"], rows)
    return text


def _deployment_summary(d: dict[str, Any]) -> str:
    return key_values(
        [
            ("id", d.get("id")),
            ("service", d.get("service")),
            ("status", d.get("status")),
            ("source", d.get("source")),
            ("ref", d.get("ref")),
            ("commit", d.get("commit")),
            ("trigger", _trigger(d.get("trigger"))),
            ("created", d.get("created_at")),
        ]
    )


def _deployment_text(d: dict[str, Any]) -> str:
    pairs: list[tuple[str, Any]] = [
        ("id", d.get("id")),
        ("service", d.get("service")),
        ("status", d.get("status")),
        ("source", d.get("source")),
        ("ref", d.get("ref")),
        ("commit", d.get("commit")),
        ("trigger", _trigger(d.get("trigger"))),
        ("reason", d.get("reason")),
        ("created", d.get("created_at")),
        ("deadline", d.get("deadline")),
    ]
    if d.get("rollback_of"):
        pairs.append(("rollback of", d.get("rollback_of")))
    text = key_values(pairs)
    steps = _list(d, "steps")
    rows = [[s.get(k) for k in ("name", "status", "started_at", "ended_at", "detail")] for s in steps]
    text += "\n" + (table(["step", "status", "started", "ended", "detail"], rows) if rows else "No steps yet.\n")
    logs = _list(d, "logs")
    if logs:
        text += "\nlogs:\n" + "".join(f"{cellify(line.get('timestamp'))}  {_message(line)}\n" for line in logs)
    return text


def _message(line: dict[str, Any]) -> str:
    message = line.get("message")
    return clean(str(message)) if message is not None else ""


def _config_vars(answer: Any) -> list[dict[str, Any]]:
    """The answer's vars with every secret's value removed (the API sends none; never print one anyway)."""
    return [{**v, "value": None} if v.get("secret") else v for v in _list(answer, "vars")]


def _config_text(variables: list[dict[str, Any]]) -> str:
    if not variables:
        return "No config vars.\n"
    rows = [[v.get("key"), HIDDEN_VALUE if v.get("secret") else (v.get("value") or "")] for v in variables]
    return table(["key", "value"], rows)


def _safe_config_answer(answer: Any) -> dict[str, Any]:
    return {**_dict(answer), "vars": _config_vars(answer)}


# -- services -----------------------------------------------------------------------------------------


def cmd_services_list(ctx: Context, args: argparse.Namespace) -> int:
    answer = ctx.api().request("GET", _services_path(_ns(ctx, args)))
    rows = [
        [
            s.get("name"),
            s.get("status"),
            _auto_deploy(s),
            _short(s.get("current_commit")),
            s.get("current_deployment_id"),
            s.get("address"),
        ]
        for s in _list(answer, "services")
    ]
    headers = ["name", "status", "auto-deploy", "commit", "deployment", "address"]
    hint = "No services yet: deploy one with `platform deploy SERVICE --source REPO --ref main`\n"
    ctx.emit(answer, table(headers, rows) if rows else hint)
    return EXIT_OK


def cmd_services_show(ctx: Context, args: argparse.Namespace) -> int:
    answer = _dict(ctx.api().request("GET", _svc_path(_ns(ctx, args), args.service)))
    ctx.emit(answer, _service_text(answer))
    return EXIT_OK


def cmd_services_delete(ctx: Context, args: argparse.Namespace) -> int:
    ns = _ns(ctx, args)
    _confirm_destructive(ctx, args, f"Delete service {clean(args.service)} of {clean(ns)} (its processes stop)?")
    ctx.api().request("DELETE", _svc_path(ns, args.service))
    ctx.emit(
        {"namespace": ns, "service": args.service, "deleted": True},
        f"Deleted service {clean(args.service)} (its deployments are kept)\n",
    )
    return EXIT_OK


# -- deployments --------------------------------------------------------------------------------------


def wait_for_deployment(
    client: ApiClient,
    path: str,
    first: dict[str, Any],
    *,
    sleep: Callable[[float], None],
    timeout: float,
    report: Callable[[str], None],
    interval: float = DEPLOY_POLL_INTERVAL,
) -> dict[str, Any]:
    """Follow a deployment (``first`` is its latest known state) until the API says it is ``finished``,
    reporting its status and each step's status as they change; :class:`CliError` after ``timeout``."""
    current = first
    dep_id = clean(str(first.get("id")))
    seen: dict[str, str] = {}
    last: str | None = None
    waited = 0.0
    while True:
        for step in _list(current, "steps"):
            name, status = str(step.get("name")), str(step.get("status"))
            if seen.get(name) != status:
                seen[name] = status
                detail = f" ({clean(str(step['detail']))})" if step.get("detail") else ""
                report(f"  {clean(name)}: {clean(status)}{detail}")
        status = str(current.get("status"))
        if status != last:
            report(f"deployment {dep_id}: {clean(status)}")
            last = status
        if current.get("finished"):  # the API's word: the deployment changes no more
            return current
        if waited >= timeout:
            raise CliError(
                f"deployment {dep_id} is still {status} after {int(timeout)}s "
                f"(it goes on: follow it with `platform deployments show {clean(str(current.get('service')))} "
                f"{dep_id}`)",
                "timeout",
                EXIT_API,
            )
        sleep(interval)
        waited += interval
        current = _dict(client.request("GET", path))


def _finish(ctx: Context, args: argparse.Namespace, ns: str, svc: str, deployment: dict[str, Any]) -> int:
    """Print a just-created deployment, or follow it with ``--wait``: exit 0 when it succeeds."""
    dep_id = str(deployment.get("id"))
    if not args.wait:
        hint = (
            f"\nFollow it with `platform deployments show {clean(svc)} {clean(dep_id)}` "
            f"or `platform logs {clean(svc)} --follow` (or pass --wait)\n"
        )
        ctx.emit(deployment, _deployment_summary(deployment) + hint)
        return EXIT_OK
    path = f"{_svc_path(ns, svc)}/deployments/{seg(dep_id)}"
    final = wait_for_deployment(ctx.api(), path, deployment, sleep=ctx.sleep, timeout=args.timeout, report=ctx.note)
    status = str(final.get("status"))
    if status != "succeeded":
        if ctx.json:
            ctx.emit(final, "")
        reason = final.get("reason") or "no reason given"
        raise CliError(f"deployment {dep_id} {status.replace('_', ' ')}: {reason}", f"deployment_{status}", EXIT_API)
    ctx.emit(final, _deployment_text(final))
    return EXIT_OK


def cmd_deploy(ctx: Context, args: argparse.Namespace) -> int:
    ns = _ns(ctx, args)
    source = resolve_source(args.source)
    if source != args.source and not os.path.exists(source):
        ctx.note(f"warning: {clean(source)} does not exist on this machine")
    body: dict[str, Any] = {"source": source}
    if args.commit:
        body["commit"] = args.commit
    else:
        body["ref"] = args.ref
    answer = _dict(ctx.api().request("POST", f"{_svc_path(ns, args.service)}/deployments", json=body))
    return _finish(ctx, args, ns, args.service, answer)


def cmd_deployments_list(ctx: Context, args: argparse.Namespace) -> int:
    answer = ctx.api().request("GET", f"{_svc_path(_ns(ctx, args), args.service)}/deployments")
    rows = [
        [
            d.get("id"),
            d.get("status"),
            d.get("ref"),
            _short(d.get("commit")),
            _short_trigger(d.get("trigger")),
            d.get("created_at"),
            d.get("reason"),
        ]
        for d in _list(answer, "deployments")
    ]
    headers = ["id", "status", "ref", "commit", "trigger", "created", "reason"]
    ctx.emit(answer, table(headers, rows) if rows else "No deployments.\n")
    return EXIT_OK


def cmd_deployments_show(ctx: Context, args: argparse.Namespace) -> int:
    path = f"{_svc_path(_ns(ctx, args), args.service)}/deployments/{seg(args.deployment)}"
    answer = _dict(ctx.api().request("GET", path))
    ctx.emit(answer, _deployment_text(answer))
    return EXIT_OK


def cmd_rollback(ctx: Context, args: argparse.Namespace) -> int:
    ns = _ns(ctx, args)
    body: dict[str, Any] = {"deployment_id": args.to} if args.to else {}
    answer = _dict(ctx.api().request("POST", f"{_svc_path(ns, args.service)}/rollback", json=body))
    if answer.get("message"):
        ctx.note(clean(str(answer["message"])))
    if answer.get("auto_deploy_paused"):
        ctx.note(f"resume it with `platform auto-deploy {clean(args.service)} on`")
    deployment = _dict(answer.get("deployment"))
    if ctx.json and not args.wait:
        ctx.emit(answer, "")
        return EXIT_OK
    return _finish(ctx, args, ns, args.service, deployment)


def cmd_auto_deploy(ctx: Context, args: argparse.Namespace) -> int:
    enabled = args.state == "on"
    path = f"{_svc_path(_ns(ctx, args), args.service)}/auto-deploy"
    answer = _dict(ctx.api().request("POST", path, json={"enabled": enabled}))
    ctx.emit(answer, f"Auto-deploy of {clean(args.service)}: {_auto_deploy(answer)}\n")
    return EXIT_OK


# -- config -------------------------------------------------------------------------------------------


def cmd_config_list(ctx: Context, args: argparse.Namespace) -> int:
    answer = ctx.api().request("GET", f"{_svc_path(_ns(ctx, args), args.service)}/config")
    variables = _config_vars(answer)
    ctx.emit(_safe_config_answer(answer), _config_text(variables))
    return EXIT_OK


def _read_value(ctx: Context, key: str) -> str:
    """A value from stdin: hidden input on a terminal, else all of stdin less one trailing newline."""
    isatty = getattr(ctx.stdin, "isatty", None)
    if ctx.stdin is sys.stdin and isatty and isatty():
        value = getpass.getpass(f"Value of {key} (not shown): ", stream=ctx.stderr)
    else:
        value = ctx.stdin.read()
        if value.endswith("\n"):
            value = value[:-1]
            if value.endswith("\r"):
                value = value[:-1]
    if not value:
        raise UsageError(f"no value for {key} on stdin", "missing_answer")
    return value


def _parse_assignments(ctx: Context, args: argparse.Namespace) -> dict[str, str]:
    if args.stdin:
        if len(args.assignments) != 1 or "=" in args.assignments[0]:
            raise UsageError("with --stdin, give exactly one KEY (no =VALUE): its value is read from stdin")
        key = args.assignments[0]
        return {key: _read_value(ctx, key)}
    values: dict[str, str] = {}
    for item in args.assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(
                f"not KEY=VALUE: {clean(item)!r} (for one value from stdin: `KEY --stdin`)", "invalid_argument"
            )
        if key in values:
            raise UsageError(f"{clean(key)} is given twice", "invalid_argument")
        values[key] = value
    return values


def _report_redeploy(ctx: Context, svc: str, answer: dict[str, Any]) -> None:
    redeploy = _dict(answer.get("redeploy"))
    if redeploy:
        dep_id = clean(str(redeploy.get("id")))
        ctx.note(
            f"{clean(svc)} redeploys with the new config: deployment {dep_id} "
            f"(follow it with `platform deployments show {clean(svc)} {dep_id}`)"
        )


def cmd_config_set(ctx: Context, args: argparse.Namespace) -> int:
    values = _parse_assignments(ctx, args)
    if args.secret and not args.stdin:
        ctx.note(
            "note: values on the command line stay in your shell history; `KEY --secret --stdin` reads one from stdin"
        )
    body = {"vars": {k: {"value": v, "secret": bool(args.secret)} for k, v in values.items()}}
    answer = _dict(ctx.api().request("PUT", f"{_svc_path(_ns(ctx, args), args.service)}/config", json=body))
    _report_redeploy(ctx, args.service, answer)
    kind = "secret" if args.secret else "var"
    text = f"Set {kind}{'s' if len(values) > 1 else ''} {', '.join(clean(k) for k in values)}\n\n"
    ctx.emit(_safe_config_answer(answer), text + _config_text(_config_vars(answer)))
    return EXIT_OK


def cmd_config_unset(ctx: Context, args: argparse.Namespace) -> int:
    path = f"{_svc_path(_ns(ctx, args), args.service)}/config/{seg(args.key)}"
    answer = _dict(ctx.api().request("DELETE", path))
    _report_redeploy(ctx, args.service, answer)
    text = f"Removed {clean(args.key)}\n\n" + _config_text(_config_vars(answer))
    ctx.emit(_safe_config_answer(answer), text)
    return EXIT_OK


# -- logs ---------------------------------------------------------------------------------------------


def _logs_path(base: str, since: str | None, tail: int | None) -> str:
    params: dict[str, str] = {}
    if since:
        params["since"] = since
    if tail:
        params["tail"] = str(tail)
    return base + (f"?{urlencode(params)}" if params else "")


def _log_line(ctx: Context, line: dict[str, Any]) -> str:
    if ctx.json:
        return json.dumps(line, ensure_ascii=False) + "\n"
    return f"{cellify(line.get('timestamp'))}  {_message(line)}\n"


def cmd_logs(ctx: Context, args: argparse.Namespace) -> int:
    base = f"{_svc_path(_ns(ctx, args), args.service)}/logs"
    since = parse_since(args.since, ctx.now()) if args.since else None
    client = ctx.api()
    if not args.follow:
        answer = client.request("GET", _logs_path(base, since, args.tail))
        lines = _list(answer, "lines")
        ctx.emit(answer, "".join(_log_line(ctx, line) for line in lines) if lines else "")
        if not lines and not ctx.json:
            ctx.note("No log lines.")
        return EXIT_OK
    return follow_logs(ctx, client, base, since, args.tail)


def follow_logs(
    ctx: Context,
    client: ApiClient,
    base: str,
    since: str | None,
    tail: int | None,
    *,
    interval: float = LOGS_POLL_INTERVAL,
) -> int:
    """Poll the logs every ``interval`` seconds from the last timestamp seen, printing only new lines
    (one JSON object per line with ``--output json``), until Ctrl-C (exit 0) or ``ctx.max_polls`` polls."""
    seen: set[tuple[str, str]] = set()
    order: deque[tuple[str, str]] = deque()
    polls = 0
    try:
        while True:
            answer = client.request("GET", _logs_path(base, since, tail if polls == 0 else LOGS_FOLLOW_TAIL))
            polls += 1
            for line in _list(answer, "lines"):
                key = (str(line.get("timestamp")), str(line.get("message")))
                if key in seen:
                    continue
                seen.add(key)
                order.append(key)
                if len(order) > 10 * LOGS_FOLLOW_TAIL:
                    seen.discard(order.popleft())
                ctx.stdout.write(_log_line(ctx, line))
                if line.get("timestamp"):
                    since = str(line["timestamp"])
            ctx.stdout.flush()
            if ctx.max_polls is not None and polls >= ctx.max_polls:
                return EXIT_OK
            ctx.sleep(interval)
    except KeyboardInterrupt:
        return EXIT_OK
