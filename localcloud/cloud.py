"""The local cloud: every piece started in one process, in order, and stopped in reverse.

    moto server (DynamoDB serialised) -> resources from infra/resources.json -> the table's snapshot
    and journal (replayed, then every write journalled) -> Lambda router -> stand-ins (GitHub, Slack,
    the webhook receiver, micro and its proxy placeholder, Stripe) -> startup functions (seed, catalog
    sync, runtime restore, sweepers, outbox relay) -> queue consumers and task workers -> scheduler ->
    snapshotter -> API front end

It knows the declaration and the handlers' names, never the domain."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localcloud import lambdas, moto_patches
from localcloud.aws import MotoServer, create_resources
from localcloud.declaration import ROOT, Declaration
from localcloud.journal import Journal, replay
from localcloud.queues import QueueConsumer
from localcloud.snapshot import Snapshotter, restore

log = logging.getLogger("localcloud")


@dataclass
class Ports:
    api: int = 8000
    aws: int = 4566
    github: int = 8010
    slack: int = 8011
    micro: int = 8012  # the micro stand-in's HTTP API gateway (the region micro-local)
    micro_proxy: int = 8013  # where its gRPC proxy would be
    stripe: int = 8014  # the Stripe stand-in
    webhooks: int = 8016  # the signed-webhook receiver stand-in (alerts)

    @classmethod
    def from_env(cls) -> Ports:
        e = os.environ
        return cls(
            api=int(e.get("PLATFORM_API_PORT", 8000)),
            aws=int(e.get("PLATFORM_AWS_PORT", 4566)),
            github=int(e.get("PLATFORM_GITHUB_PORT", 8010)),
            slack=int(e.get("PLATFORM_SLACK_PORT", 8011)),
            micro=int(e.get("PLATFORM_MICRO_PORT", 8012)),
            micro_proxy=int(e.get("PLATFORM_MICRO_PROXY_PORT", 8013)),
            stripe=int(e.get("PLATFORM_STRIPE_PORT", 8014)),
            webhooks=int(e.get("PLATFORM_WEBHOOKS_PORT", 8016)),
        )

    @classmethod
    def any_free(cls) -> Ports:
        """Free ports picked now (for tests): every address is known before anything starts."""
        socks = [socket.socket() for _ in range(8)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        api, aws, github, slack, micro, micro_proxy, stripe, webhooks = (int(s.getsockname()[1]) for s in socks)
        for s in socks:
            s.close()
        return cls(
            api=api,
            aws=aws,
            github=github,
            slack=slack,
            micro=micro,
            micro_proxy=micro_proxy,
            stripe=stripe,
            webhooks=webhooks,
        )


def check_free(host: str, ports: dict[str, int]) -> None:
    """Fail before starting anything when a port is taken, naming it and its variable."""
    for what, port in ports.items():
        if port == 0:
            continue
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                raise SystemExit(
                    f"port {port} ({what}) is in use: stop what uses it (`make stop` if it is an earlier "
                    f"`make run`) or set PLATFORM_{what.upper()}_PORT"
                ) from None


def private_data_dir(path: Path) -> None:
    """The data directory (the key, the table's snapshot, the runtime's state, the artifacts) is this
    user's only: the directory 0700 and the files at its top 0600, also those an older version left
    readable. New files are private by the directory's mode whatever their own (and `make run` sets
    the umask 077)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    for entry in path.iterdir():
        if entry.is_file() and not entry.is_symlink():
            entry.chmod(0o600)


@dataclass
class LocalCloud:
    decl: Declaration
    clock: Any
    ports: Ports = field(default_factory=Ports)
    host: str = "127.0.0.1"
    data_dir: Path | None = None
    serve_api: bool = True
    standins: bool = True
    snapshot_every: float = 5.0
    stage: str = "local"
    on_ready: Callable[[LocalCloud], None] | None = None

    def __post_init__(self) -> None:
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.moto = MotoServer(self.host, self.ports.aws)
        self.router = lambdas.FunctionRouter(self.decl)
        self.consumers: dict[str, QueueConsumer] = {}
        self.task_workers: dict[str, Any] = {}
        self.resources: dict[str, Any] = {}
        self.github: Any = None
        self.slack: Any = None
        self.webhooks: Any = None
        self.micro: Any = None
        self.micro_proxy: Any = None
        self.stripe: Any = None
        self.scheduler: Any = None
        self.snapshotter: Snapshotter | None = None
        self.journal: Journal | None = None
        self.api_server: Any = None
        self.restored = 0
        self.replayed = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LocalCloud:
        check_free(
            self.host,
            {
                "aws": self.ports.aws,
                "api": self.ports.api if self.serve_api else 0,
                "github": self.ports.github if self.standins else 0,
                "slack": self.ports.slack if self.standins else 0,
                "micro": self.ports.micro if self.standins else 0,
                "micro_proxy": self.ports.micro_proxy if self.standins else 0,
                "stripe": self.ports.stripe if self.standins else 0,
                "webhooks": self.ports.webhooks if self.standins else 0,
            },
        )
        self.moto.start()
        self._set_environment()
        self.resources = create_resources(self.moto, self.decl)
        os.environ.update(self.resource_environment())
        if self.data_dir is not None:
            private_data_dir(self.data_dir)
            self._restore_data()
        moto_patches.install(self.router.invoke)
        if self.standins:
            self._start_standins()
        for entry in (self.decl.data.get("local") or {}).get("startup", []):
            # A function's name, or {"function": name, "input": {...}} (merged into its event).
            name, extra = (entry, {}) if isinstance(entry, str) else (entry["function"], entry.get("input") or {})
            began = time.monotonic()
            result, error = self.router.invoke(name, {**extra, "source": "localcloud.startup"})
            if error:
                raise SystemExit(f"startup function {name} failed: {result}")
            log.info("startup function %s: %s (%.1fs)", name, json.dumps(result)[:500], time.monotonic() - began)
        self._start_consumers()
        self._start_scheduler()
        if self.snapshotter is not None:
            self._thread("snapshot", self.snapshotter.run, self.stop_event)
        if self.serve_api:
            from localcloud.frontend import make_server

            self.api_server = make_server(self.stage, self.host, self.ports.api)
            self.ports.api = int(self.api_server.server.server_address[1])
            self._thread("api", self.api_server.serve_forever)
            if self.github is not None:  # the GitHub App's webhooks come to this API
                self.github.webhook_url = f"{self.api_url}/v1/webhooks/github"
            if self.stripe is not None:  # and Stripe's
                self.stripe.webhook_url = f"{self.api_url}/v1/webhooks/stripe"
        if self.on_ready:
            self.on_ready(self)
        return self

    def stop(self) -> None:
        for name in (self.decl.data.get("local") or {}).get("shutdown", []):
            result, error = self.router.invoke(name, {"source": "localcloud.shutdown"})
            if error:
                log.error("shutdown function %s failed: %s", name, result)
        self.stop_event.set()
        if self.api_server is not None:
            self.api_server.shutdown()
            self.api_server.server.server_close()
        for t in self.threads:
            t.join(timeout=5)
        if self.snapshotter is not None:
            n = self.snapshotter.save()
            log.info("saved %d items to %s", n, self.snapshot_path)
        if self.journal is not None:
            self.moto.app.journal = None
            self.journal.close()
        for standin in (self.stripe, self.micro_proxy, self.micro, self.github, self.slack, self.webhooks):
            if standin is not None:
                standin.stop()
        moto_patches.uninstall()
        self.moto.stop()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers

    @property
    def snapshot_path(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "table.json"

    @property
    def journal_path(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "journal.jsonl"

    def _restore_data(self) -> None:
        """The snapshot, then the journal's writes since, into the new table; that state becomes the
        new snapshot (the journal starts empty), and from now on every write is journalled."""
        table = self.decl.table_name
        self.restored = restore(self.snapshot_path, self.client("dynamodb"), table)
        self.replayed = replay(self.journal_path, self.client("dynamodb"), table)
        t = self.decl.data["table"]
        self.journal = Journal(self.journal_path, table, self.decl.region, (t["hash_key"], t["range_key"]))
        self.snapshotter = Snapshotter(
            self.snapshot_path, table, self.decl.region, self.moto.app.lock, self.snapshot_every, self.journal
        )
        self.restored = self.snapshotter.save()
        self.moto.app.journal = self.journal

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.ports.api}"

    def client(self, service: str) -> Any:
        return self.moto.client(service, self.decl.region)

    def environment(self) -> dict[str, str]:
        """The Lambda environment of the stage, pointed at this local cloud."""
        config = json.loads((ROOT / ".chalice" / "config.json").read_text())
        env = {
            **config.get("environment_variables", {}),
            **config["stages"][self.stage].get("environment_variables", {}),
        }
        env.update(
            {
                "AWS_ENDPOINT_URL": self.moto.endpoint,
                "AWS_DEFAULT_REGION": self.decl.region,
                "AWS_REGION": self.decl.region,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "MOTO_PORT": str(self.moto.port),
                "PLATFORM_STAGE": self.stage,
                "PLATFORM_TABLE_NAME": self.decl.table_name,
                "PLATFORM_EVENT_BUS": self.decl.bus_name,
                "PLATFORM_LOCAL_CLUSTER_ADDRESS": f"http://{self.host}:{self.ports.api}",
                "PLATFORM_PUBLIC_URL": f"http://{self.host}:{self.ports.api}",
                "PLATFORM_LOCAL_KEY": self.local_key(),
                # its data (the key, the table's snapshot): the handlers refuse deploy sources inside it
                "PLATFORM_DATA_DIR": str(self.data_dir or Path(".local/data")),
                "PLATFORM_RUNTIME_DIR": str((self.data_dir or Path(".local/data")) / "runtime"),
                "PLATFORM_ARTIFACTS_DIR": str((self.data_dir or Path(".local/data")) / "artifacts"),
                "PLATFORM_DEPLOY_POLL_SECONDS": os.environ.get("PLATFORM_DEPLOY_POLL_SECONDS", "1"),
                # the regions' Terraform working directories and state (the local backend), kept with the data
                "PLATFORM_TERRAFORM_DIR": str((self.data_dir or Path(".local/data")) / "regions"),
                "PLATFORM_REGION_POLL_SECONDS": os.environ.get("PLATFORM_REGION_POLL_SECONDS", "1"),
                # every email is sent from the declared SES identity, and kept as an .eml file here
                "PLATFORM_EMAIL_FROM": (self.decl.data.get("ses_identity") or {}).get("email", ""),
                "PLATFORM_MAIL_DIR": str((self.data_dir or Path(".local/data")) / "mail"),
            }
        )
        if self.data_dir is not None and self.stage == "local":
            env["PLATFORM_CLOCK_FILE"] = str(self.clock_file)  # python -m localcloud.clock moves it
        return env

    @property
    def clock_file(self) -> Path:
        """The local clock's offset (localcloud/clock.py), read by the handlers and the scheduler."""
        return (self.data_dir or Path(".local/data")) / "clock.json"

    def resource_environment(self) -> dict[str, str]:
        """Where the handlers find the state machines, queues and buckets (as Terraform sets them on AWS)."""
        env = {}
        for name, arn in self.resources["state_machines"].items():
            env[f"PLATFORM_SFN_{name.upper().replace('-', '_')}_ARN"] = arn
        for name, queue in self.resources["queues"].items():
            env[f"PLATFORM_QUEUE_{name.upper().replace('-', '_')}_URL"] = queue["url"]
        for name, bucket in self.resources.get("buckets", {}).items():
            env[f"PLATFORM_BUCKET_{name.upper().replace('-', '_')}_NAME"] = bucket
        return env

    def local_key(self) -> str:
        """The local stage's encryption key: made once, kept with the data (so secrets survive a restart)."""
        if self.data_dir is None:
            return "localcloud-ephemeral-key"
        path = self.data_dir / "local.key"
        if not path.exists():
            import secrets

            private_data_dir(self.data_dir)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def _set_environment(self) -> None:
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(self.environment())

    def _thread(self, name: str, target: Callable[..., Any], *args: Any) -> None:
        t = threading.Thread(target=target, args=args, name=f"localcloud-{name}", daemon=True)
        t.start()
        self.threads.append(t)

    def _start_standins(self) -> None:
        from localcloud.standins.github import GitHubStandIn
        from localcloud.standins.slack import SlackStandIn
        from localcloud.standins.webhooks import WebhookReceiverStandIn

        # A webhook secret set in the environment is the App's (a person's own GitHub App, through a
        # tunnel): the API verifies with it, and the stand-in signs with it too.
        secret = os.environ.get("GITHUB_WEBHOOK_SECRET") or None
        self.github = GitHubStandIn(self.host, self.ports.github, webhook_secret=secret).start()
        self.slack = SlackStandIn(self.host, self.ports.slack).start()
        self.webhooks = WebhookReceiverStandIn(self.host, self.ports.webhooks).start()
        self._start_micro()
        self._start_stripe()
        app = self.github.app
        os.environ.update(
            {
                "GITHUB_API_URL": self.github.api_url,
                "GITHUB_WEB_URL": self.github.url,
                "GITHUB_APP_ID": str(app.id),
                "GITHUB_CLIENT_ID": app.client_id,
                "GITHUB_CLIENT_SECRET": app.client_secret,
                "GITHUB_WEBHOOK_SECRET": app.webhook_secret,
                "GITHUB_APP_PRIVATE_KEY": self.github.app_private_key_pem.decode(),
                "PLATFORM_SLACK_STANDIN_URL": self.slack.url,
                "PLATFORM_WEBHOOK_RECEIVER_URL": self.webhooks.url,
            }
        )

    def _start_micro(self) -> None:
        """The micro stand-in (the region micro-local's cluster): github.com is the GitHub stand-in for
        its source fetches, and the platform calls it with a token of its default admin."""
        from localcloud.standins.micro import MicroStandIn, NoProxy, ResolvedHost

        github = self.github
        self.micro = MicroStandIn(
            self.host,
            self.ports.micro,
            git_hosts={"github.com": ResolvedHost(github.readable_repo)},
        ).start()
        self.micro_proxy = NoProxy(self.host, self.ports.micro_proxy).start()
        repos = github.repos_dir.resolve().as_uri().rstrip("/") + "/"
        os.environ.update(
            {
                "PLATFORM_MICRO_LOCAL_API_ADDRESS": self.micro.url,
                "PLATFORM_MICRO_LOCAL_PROXY_ADDRESS": f"{self.host}:{self.micro_proxy.port}",
                "MICRO_RUNTIME_TOKEN": self.micro.admin_token(),
                # the GitHub stand-in's clone URLs (file://) are what https://github.com/ stands for
                "PLATFORM_GIT_REMOTE_ALIASES": f"{repos}=https://github.com/",
            }
        )

    def _start_stripe(self) -> None:
        """The Stripe stand-in, on the local cloud's clock (a moved clock moves Stripe's too). A webhook
        secret set in the environment is honoured as GITHUB_WEBHOOK_SECRET is: the API verifies with it and
        the stand-in signs with it."""
        from localcloud.standins.stripe import StripeStandIn

        secret = os.environ.get("STRIPE_WEBHOOK_SECRET") or None
        self.stripe = StripeStandIn(self.host, self.ports.stripe, clock=self.clock, webhook_secret=secret).start()
        os.environ.update(
            {
                "STRIPE_API_BASE": self.stripe.api_base,
                "STRIPE_API_KEY": self.stripe.api_key,
                "STRIPE_WEBHOOK_SECRET": self.stripe.webhook_secret,
            }
        )

    def _start_consumers(self) -> None:
        sqs = self.client("sqs")
        tasks = {t["name"]: t for t in self.decl.list("tasks")}
        for q in self.decl.list("queues"):
            if not q.get("consumer"):
                continue
            made = self.resources["queues"][q["name"]]
            if "task" in q["consumer"]:  # a container task per message (localcloud/tasks.py)
                from localcloud.tasks import TaskWorker

                log_path = (self.data_dir or Path(".local/data")) / "tasks.log"
                worker = TaskWorker(self.client("sqs"), q, made["url"], tasks[q["consumer"]["task"]], log_path)
                self.task_workers[q["name"]] = worker
                self._thread(f"tasks-{q['name']}", worker.run, self.stop_event)
                continue
            consumer = QueueConsumer(sqs, self.router, self.decl, q, made["url"], made["arn"])
            self.consumers[q["name"]] = consumer
            self._thread(f"queue-{q['name']}", consumer.run, self.stop_event)

    def _start_scheduler(self) -> None:
        from localcloud.schedules import Scheduler

        self.scheduler = Scheduler(self.decl.list("schedules"), self.clock, self.fire_schedule)
        self._thread("scheduler", self.scheduler.run, self.stop_event)

    def fire_schedule(self, schedule: dict[str, Any], at: datetime) -> None:
        """What EventBridge Scheduler does: start the state machine, or invoke the function."""
        target = schedule["target"]
        # EventBridge Scheduler fills its context attributes in a target's input ("Adding context
        # attributes", EventBridge Scheduler User Guide): <aws.scheduler.scheduled-time> is the
        # scheduled time in ISO 8601, UTC.
        stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        payload = {
            key: value.replace("<aws.scheduler.scheduled-time>", stamp) if isinstance(value, str) else value
            for key, value in (target.get("input") or {}).items()
        }
        payload.setdefault("scheduled_time", at.isoformat())
        payload.setdefault("schedule", schedule["name"])
        if "state_machine" in target:
            arn = self.resources["state_machines"][target["state_machine"]]
            name = f"{schedule['name']}-{at.strftime('%Y%m%dT%H%M%SZ')}"
            try:
                self.client("stepfunctions").start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload))
            except self.client("stepfunctions").exceptions.ExecutionAlreadyExists:
                log.info("schedule %s: execution %s exists already", schedule["name"], name)
        else:
            result, error = self.router.invoke(target["function"], payload)
            if error:
                raise RuntimeError(f"schedule {schedule['name']}: {target['function']} failed: {result}")

    def start_execution(self, machine: str, payload: dict[str, Any], name: str) -> str:
        arn = self.resources["state_machines"][machine]
        answer = self.client("stepfunctions").start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload))
        return str(answer["executionArn"])

    def wait_execution(self, execution_arn: str, timeout: float = 30.0) -> dict[str, Any]:
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            d = sfn.describe_execution(executionArn=execution_arn)
            if d["status"] != "RUNNING":
                return dict(d)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still RUNNING after {timeout}s")
            time.sleep(0.05)
