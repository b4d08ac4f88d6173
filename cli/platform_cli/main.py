"""``platform``: the command line of Micro as a Service, a thin client of the platform's HTTPS API.

Configuration comes from one dotenv file, ``~/.micro/platform.env`` (``PLATFORM_CONFIG`` names another
file), with the keys ``MICRO_PROXY_ADDRESS``, ``MICRO_AUTH_TOKEN``, ``MICRO_NAMESPACE``,
``PLATFORM_API_URL`` and ``PLATFORM_TOKEN``; environment variables of the same names override the file
(see :mod:`cli.platform_cli.config`). ``init`` also configures micro v3's own CLI in
``~/.micro/config.json`` (:mod:`cli.platform_cli.micro_config`); ``env`` prints ``export`` lines.

Every command takes ``--output json|table`` (default ``table``): ``json`` prints the API's answer,
pretty, on stdout; notes and prompts go to stderr.

Exit codes (see :mod:`cli.platform_cli.errors`): 0 ok; 1 other API error; 2 invalid input or usage (argparse's own,
a missing answer without a TTY, an API 400/422); 3 the API cannot be reached (the message names the
URL); 4 not logged in or token expired/revoked (no token configured, an API 401); 5 forbidden (403);
6 not found (404); 7 conflict (409); 8 payment required (402: a budget's hard cap). Errors are one line on
stderr: ``error: <message> (<code>)``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TextIO

from cli.platform_cli import __version__, alerts, billing, commands, deploys, reports
from cli.platform_cli import regions as regions_cli
from cli.platform_cli.client import ClientFactory, default_factory
from cli.platform_cli.context import Context, _utcnow
from cli.platform_cli.errors import EXIT_CODES_HELP, EXIT_INTERRUPTED, EXIT_USAGE, CliError
from cli.platform_cli.output import clean

Handler = Callable[[Context, argparse.Namespace], int]

EPILOG = f"""\
configuration:
  ~/.micro/platform.env (a dotenv file, mode 0600; PLATFORM_CONFIG names another file).
  Keys: MICRO_PROXY_ADDRESS, MICRO_AUTH_TOKEN, MICRO_NAMESPACE, PLATFORM_API_URL (default
  http://127.0.0.1:8000), PLATFORM_TOKEN. Environment variables override the file.
  init also writes micro's own ~/.micro/config.json (environment "maas");
  eval "$(platform env)" exports MICRO_PROXY, MICRO_NAMESPACE and the rest to a shell.

{EXIT_CODES_HELP}
"""


def _output_parent() -> argparse.ArgumentParser:
    # SUPPRESS: a subcommand's default must not override a --output given before the subcommand.
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "-o",
        "--output",
        choices=("table", "json"),
        default=argparse.SUPPRESS,
        help="table (default) for people, json (the API's answer, pretty) for scripts",
    )
    return parent


def _namespace_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "-n",
        "--namespace",
        metavar="ID",
        default=argparse.SUPPRESS,
        help="the namespace (default: MICRO_NAMESPACE)",
    )
    return parent


# Groups whose subcommand may be left out: ``platform services``, ``platform namespaces`` and
# ``platform regions`` list, ``platform deployments SVC`` and ``platform config SVC`` list too (``list``
# is inserted before parsing).
_DEFAULT_LIST = {
    "services": ("list", "show", "delete"),
    "deployments": ("list", "show"),
    "config": ("list", "set", "unset"),
    "billing": ("show", "portal", "reconcile"),
    "namespaces": ("list", "create", "show", "delete", "members"),
    "regions": ("list", "create", "show", "approve", "retry", "delete"),
}
# A group whose default subcommand is not ``list``; and those whose default takes no argument at all
# (a word after them that is not a subcommand is a mistyped one: argparse says so).
_DEFAULT_NAME = {"billing": "show"}
_BARE_DEFAULT = ("services", "billing", "namespaces", "regions")
_VALUED_OPTIONS = ("-o", "--output", "-n", "--namespace")


def with_default_subcommand(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``list`` inserted after a group of ``_DEFAULT_LIST`` when no subcommand follows."""
    args = list(argv)
    positions: list[int] = []
    expect_value = False
    for i, word in enumerate(args):
        if expect_value:
            expect_value = False
            continue
        if word == "--":
            break
        if word.startswith("-") and word != "-":
            expect_value = word in _VALUED_OPTIONS
            continue
        positions.append(i)
        if len(positions) == 2:
            break
    if not positions or args[positions[0]] not in _DEFAULT_LIST:
        return args
    group, at = args[positions[0]], positions[0] + 1
    default = _DEFAULT_NAME.get(group, "list")
    if len(positions) == 2:
        if args[positions[1]] not in _DEFAULT_LIST[group] and group not in _BARE_DEFAULT:
            args.insert(at, default)
    elif group in _BARE_DEFAULT and not {"-h", "--help"} & set(args):
        args.insert(at, default)
    return args


def build_parser() -> argparse.ArgumentParser:
    common = _output_parent()
    in_ns = _namespace_parent()
    parser = argparse.ArgumentParser(
        prog="platform",
        description=(
            "Micro as a Service: log in, configure ~/.micro, manage namespaces, tokens and audit; "
            "deploy services, roll them back, set their config and read their logs."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"platform {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(
        parent: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        handler: Handler,
        help_text: str,
        *,
        namespaced: bool = False,
    ) -> argparse.ArgumentParser:
        p = parent.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[common, in_ns] if namespaced else [common],
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(handler=handler)
        return p

    def group(
        name: str, help_text: str, *, namespaced: bool = False
    ) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        p = sub.add_parser(
            name, help=help_text, description=help_text, parents=[common, in_ns] if namespaced else [common]
        )
        p.set_defaults(handler=None, group_parser=p)
        return p.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")

    # init
    p = command(
        sub,
        "init",
        commands.cmd_init,
        "configure ~/.micro (platform.env and micro's config.json): API, login, namespace, runtime credential",
    )
    p.add_argument("--api-url", metavar="URL", help="the platform API address (instead of asking)")
    p.add_argument("--local", action="store_true", help="the local cloud at http://127.0.0.1:8000, local login")
    p.add_argument("--login", metavar="LOGIN", help="the seeded login to use on the local cloud (e.g. ada)")
    p.add_argument("--token", metavar="TOKEN", help="use this platform token instead of logging in")
    p.add_argument("--namespace", metavar="ID", help="the namespace to configure (instead of asking)")
    p.add_argument("-y", "--yes", action="store_true", help="never prompt: take defaults, fail (exit 2) without one")

    command(sub, "env", commands.cmd_env, 'print export lines of the configuration for a shell: eval "$(platform env)"')

    # login / logout / whoami
    p = command(sub, "login", commands.cmd_login, "log in (device flow, or --local --login LOGIN) and save the token")
    p.add_argument("--api-url", metavar="URL", help="the platform API address (default: the configured one)")
    p.add_argument("--local", action="store_true", help="local login on a local-stage API")
    p.add_argument("--login", metavar="LOGIN", help="the seeded login for --local (e.g. ada)")
    p.add_argument("-y", "--yes", action="store_true", help="never prompt")
    command(sub, "logout", commands.cmd_logout, "revoke the platform token and remove it from the configuration")
    command(sub, "whoami", commands.cmd_whoami, "the logged-in user and their namespaces")

    # regions
    regions = group("regions", "regions a namespace can be placed in; provisioned with Terraform (platform admins)")
    command(regions, "list", commands.cmd_regions_list, "list the regions")
    regions_cli.add_commands(command, regions)

    # namespaces
    ns = group("namespaces", "create, inspect and delete namespaces")
    command(ns, "list", commands.cmd_namespaces_list, "list the namespaces you can see")
    p = command(ns, "create", commands.cmd_namespaces_create, "create a namespace for a GitHub team")
    p.add_argument("--org", required=True, help="the GitHub organization")
    p.add_argument("--team", required=True, help="the GitHub team (its slug)")
    p.add_argument("--region", required=True, help="the region (see `platform regions list`)")
    p.add_argument("--plan", default="starter", help="the plan: starter (default), team or scale")
    p.add_argument("--wait", action="store_true", help="wait until the namespace is active or failed")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between polls with --wait (default 2)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait at most with --wait (default 900)")
    p = command(ns, "show", commands.cmd_namespaces_show, "show a namespace (default: MICRO_NAMESPACE)")
    p.add_argument("namespace", nargs="?", metavar="NAMESPACE")
    p = command(ns, "delete", commands.cmd_namespaces_delete, "delete a namespace")
    p.add_argument("namespace", metavar="NAMESPACE")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation (required without a TTY)")
    p = command(ns, "members", commands.cmd_namespaces_members, "list a namespace's members (default: MICRO_NAMESPACE)")
    p.add_argument("namespace", nargs="?", metavar="NAMESPACE")

    # tokens
    tokens = group("tokens", "scoped, expiring API tokens")
    p = command(tokens, "create", commands.cmd_tokens_create, "create a token (its secret is shown once)")
    p.add_argument("--name", required=True, help="a name to recognise the token by")
    p.add_argument("--namespace", metavar="ID", help="the namespace (default: MICRO_NAMESPACE)")
    p.add_argument(
        "--scope", action="append", required=True, choices=commands.SCOPES, help="a scope; repeat for several"
    )
    p.add_argument(
        "--expires-in",
        type=commands.parse_duration,
        default=30 * 86400,
        metavar="DURATION",
        help="lifetime: 30d, 12h, 45m or seconds (default 30d)",
    )
    command(tokens, "list", commands.cmd_tokens_list, "list your tokens (never their secrets)")
    p = command(tokens, "revoke", commands.cmd_tokens_revoke, "revoke a token")
    p.add_argument("id", metavar="TOKEN_ID")

    # audit
    p = command(sub, "audit", commands.cmd_audit, "a namespace's audit log")
    p.add_argument("--namespace", metavar="ID", help="the namespace (default: MICRO_NAMESPACE)")
    p.add_argument("--since", help="an ISO 8601 time, or a duration back from now (24h, 7d)")
    p.add_argument("--actor", help="only this actor's entries")
    p.add_argument("--action", help="only entries of this action")

    _add_deploy_commands(command, group, sub)
    billing.add_commands(command, group, sub)
    reports.add_commands(command, group, sub)
    alerts.add_commands(command, group, sub)
    return parser


def _add_wait(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait",
        action="store_true",
        help="follow the deployment (each step's status on stderr) until it ends: exit 0 when it succeeds, "
        "1 when it fails, is rolled back or superseded",
    )
    p.add_argument(
        "--timeout", type=float, default=900.0, help="seconds to follow at most with --wait (default 900; then exit 1)"
    )


def _add_deploy_commands(
    command: Callable[..., argparse.ArgumentParser],
    group: Callable[..., argparse._SubParsersAction[argparse.ArgumentParser]],
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    # services
    services = group("services", "a namespace's services (`platform services` lists them)", namespaced=True)
    command(services, "list", deploys.cmd_services_list, "list the services", namespaced=True)
    p = command(
        services, "show", deploys.cmd_services_show, "a service: status, deployment, commit, instances", namespaced=True
    )
    p.add_argument("service", metavar="SERVICE")
    p = command(
        services, "delete", deploys.cmd_services_delete, "delete a service (its processes stop)", namespaced=True
    )
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation (required without a TTY)")

    # deploy
    p = command(sub, "deploy", deploys.cmd_deploy, "deploy a commit or ref of a git repository", namespaced=True)
    p.add_argument("service", metavar="SERVICE")
    p.add_argument(
        "--source",
        required=True,
        metavar="REPO",
        help="the git repository: a URL, or a local path (made absolute). The API reads a path on its own "
        "machine: for the local cloud, that is this machine",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--ref", metavar="REF", help="a branch, tag or HEAD")
    which.add_argument("--commit", metavar="SHA", type=deploys.commit_arg, help="a commit (7 to 40 hex digits)")
    _add_wait(p)

    # deployments
    deployments = group(
        "deployments", "a service's deployments (`platform deployments SERVICE` lists them)", namespaced=True
    )
    p = command(
        deployments, "list", deploys.cmd_deployments_list, "list a service's deployments, newest first", namespaced=True
    )
    p.add_argument("service", metavar="SERVICE")
    p = command(
        deployments,
        "show",
        deploys.cmd_deployments_show,
        "a deployment: every step with timestamps, commit, trigger, reason, logs",
        namespaced=True,
    )
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("deployment", metavar="DEPLOYMENT_ID")

    # rollback / auto-deploy
    p = command(
        sub,
        "rollback",
        deploys.cmd_rollback,
        "redeploy an earlier good deployment (no rebuild); pauses auto-deploy",
        namespaced=True,
    )
    p.add_argument("service", metavar="SERVICE")
    p.add_argument(
        "--to", metavar="DEPLOYMENT_ID", help="the deployment to go back to (default: the previous good one)"
    )
    _add_wait(p)
    p = command(
        sub, "auto-deploy", deploys.cmd_auto_deploy, "turn auto-deploy on (resuming it) or off", namespaced=True
    )
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("state", choices=("on", "off"))

    # logs
    p = command(sub, "logs", deploys.cmd_logs, "a service's logs (stdout and stderr of its processes)", namespaced=True)
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("--since", help="an ISO 8601 time, or a duration back from now (10m, 1h, 2d)")
    p.add_argument(
        "--tail", type=deploys.positive_int, metavar="N", help="the last N lines (API default 100, max 1000)"
    )
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines (polls every 2 s) until Ctrl-C")

    # config
    config = group("config", "a service's config vars (`platform config SERVICE` lists them)", namespaced=True)
    p = command(config, "list", deploys.cmd_config_list, "list the config vars (secrets by name only)", namespaced=True)
    p.add_argument("service", metavar="SERVICE")
    p = command(
        config, "set", deploys.cmd_config_set, "set config vars; the service redeploys with them", namespaced=True
    )
    p.add_argument("service", metavar="SERVICE")
    p.add_argument(
        "assignments",
        nargs="+",
        metavar="KEY=VALUE",
        help="vars to set (a value may contain =); with --stdin, one KEY whose value is read from stdin",
    )
    p.add_argument("--secret", action="store_true", help="mark every given var secret (never shown again)")
    p.add_argument(
        "--stdin",
        action="store_true",
        help="read the value of the one KEY from stdin (keeps it out of your shell history)",
    )
    p = command(
        config, "unset", deploys.cmd_config_unset, "remove a config var; the service redeploys", namespaced=True
    )
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("key", metavar="KEY")


def main(
    argv: Sequence[str] | None = None,
    *,
    client_factory: ClientFactory | None = None,
    environ: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    sleep: Callable[[float], None] | None = None,
    now: Callable[[], datetime] | None = None,
    max_polls: int | None = None,
) -> int:
    """Run the CLI; returns the exit code (the ``platform`` console script exits with it).

    Tests inject the API (``client_factory``), the streams, the clock, ``sleep`` and ``max_polls`` (how
    many polls ``logs --follow`` makes before it returns, instead of running until Ctrl-C)."""
    import os

    parser = build_parser()
    try:
        args = parser.parse_args(with_default_subcommand(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse: --help, --version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    err = stderr or sys.stderr
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        target = getattr(args, "group_parser", parser)
        target.print_help(err)
        return EXIT_USAGE
    ctx = Context(
        environ=os.environ if environ is None else environ,
        stdin=stdin or sys.stdin,
        stdout=stdout or sys.stdout,
        stderr=err,
        client_factory=client_factory or default_factory,
        sleep=sleep or time.sleep,
        now=now or _utcnow,
        output=getattr(args, "output", "table"),
        max_polls=max_polls,
    )
    try:
        return handler(ctx, args)
    except CliError as exc:
        err.write(f"error: {clean(exc.message)} ({clean(exc.code)})\n")
        return exc.exit_code
    except KeyboardInterrupt:
        err.write("error: interrupted (interrupted)\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
