"""The composition root: the one place that picks adapters from configuration and wires services.

Everything is built lazily, on first use, so importing a handler costs little (cold starts) and
tests can point the environment at moto before any client exists. ``get_container()`` answers the
process's container; tests install their own with ``set_container``."""

from __future__ import annotations

import os
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.config import SECRET_NAMES, Settings
from chalicelib.domain.clock import Clock, SystemClock

if TYPE_CHECKING:
    from chalicelib.adapters.aws.eventbridge import EventBridgeBus
    from chalicelib.adapters.aws.workflows import SqsQueues, StepFunctionsWorkflows
    from chalicelib.adapters.dynamodb.billing import DynamoBillingStateStore
    from chalicelib.adapters.dynamodb.outbox import DynamoOutbox
    from chalicelib.adapters.dynamodb.regions import DynamoRegionRegistry
    from chalicelib.adapters.dynamodb.usage import DynamoUsageLedger
    from chalicelib.adapters.github.clients import GitHubClients
    from chalicelib.adapters.runtime.credentials import ClusterCredentials
    from chalicelib.adapters.runtime.micro import MicroRuntime
    from chalicelib.adapters.stripe_billing import StripeBilling
    from chalicelib.domain.metering import Catalog
    from chalicelib.domain.model import Namespace
    from chalicelib.domain.ports import (
        Cluster,
        ClusterProbe,
        EncryptorPort,
        GitHubOAuthPort,
        GitHubPort,
        GitHubReposPort,
        NotifierPort,
        Region,
        RuntimeAuthPort,
        RuntimePort,
        RuntimeUsagePort,
        StatusReporter,
        TaskTokenPort,
        TerraformPort,
    )
    from chalicelib.domain.rating import RatingService
    from chalicelib.domain.services.alerts import AlertService
    from chalicelib.domain.services.audit import AuditService
    from chalicelib.domain.services.auth import AuthService
    from chalicelib.domain.services.billing_account import BillingAccountService
    from chalicelib.domain.services.budgets import BudgetService
    from chalicelib.domain.services.delivery import DeliveryService
    from chalicelib.domain.services.deploys import DeployService
    from chalicelib.domain.services.github_webhooks import DeliveryRecovery, GitHubEventProcessor, GitHubWebhookService
    from chalicelib.domain.services.gitops import GitOpsService
    from chalicelib.domain.services.health import HealthService
    from chalicelib.domain.services.ingestion import IngestionService, IngestTokenService
    from chalicelib.domain.services.login import LoginService
    from chalicelib.domain.services.membership import MembershipService
    from chalicelib.domain.services.metering_run import MeteringFanOut, MeteringService
    from chalicelib.domain.services.namespaces import NamespaceService
    from chalicelib.domain.services.outbox_relay import OutboxRelayService
    from chalicelib.domain.services.reconciliation import ReconciliationService
    from chalicelib.domain.services.regions import RegionService
    from chalicelib.domain.services.reports import ReportService
    from chalicelib.domain.services.runtime_accounts import RuntimeAccountService
    from chalicelib.domain.services.stripe_events import StripeEventProcessor, StripeWebhookService
    from chalicelib.domain.services.usage import UsageService


class Container:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or default_clock(settings)
        self._bound = False
        self._lock = threading.Lock()

    def bind(self) -> None:
        """Point the table models at this container's table (once)."""
        with self._lock:
            if not self._bound:
                from chalicelib.adapters.dynamodb.base import bind_table

                bind_table(self.settings.table_name, self.settings.region, self.settings.aws_endpoint_url)
                self._bound = True

    def _aws(self) -> dict[str, Any]:
        return {"region": self.settings.region, "endpoint_url": self.settings.aws_endpoint_url}

    # ------------------------------------------------------------------ secrets

    @cached_property
    def _secrets_provider(self) -> Any:
        import boto3
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        client = boto3.client(
            "secretsmanager", region_name=self.settings.region, endpoint_url=self.settings.aws_endpoint_url
        )
        return SecretsProvider(boto3_client=client)

    def secret(self, name: str) -> str:
        """One secret as it is now (a rotated one within ``secrets_max_age_seconds``); "" when unset."""
        return self.secrets.get(name, "")

    @property
    def secrets(self) -> dict[str, str]:
        """The platform's secrets: Secrets Manager on AWS, through Powertools Parameters, whose cache keeps
        them ``secrets_max_age_seconds`` (so a rotated secret is picked up without a cold start); the
        environment locally (read once). One secret per concern (GitHub App, micro runtime, Stripe), each
        function reading only its own: PLATFORM_SECRETS_ID lists them, comma-separated, and their JSON
        objects are merged."""
        if not self.settings.secrets_id:
            return self._local_secrets
        value: dict[str, str] = {}
        for secret_id in filter(None, (s.strip() for s in self.settings.secrets_id.split(","))):
            value.update(
                self._secrets_provider.get(secret_id, transform="json", max_age=self.settings.secrets_max_age_seconds)
            )
        return _completed(value)

    @cached_property
    def _local_secrets(self) -> dict[str, str]:
        return _completed({name: os.environ[name] for name in SECRET_NAMES if os.environ.get(name)})

    # ------------------------------------------------------------------ adapters

    @cached_property
    def catalog(self) -> Catalog:
        """Meters and plans (chalicelib/catalog.json)."""
        from chalicelib.adapters.catalog import load_catalog

        return load_catalog()

    @cached_property
    def event_bus(self) -> EventBridgeBus:
        from chalicelib.adapters.aws.eventbridge import EventBridgeBus

        return EventBridgeBus(self.settings.event_bus_name, **self._aws())

    @cached_property
    def workflows(self) -> StepFunctionsWorkflows:
        from chalicelib.adapters.aws.workflows import StepFunctionsWorkflows

        return StepFunctionsWorkflows(**self._aws())

    @cached_property
    def queues(self) -> SqsQueues:
        from chalicelib.adapters.aws.workflows import SqsQueues

        return SqsQueues(**self._aws())

    @cached_property
    def outbox(self) -> DynamoOutbox:
        self.bind()
        from chalicelib.adapters.dynamodb.outbox import DynamoOutbox

        return DynamoOutbox(self.clock)

    @cached_property
    def regions(self) -> DynamoRegionRegistry:
        self.bind()
        from chalicelib.adapters.dynamodb.regions import DynamoRegionRegistry

        return DynamoRegionRegistry(self.clock)

    @cached_property
    def stores(self) -> Any:
        """The table's stores (one namespace object: ``stores.tokens``, ``stores.members``, ...)."""
        self.bind()
        from types import SimpleNamespace

        from chalicelib.adapters.dynamodb.accounts import DynamoAccountStore
        from chalicelib.adapters.dynamodb.audit import DynamoAuditStore, DynamoDeliveryStore
        from chalicelib.adapters.dynamodb.ingest_tokens import DynamoIngestTokenStore
        from chalicelib.adapters.dynamodb.logins import DynamoLoginWindowStore
        from chalicelib.adapters.dynamodb.members import DynamoMemberStore
        from chalicelib.adapters.dynamodb.namespaces import DynamoNamespaceStore
        from chalicelib.adapters.dynamodb.regions import DynamoPlacementStore
        from chalicelib.adapters.dynamodb.runtime_accounts import DynamoRuntimeAccountStore
        from chalicelib.adapters.dynamodb.tokens import DynamoTokenStore

        return SimpleNamespace(
            accounts=DynamoAccountStore(),
            namespaces=DynamoNamespaceStore(),
            members=DynamoMemberStore(),
            tokens=DynamoTokenStore(),
            windows=DynamoLoginWindowStore(),
            audit=DynamoAuditStore(),
            deliveries=DynamoDeliveryStore(),
            placement=DynamoPlacementStore(),
            ingest_tokens=DynamoIngestTokenStore(),
            runtime_accounts=DynamoRuntimeAccountStore(),
        )

    def _is_local_cluster(self, api_address: str) -> bool:
        return self.settings.stage == "local" and api_address == self.settings.local_cluster_address

    def _micro(self, api_address: str, *, probe: bool = False) -> MicroRuntime:
        """micro's runtime at ``api_address``, as the platform's admin there: the cluster's own credential
        when its registration names one, else ``MICRO_RUNTIME_TOKEN``. A probe neither retries nor waits long."""
        from chalicelib.adapters.runtime.micro import MicroRuntime

        cluster = self._cluster_at(api_address)
        token = self.cluster_credentials.token(api_address, cluster.credentials_secret if cluster else "")
        return MicroRuntime(
            api_address,
            token,
            timeout=5 if probe else 10,
            retries=0 if probe else self.settings.runtime_retries,
            backoff=self.settings.runtime_backoff_seconds,
            remote_aliases=self.settings.git_remote_aliases,
        )

    def _cluster_at(self, api_address: str) -> Cluster | None:
        """The registered cluster whose HTTP API is ``api_address`` (one Query of the regions' index)."""
        for region in self.regions.list():
            for cluster in region.clusters:
                if cluster.api == api_address:
                    return cluster
        return None

    @cached_property
    def cluster_credentials(self) -> ClusterCredentials:
        from chalicelib.adapters.runtime.credentials import ClusterCredentials
        from chalicelib.adapters.runtime.micro import MicroRuntime

        def mint(api_address: str, account: str, secret: str) -> tuple[str, float]:
            token = MicroRuntime(api_address, "", retries=1, timeout=5).token("micro", account, secret, 3600)
            return token.access_token, token.expires_at.timestamp()

        def secrets_client() -> Any:
            import boto3

            return boto3.client("secretsmanager", **self._boto())

        return ClusterCredentials(
            self.secrets.get("MICRO_RUNTIME_TOKEN", ""),
            mint,
            allow_files=self.settings.stage == "local",
            secrets_client=secrets_client,
        )

    def _boto(self) -> dict[str, Any]:
        return {"region_name": self.settings.region, "endpoint_url": self.settings.aws_endpoint_url}

    def runtime_for(self, api_address: str) -> RuntimePort:
        """The micro runtime of one cluster: in the local stage, the local runtime (real processes on
        this machine); elsewhere micro's runtime API at the cluster's HTTP API gateway, with the
        platform's cluster credential."""
        if self._is_local_cluster(api_address):
            from chalicelib.adapters.runtime.local import LocalRuntime

            return LocalRuntime.shared(self.clock, Path(self.settings.runtime_dir))
        return self._micro(api_address)

    def runtime_auth_for(self, api_address: str) -> RuntimeAuthPort:
        """The accounts of one cluster's runtime: micro's auth service, or the local runtime's registry."""
        if self._is_local_cluster(api_address):
            from chalicelib.adapters.runtime.local_accounts import LocalRuntimeAccounts

            return LocalRuntimeAccounts(Path(self.settings.runtime_dir), self.clock)
        return self._micro(api_address)

    def _api_address_of(self, ns_id: str) -> str:
        ns = self.namespaces.get(ns_id)
        if ns.cluster_id is None:
            from chalicelib.domain.errors import ConflictError

            raise ConflictError(f"the namespace {ns_id} has no cluster yet", {"namespace": ns_id})
        return str(self.stores.placement.api_address(ns.region, ns.cluster_id))

    def runtime_of_namespace(self, ns_id: str) -> RuntimePort:
        return self.runtime_for(self._api_address_of(ns_id))

    def runtime_auth_of_namespace(self, ns_id: str) -> RuntimeAuthPort:
        return self.runtime_auth_for(self._api_address_of(ns_id))

    @cached_property
    def deploys(self) -> DeployService:
        from chalicelib.adapters.builds import LocalBuilds
        from chalicelib.adapters.dynamodb.deploys import DynamoDeployStore
        from chalicelib.domain.services.deploys import DeployService, DeploySettings

        self.bind()
        quotas = self.catalog.quotas()

        def locate(ns: Namespace) -> str:
            assert ns.cluster_id is not None
            return str(self.stores.placement.api_address(ns.region, ns.cluster_id))

        return DeployService(
            DynamoDeployStore(),
            LocalBuilds(
                Path(self.settings.artifacts_dir),
                platform_dirs=(self.settings.data_dir, self.settings.runtime_dir),
            ),
            self.runtime_of_namespace,
            self.workflows,
            self.status_reporter,
            self.encryptor,
            quotas.get,
            self.clock,
            DeploySettings(
                poll_seconds=self.settings.deploy_poll_seconds, allow_local_sources=self.settings.stage == "local"
            ),
            admit=lambda ns: self.budgets.check_deploys(ns),
            fetch_token=lambda installation_id: self.github_repos.fetch_token(installation_id),
            locate=locate,
            runtime_at=self.runtime_for,
        )

    @cached_property
    def github_repos(self) -> GitHubReposPort:
        from chalicelib.adapters.github.repos import PyGithubRepos

        return PyGithubRepos(self.github_clients)

    @cached_property
    def github_clients(self) -> GitHubClients:
        """The GitHub App's clients (one factory: the App, its installations, users), shared by its adapters."""
        from chalicelib.adapters.github.clients import GitHubClients

        return GitHubClients(
            self.settings.github_app_id, self.secrets.get("GITHUB_APP_PRIVATE_KEY", ""), self.settings.github_api_url
        )

    @cached_property
    def status_reporter(self) -> StatusReporter:
        from chalicelib.domain.services.gitops import GitHubStatusReporter

        return GitHubStatusReporter(self.github_repos, self.settings.public_url)

    @cached_property
    def gitops(self) -> GitOpsService:
        from chalicelib.adapters.dynamodb.repos import DynamoLinkStore, DynamoPushClaims
        from chalicelib.adapters.manifest_yaml import load_manifest
        from chalicelib.domain.services.gitops import GitOpsService

        self.bind()
        return GitOpsService(
            DynamoLinkStore(),
            self.github_repos,
            self.deploys,
            self.namespaces.get,
            lambda text: load_manifest(text, None),
            self.clock,
            DynamoPushClaims(),
            reporter=self.status_reporter,
        )

    @cached_property
    def delivery_recovery(self) -> DeliveryRecovery:
        from chalicelib.domain.services.github_webhooks import DeliveryRecovery

        return DeliveryRecovery(self.github_repos, self.stores.deliveries, self.clock)

    @cached_property
    def billing(self) -> StripeBilling:
        """Stripe, at ``STRIPE_API_BASE`` when set (the local cloud's stand-in), else Stripe itself."""
        from chalicelib.adapters.stripe_billing import StripeBilling

        return StripeBilling(
            self.secrets.get("STRIPE_API_KEY", ""),
            self.catalog,
            self.clock,
            api_base=self.settings.stripe_api_base,
            retries=self.settings.stripe_retries,
            backoff=self.settings.stripe_backoff_seconds,
        )

    @cached_property
    def github(self) -> GitHubPort:
        from chalicelib.adapters.github.app import PyGithubAdapter

        return PyGithubAdapter(self.github_clients)

    @cached_property
    def github_oauth(self) -> GitHubOAuthPort:
        from chalicelib.adapters.github.oauth import GitHubOAuth

        return GitHubOAuth(
            self.settings.github_client_id, self.secrets.get("GITHUB_CLIENT_SECRET", ""), self.settings.github_web_url
        )

    @cached_property
    def encryptor(self) -> EncryptorPort:
        if self.settings.kms_key_id:
            from chalicelib.adapters.crypto import KmsEncryptor

            return KmsEncryptor(self.settings.kms_key_id, **self._aws())
        from chalicelib.adapters.crypto import LocalKeyEncryptor

        return LocalKeyEncryptor(self.secrets.get("PLATFORM_LOCAL_KEY", ""))

    # ------------------------------------------------------------------ services

    @cached_property
    def health(self) -> HealthService:
        self.bind()
        from chalicelib.adapters.dynamodb.health import TableHealthCheck
        from chalicelib.domain.services.health import HealthService

        return HealthService(self.settings.version, [TableHealthCheck()])

    @cached_property
    def region_service(self) -> RegionService:
        from datetime import timedelta

        from chalicelib.domain.services.regions import HealthSettings, RegionService

        s = self.settings
        return RegionService(
            self.regions,
            self.clock,
            namespaces=self.stores.namespaces,
            workflows=self.workflows,
            tokens=self.task_tokens,
            probe=self.cluster_probe,
            offboard=lambda ns_id, actor: self.namespaces.delete_as(ns_id, actor),
            variables=self._terraform_variables,
            health=HealthSettings(s.region_health_failures, timedelta(seconds=s.region_health_interval_seconds)),
            poll_seconds=s.region_poll_seconds,
        )

    def _terraform_variables(self, region: Region) -> dict[str, Any]:
        """What a cloud's configuration needs from this machine besides the region's name, region, size."""
        if region.cloud != "local":
            return {}
        import sys

        return {
            "state_dir": str((Path(self.settings.terraform_dir) / region.name / "cluster").resolve()),
            "python": sys.executable,
            "project_root": str(Path(__file__).resolve().parent.parent),
            "github_url": self.settings.github_web_url,
        }

    @cached_property
    def terraform(self) -> TerraformPort:
        from chalicelib.adapters.terraform import TerraformRunner

        return TerraformRunner(
            Path(__file__).resolve().parent.parent / "infra",
            Path(self.settings.terraform_dir),
            binary=self.settings.terraform_bin,
            state_bucket=self.settings.terraform_state_bucket or None,
            state_region=self.settings.region,
        )

    @cached_property
    def task_tokens(self) -> TaskTokenPort:
        from chalicelib.adapters.aws.workflows import StepFunctionsTaskTokens

        return StepFunctionsTaskTokens(**self._aws())

    @cached_property
    def cluster_probe(self) -> ClusterProbe:
        from chalicelib.adapters.runtime.probe import RuntimeProbe

        def runtime_for(cluster: Cluster) -> RuntimePort | None:
            if self._is_local_cluster(cluster.api):
                return None  # the local runtime runs in this process
            return self._micro(cluster.api, probe=True)

        return RuntimeProbe(runtime_for)

    @cached_property
    def outbox_relay(self) -> OutboxRelayService:
        from chalicelib.domain.services.outbox_relay import OutboxRelayService

        return OutboxRelayService(self.outbox, self.event_bus)

    @cached_property
    def auth(self) -> AuthService:
        from chalicelib.domain.services.auth import AuthService

        s = self.stores
        return AuthService(
            s.tokens,
            s.members,
            s.namespaces,
            s.windows,
            self.clock,
            self.settings.platform_admins,
            ingest_tokens=s.ingest_tokens,
        )

    @cached_property
    def login(self) -> LoginService:
        from chalicelib.domain.services.login import LoginService

        return LoginService(
            self.github_oauth, self.github, self.stores.accounts, self.stores.windows, self.auth, self.clock
        )

    @cached_property
    def audit(self) -> AuditService:
        from chalicelib.domain.services.audit import AuditService

        return AuditService(self.stores.audit, self.clock)

    @cached_property
    def runtime_accounts(self) -> RuntimeAccountService:
        from chalicelib.domain.services.runtime_accounts import RuntimeAccountService

        return RuntimeAccountService(
            self.stores.runtime_accounts, self.runtime_auth_of_namespace, self.encryptor, self.clock
        )

    @cached_property
    def membership(self) -> MembershipService:
        from chalicelib.domain.services.membership import MembershipService

        s = self.stores
        return MembershipService(self.github, s.members, s.namespaces, s.audit, self.clock, self.runtime_accounts)

    @cached_property
    def namespaces(self) -> NamespaceService:
        from chalicelib.domain.services.namespaces import NamespaceService

        s = self.stores
        return NamespaceService(
            s.namespaces,
            s.members,
            s.placement,
            self.runtime_accounts,
            self.regions,
            self.github,
            self.billing,
            self.runtime_for,
            self.encryptor,
            self.workflows,
            self.membership,
            self.clock,
            plans=self.catalog.quotas(),
            last_close=lambda ns_id: self.metering_run.close_namespace(ns_id, self.clock.now()),
        )

    # ------------------------------------------------------------------ metering

    def runtime_usage_of(self, ns: Namespace) -> RuntimeUsagePort | None:
        """What the namespace's runtime records of usage: the local runtime's instance records and
        request counters. A real cluster's side posts its usage through the ingestion API instead
        (``MicroRuntime`` cannot tell: see ``RuntimeUsagePort``)."""
        if self.settings.stage != "local" or ns.cluster_id is None:
            return None
        runtime = self.runtime_for(self.stores.placement.proxy_address(ns.region, ns.cluster_id))
        from chalicelib.adapters.runtime.local import LocalRuntime

        return runtime if isinstance(runtime, LocalRuntime) else None

    @cached_property
    def metering_run(self) -> MeteringService:
        """The metering run of one namespace: the hourly consumer's, and offboarding's last close."""
        from chalicelib.domain.services.metering_run import MeteringService

        s = self.stores
        return MeteringService(
            self.usage_ledger,
            self.ingestion.ingest_internal,
            self.billing,
            self.catalog,
            s.namespaces,
            s.members,
            self.runtime_usage_of,
            self.clock,
            rate=lambda ns_id, now: self.budgets.evaluate(ns_id, now),
        )

    @cached_property
    def metering_fan_out(self) -> MeteringFanOut:
        from chalicelib.domain.services.metering_run import MeteringFanOut

        return MeteringFanOut(self.stores.namespaces, self.queues)

    @cached_property
    def usage_ledger(self) -> DynamoUsageLedger:
        """The usage ledger (claims, buckets, rollups, the unreported index, the collectors' cursor)."""
        self.bind()
        from chalicelib.adapters.dynamodb.usage import DynamoUsageLedger

        return DynamoUsageLedger()

    @cached_property
    def ingestion(self) -> IngestionService:
        """Usage ingestion: the API's ``ingest`` and the metering run's ``ingest_internal``."""
        self.bind()
        from chalicelib.adapters.dynamodb.usage import DynamoNamespacePlacements
        from chalicelib.domain.services.ingestion import IngestionService

        return IngestionService(self.usage_ledger, self.catalog, DynamoNamespacePlacements(), self.clock)

    @cached_property
    def usage(self) -> UsageService:
        from chalicelib.domain.services.usage import UsageService

        return UsageService(self.usage_ledger, self.catalog, self.clock)

    @cached_property
    def ingest_tokens(self) -> IngestTokenService:
        from chalicelib.domain.services.ingestion import IngestTokenService

        return IngestTokenService(self.stores.ingest_tokens, self.regions, self.clock)

    @cached_property
    def rating(self) -> RatingService:
        from chalicelib.domain.rating import RatingService

        return RatingService(self.usage_ledger, self.catalog)

    @cached_property
    def budgets(self) -> BudgetService:
        """Budgets: the deploy check (one read), the billing routes, and ``evaluate`` for the metering run."""
        self.bind()
        from chalicelib.adapters.dynamodb.budgets import DynamoBudgetStore
        from chalicelib.domain.services.budgets import BudgetService

        return BudgetService(DynamoBudgetStore(), self.rating, self.clock, self.catalog.currency)

    @cached_property
    def notifiers(self) -> dict[str, NotifierPort]:
        """One notifier per channel: email through SES (and, locally, an .eml copy of each), Slack
        through incoming webhooks, on the outbound rules (the local stage may post to loopback)."""
        from chalicelib.adapters.notify.outbound import OutboundPolicy
        from chalicelib.adapters.notify.ses import SesEmailNotifier
        from chalicelib.adapters.notify.slack import SlackWebhookNotifier

        mailbox = None
        if self.settings.mail_dir:
            from chalicelib.adapters.notify.eml import EmlMailbox

            mailbox = EmlMailbox(Path(self.settings.mail_dir), self.clock)
        local = self.settings.stage == "local"
        from chalicelib.adapters.notify.sns import SnsSmsNotifier
        from chalicelib.adapters.notify.webhook import SignedWebhookNotifier
        from chalicelib.domain.alerts import SLACK_HOST

        policy = OutboundPolicy.local() if local else OutboundPolicy()
        return {
            "email": SesEmailNotifier(self.settings.email_from, mailbox=mailbox, clock=self.clock, **self._aws()),
            "slack": SlackWebhookNotifier(policy, hosts=() if local else (SLACK_HOST,)),
            "sms": SnsSmsNotifier(**self._aws()),
            # signed with the real time: receivers check webhook-timestamp against their own clocks
            "webhook": SignedWebhookNotifier(policy),
        }

    @cached_property
    def delivery(self) -> DeliveryService:
        """The one way to send an email or a Slack message: claim, send once, record (reports, alerts)."""
        self.bind()
        from chalicelib.adapters.dynamodb.deliveries import DynamoDeliveryLog
        from chalicelib.domain.services.delivery import DeliveryService

        return DeliveryService(DynamoDeliveryLog(), self.notifiers, self.clock)

    @cached_property
    def reports(self) -> ReportService:
        """Scheduled usage reports: schedules, the due index's fan-out, the report workflow's steps."""
        self.bind()
        from chalicelib.adapters.aws.blobs import S3Blobs
        from chalicelib.adapters.dynamodb.reports import DynamoReportStore, DynamoScheduleStore
        from chalicelib.domain.services.reports import ReportService
        from chalicelib.logs import register_secret

        def encrypt(plaintext: str, ns: str) -> str:
            return self.encryptor.encrypt(plaintext, {"namespace": ns, "purpose": "report-channel"})

        def decrypt(ciphertext: str, ns: str) -> str:
            plaintext = self.encryptor.decrypt(ciphertext, {"namespace": ns, "purpose": "report-channel"})
            register_secret(plaintext)  # a webhook URL is a credential: never in a log line
            return plaintext

        slack = self.notifiers["slack"]
        return ReportService(
            DynamoScheduleStore(encrypt, decrypt),
            DynamoReportStore(),
            S3Blobs("reports", **self._aws()),
            self.usage,
            self.rating,
            self.budgets,
            self.catalog,
            self.stores.namespaces,
            self.owner_emails,
            self.delivery,
            self.queues,
            self.workflows,
            self.clock,
            dashboard_url=self.settings.public_url,
            encrypt=encrypt,
            decrypt=decrypt,
            check_webhook=slack.check,  # type: ignore[attr-defined]
        )

    def owner_emails(self, ns: str) -> list[tuple[str, str | None]]:
        """The namespace's owners and their email: the one the platform kept at their login, else their
        public GitHub email; None when they have neither (the report says it skipped them)."""
        out: list[tuple[str, str | None]] = []
        for member in self.stores.members.list(ns):
            if member.role != "owner":
                continue
            account = self.stores.accounts.get(member.uid)
            email = account.email if account is not None else None
            if not email:
                try:
                    user = self.github.get_user_by_login(member.login)
                except Exception:  # GitHub down: that owner is skipped this time, and said so
                    user = None
                email = user.email if user is not None else None
            out.append((member.login, email))
        return out

    @cached_property
    def alerts(self) -> AlertService:
        """Alert channels and rules (the API) and the notifier's pipeline (functions/alerts)."""
        self.bind()
        from chalicelib.adapters.dynamodb.alerts import DynamoAlertStore
        from chalicelib.adapters.notify.outbound import OutboundPolicy
        from chalicelib.domain.services.alerts import AlertService, AlertSettings

        local = self.settings.stage == "local"
        policy = OutboundPolicy.local() if local else OutboundPolicy()

        def renderer() -> Any:
            from chalicelib.adapters.notify.alert_messages import JinjaAlertRenderer

            return JinjaAlertRenderer()

        return AlertService(
            DynamoAlertStore(),
            self.stores.members,
            self.stores.accounts,
            self.encryptor,
            self.queues,
            self.delivery,
            renderer,
            policy.check_url,
            self.clock,
            AlertSettings(local=local, public_url=self.settings.public_url, platform_emails=self.settings.alert_emails),
        )

    @cached_property
    def github_webhooks(self) -> GitHubWebhookService:
        from chalicelib.domain.services.github_webhooks import GitHubWebhookService

        return GitHubWebhookService(
            lambda: self.secret("GITHUB_WEBHOOK_SECRET"), self.stores.deliveries, self.queues, self.clock
        )

    @cached_property
    def github_events(self) -> GitHubEventProcessor:
        from chalicelib.domain.services.github_webhooks import GitHubEventProcessor

        return GitHubEventProcessor(self.membership, self.stores.namespaces, self.audit, self.clock, self.gitops)

    # ------------------------------------------------------------------ billing through Stripe

    @cached_property
    def billing_state(self) -> DynamoBillingStateStore:
        """What Stripe's webhooks told of each namespace's subscription and invoices."""
        self.bind()
        from chalicelib.adapters.dynamodb.billing import DynamoBillingStateStore

        return DynamoBillingStateStore()

    @cached_property
    def stripe_webhooks(self) -> StripeWebhookService:
        from chalicelib.adapters.stripe_billing import StripeWebhookVerifier
        from chalicelib.domain.services.stripe_events import StripeWebhookService

        verifier = StripeWebhookVerifier(self.secrets.get("STRIPE_WEBHOOK_SECRET", ""), tolerance=300)
        return StripeWebhookService(verifier, self.stores.deliveries, self.queues, self.clock)

    @cached_property
    def stripe_events(self) -> StripeEventProcessor:
        from chalicelib.domain.services.stripe_events import StripeEventProcessor

        return StripeEventProcessor(self.stores.namespaces, self.billing_state, self.clock)

    @cached_property
    def billing_account(self) -> BillingAccountService:
        from chalicelib.domain.services.billing_account import BillingAccountService

        return BillingAccountService(self.stores.namespaces, self.billing, self.rating, self.billing_state, self.clock)

    @cached_property
    def reconciliation(self) -> ReconciliationService:
        """The ledger against Stripe's meter event summaries (the daily schedule and the API)."""
        from chalicelib.domain.services.reconciliation import ReconciliationService

        state = self.billing_state
        return ReconciliationService(
            self.usage_ledger,
            self.billing,
            self.catalog,
            self.stores.namespaces,
            self.clock,
            claim=lambda ns, day, events: state.claim_reconciliation(ns, day, events, self.clock.now()),
        )


def default_clock(settings: Settings) -> Clock:
    """The system clock; in the local stage, moved by the offset in its clock file (``make run``)."""
    if settings.stage == "local" and settings.clock_file:
        from chalicelib.adapters.local_clock import FileOffsetClock

        return FileOffsetClock(Path(settings.clock_file))
    return SystemClock()


_container: Container | None = None
_container_lock = threading.Lock()


def _completed(value: dict[str, str]) -> dict[str, str]:
    """The secrets with the App's key read from its file when one is named; each masked in the logs."""
    if value.get("GITHUB_APP_PRIVATE_KEY_FILE") or os.environ.get("GITHUB_APP_PRIVATE_KEY_FILE"):
        path = value.get("GITHUB_APP_PRIVATE_KEY_FILE") or os.environ["GITHUB_APP_PRIVATE_KEY_FILE"]
        value["GITHUB_APP_PRIVATE_KEY"] = Path(path).read_text()
    from chalicelib.logs import register_secret

    for secret in value.values():
        register_secret(secret)
    return value


def get_container() -> Container:
    global _container
    with _container_lock:
        if _container is None:
            _container = Container(Settings.from_env())
        return _container


def set_container(container: Container | None) -> None:
    global _container
    with _container_lock:
        _container = container
