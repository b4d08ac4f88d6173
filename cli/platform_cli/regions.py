"""``platform regions create|show|approve|retry|delete``: regions the platform provisions with Terraform
(platform admins). ``list`` stays in commands.py (anyone may list regions)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from cli.platform_cli.commands import _confirm_destructive, _dict, cellify, seg
from cli.platform_cli.context import Context
from cli.platform_cli.errors import EXIT_API, EXIT_OK, CliError, UsageError
from cli.platform_cli.output import clean, key_values, table

# Where a wait stops: the region needs someone (approval), or it is done either way.
SETTLED = ("active", "awaiting_approval", "failed", "deleted")
EXAMPLE_REGIONS = {"aws": "us-east-1", "gcp": "europe-west1", "azure": "westeurope", "digitalocean": "fra1"}


def _capacity(c: Any) -> str:
    c = _dict(c)
    if not c:
        return "-"
    return f"{c.get('cpu_millicores', 0) / 1000:g} CPU, {c.get('memory_mib', 0) / 1024:g} GiB"


def _plan(p: Any) -> str:
    p = _dict(p)
    return f"{p.get('add')} to add, {p.get('change')} to change, {p.get('destroy')} to destroy" if p else "-"


def region_text(r: dict[str, Any]) -> str:
    rows = [
        ("name", r.get("name")),
        ("status", r.get("status")),
        ("health", r.get("health") or "-"),
        ("cloud", f"{r.get('cloud')} {r.get('cloud_region') or ''}".strip()),
        ("size", r.get("size") or "-"),
        ("capacity", _capacity(r.get("capacity"))),
        ("used", f"{_capacity(r.get('used'))} ({r.get('namespaces', 0)} namespaces)"),
        ("free", _capacity(r.get("free"))),
        ("plan", _plan(r.get("plan"))),
        ("attempt", r.get("attempt")),
    ]
    if r.get("failure_reason"):
        rows += [("failed at", r.get("failure_step")), ("reason", r.get("failure_reason"))]
    text = key_values(rows)
    clusters = [c for c in r.get("clusters") or [] if isinstance(c, dict)]
    if clusters:
        text += "\n" + table(
            ["cluster", "status", "api", "proxy", "free", "last check"],
            [
                [
                    c.get("id"),
                    c.get("status"),
                    c.get("api_address"),
                    c.get("proxy_address"),
                    _capacity(c.get("free")),
                    c.get("last_check_error") or c.get("last_check_at") or "-",
                ]
                for c in clusters
            ],
        )
    if r.get("log_excerpt"):
        text += "\nThe end of Terraform's log:\n" + "".join(
            f"  {clean(line)}\n" for line in str(r["log_excerpt"]).splitlines()
        )
    if r.get("status") == "awaiting_approval":
        text += f"\nApprove the plan with `platform regions approve {clean(str(r.get('name')))}`\n"
    return text


def wait_for_region(
    ctx: Context, name: str, done: tuple[str, ...], *, interval: float, timeout: float
) -> dict[str, Any]:
    waited, last = 0.0, None
    while True:
        current = _dict(ctx.api().request("GET", f"/v1/regions/{seg(name)}"))
        status = str(current.get("status"))
        if status != last:
            ctx.note(f"region {clean(name)}: {clean(status)}")
            last = status
        if status in done:
            return current
        if waited >= timeout:
            raise CliError(f"region {name} is still {status} after {int(timeout)}s", "timeout", EXIT_API)
        ctx.sleep(interval)
        waited += interval


def _finish(ctx: Context, args: argparse.Namespace, answer: dict[str, Any], done: tuple[str, ...]) -> int:
    name = str(answer.get("name"))
    if not getattr(args, "wait", False):
        ctx.emit(
            answer, region_text(answer) + f"\nFollow it with `platform regions show {clean(name)}` (or pass --wait)\n"
        )
        return EXIT_OK
    final = wait_for_region(ctx, name, done, interval=args.interval, timeout=args.timeout)
    ctx.emit(final, region_text(final))
    if final.get("status") == "failed":
        raise CliError(
            f"region {name} failed: {final.get('failure_reason') or 'no reason given'}", "region_failed", EXIT_API
        )
    return EXIT_OK


def cmd_regions_create(ctx: Context, args: argparse.Namespace) -> int:
    if args.region is None and args.cloud != "local":
        raise UsageError(
            f"in which {args.cloud} region? pass --region (e.g. {EXAMPLE_REGIONS[args.cloud]})", "missing_answer"
        )
    body = {
        "name": args.name,
        "cloud": args.cloud,
        "region": args.region or "local",
        "size": args.size,
        "require_approval": args.require_approval,
    }
    answer = _dict(ctx.api().request("POST", "/v1/regions", json=body))
    return _finish(ctx, args, answer, SETTLED)


def cmd_regions_show(ctx: Context, args: argparse.Namespace) -> int:
    answer = _dict(ctx.api().request("GET", f"/v1/regions/{seg(args.name)}"))
    ctx.emit(answer, region_text(answer))
    return EXIT_OK


def cmd_regions_approve(ctx: Context, args: argparse.Namespace) -> int:
    """The plan's summary first; then, confirmed (or --yes), the approval."""
    current = _dict(ctx.api().request("GET", f"/v1/regions/{seg(args.name)}"))
    if current.get("status") == "awaiting_approval" and not ctx.json:
        ctx.note(f"region {clean(args.name)}: the plan would do {_plan(current.get('plan'))}")
    _confirm_destructive(ctx, args, f"Apply the plan of region {clean(args.name)} ({_plan(current.get('plan'))})?")
    answer = _dict(ctx.api().request("POST", f"/v1/regions/{seg(args.name)}/approve"))
    return _finish(ctx, args, answer, SETTLED)


def cmd_regions_retry(ctx: Context, args: argparse.Namespace) -> int:
    answer = _dict(ctx.api().request("POST", f"/v1/regions/{seg(args.name)}/retry"))
    return _finish(ctx, args, answer, SETTLED)


def cmd_regions_delete(ctx: Context, args: argparse.Namespace) -> int:
    what = "and offboard every namespace in it" if args.force else "(refused while namespaces live there)"
    _confirm_destructive(ctx, args, f"Destroy region {clean(args.name)} {what}?")
    path = f"/v1/regions/{seg(args.name)}" + ("?force=true" if args.force else "")
    answer = _dict(ctx.api().request("DELETE", path))
    if not args.wait:
        ctx.emit(answer, f"Region {clean(args.name)}: {cellify(answer.get('status'))}\n")
        return EXIT_OK
    return _finish(ctx, args, answer, ("deleted", "failed"))


def add_commands(command: Callable[..., argparse.ArgumentParser], regions: Any) -> None:
    """Under ``platform regions`` (called by :func:`cli.platform_cli.main.build_parser`)."""

    def waiting(p: argparse.ArgumentParser) -> None:
        p.add_argument("--wait", action="store_true", help="wait until it is active, awaits approval, or failed")
        p.add_argument("--interval", type=float, default=2.0, help="seconds between polls with --wait (default 2)")
        p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait at most (default 3600)")

    p = command(regions, "create", cmd_regions_create, "provision a region: a cluster running micro, with Terraform")
    p.add_argument("name", metavar="NAME", help="the region's name on the platform (a DNS label)")
    p.add_argument("--cloud", required=True, choices=("aws", "gcp", "azure", "digitalocean", "local"))
    p.add_argument("--region", help="the cloud's region (us-east-1, europe-west1, westeurope, fra1); local: not needed")
    p.add_argument("--size", default="small", choices=("small", "medium", "large"))
    p.add_argument(
        "--require-approval", action="store_true", help="wait for `platform regions approve` before the apply"
    )
    waiting(p)
    p = command(regions, "show", cmd_regions_show, "a region: status, capacity used and free, the plan, the failure")
    p.add_argument("name", metavar="NAME")
    p = command(regions, "approve", cmd_regions_approve, "show a region's plan and approve it: the apply starts")
    p.add_argument("name", metavar="NAME")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation (required without a TTY)")
    waiting(p)
    p = command(regions, "retry", cmd_regions_retry, "run a failed region's create or delete again")
    p.add_argument("name", metavar="NAME")
    waiting(p)
    p = command(regions, "delete", cmd_regions_delete, "drain and destroy a region")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--force", action="store_true", help="offboard the namespaces that live there first")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation (required without a TTY)")
    waiting(p)
