"""Alerts: the events they fire on, channels, rules, alerts and their groups, and what an alert says.

- **Events.** ``ALERTABLE`` lists every event type the notifier consumes (the bus rule ``alerts`` in
  infra/resources.json routes exactly these; a test keeps the two equal), and for each the data fields
  that make two events *the same alert* (a failed deployment is the same alert however often its
  event arrives; a budget threshold once per threshold and period). Types another issue will produce
  are in ``COMING`` with that issue; a test checks that every other type has a producer in the code.
- **Channels** (``email``, ``sms``, ``slack``, ``webhook``) belong to a namespace. The built-in channel
  ``owners`` is email to the namespace's owners (the addresses of their GitHub accounts).
- **Rules** say which event types go to which channels, with a severity, a repeat interval (the same
  alert within it is delivered once: default 4 hours) and a grouping window (alerts of one kind within
  it go out as one message: default 30 s). A namespace without rules of its own has ``DEFAULT_RULES``:
  failures and billing events to the owners by email.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from chalicelib.domain.errors import ValidationError

ChannelKind = Literal["email", "sms", "slack", "webhook"]
CHANNEL_KINDS: tuple[ChannelKind, ...] = ("email", "sms", "slack", "webhook")
Severity = Literal["critical", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")

OWNERS = "owners"  # the built-in channel: email to the namespace's owners
PLATFORM = "_platform"  # where platform-wide events (namespace null) are kept: no namespace is named so
ADMINS = "admins"  # the built-in channel of platform-wide events: PLATFORM_ALERT_EMAILS

REPEAT_INTERVAL = 4 * 3600  # seconds: Alertmanager's default repeat_interval
GROUP_WINDOW = 30  # seconds: Alertmanager's default group_wait
MAX_GROUP_WINDOW = 900  # SQS's longest DelaySeconds: the flush is one delayed message
MIN_REPEAT_INTERVAL = 60
MAX_REPEAT_INTERVAL = 7 * 86400
MAX_RULES = 20
MAX_CHANNELS_PER_RULE = 10
MAX_CHANNELS = 50
MAX_NAME = 100
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
CHANNEL_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")  # a ULID (the built-ins apart)
CHANNEL_PATH = re.compile(r"^(?:[0-9A-HJKMNP-TV-Z]{26}|owners)$")  # what a path may name
# Messages per hour a channel sends at most (each attempt counts); a channel may set its own.
DEFAULT_RATE_LIMIT: dict[ChannelKind, int] = {"email": 30, "sms": 10, "slack": 60, "webhook": 120}
MAX_RATE_LIMIT = 3600
RETENTION_DAYS = 30  # alerts and their groups are kept this long (``expires_at``, retention only)
MAX_LISTED = 20  # alerts a grouped message lists; the rest are counted


@dataclass(frozen=True)
class Alertable:
    """An event type the notifier consumes: the fields naming *the same alert*, and who makes it."""

    same_alert: tuple[str, ...]


# Every event type the notifier consumes. Keep infra/resources.json's ``alerts`` rule equal (a test does).
ALERTABLE: dict[str, Alertable] = {
    "deployment.failed": Alertable(("deployment_id",)),
    "deployment.rolled_back": Alertable(("deployment_id",)),
    "deployment.succeeded": Alertable(("deployment_id",)),
    "onboarding.failed": Alertable(()),
    "namespace.created": Alertable(()),
    "namespace.deleted": Alertable(()),
    "billing.threshold_crossed": Alertable(("period", "threshold")),
    "billing.suspended": Alertable(("period",)),
    "billing.resumed": Alertable(("period", "reason")),
    "billing.payment_failed": Alertable(("invoice_id",)),
    "billing.reconciliation_mismatch": Alertable(("period",)),
    "region.unhealthy": Alertable(("region",)),
}
# Consumed types no code produces yet, with the issue that brings their producer. A test fails when one
# of them gets a producer (remove it from here) or when a consumed type has neither.
# (Stripe's ``invoice.payment_failed`` is not a platform event: the Stripe consumer turns it into
# ``billing.payment_failed``.)
COMING: dict[str, str] = {}
# The version of each consumed type the notifier reads (a type not in EVENT_TYPES yet is version 1).
PLATFORM_WIDE = ("region.unhealthy",)  # namespace null: to the platform admins' addresses

FAILURES = ("deployment.failed", "deployment.rolled_back", "onboarding.failed")
BILLING = (
    "billing.threshold_crossed",
    "billing.suspended",
    "billing.resumed",
    "billing.payment_failed",
    "billing.reconciliation_mismatch",
)


def expand(patterns: Sequence[str]) -> tuple[str, ...]:
    """The consumed event types a rule's patterns name: exact types, or ``prefix.*``."""
    out: list[str] = []
    for p in patterns:
        for t in ALERTABLE:
            if (p == t or (p.endswith(".*") and t.startswith(p[:-1]))) and t not in out:
                out.append(t)
    return tuple(out)


# --------------------------------------------------------------------------- channels


@dataclass(frozen=True)
class WebhookSecret:
    """A signing secret of a webhook channel, encrypted; ``expires_at`` is set on the previous one
    after a rotation (both sign until then, as Standard Webhooks' rotation has it)."""

    ciphertext: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Channel:
    id: str
    namespace: str
    kind: ChannelKind
    name: str
    # email: the address; sms: the E.164 number; webhook: the URL; slack: the URL encrypted (its path is
    # its credential) with ``display`` the masked form.
    target: str
    display: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    enabled: bool = True
    rate_limit: int = 30
    secrets: tuple[WebhookSecret, ...] = ()
    builtin: bool = False


def builtin_owners(namespace: str, now: datetime) -> Channel:
    return Channel(
        id=OWNERS,
        namespace=namespace,
        kind="email",
        name="the namespace's owners",
        target="",
        display="the owners' GitHub email addresses",
        created_at=now,
        created_by="platform",
        updated_at=now,
        rate_limit=DEFAULT_RATE_LIMIT["email"],
        builtin=True,
    )


def field_error(field_name: str, message: str) -> ValidationError:
    return ValidationError(f"{field_name}: {message}", {"fields": [{"field": field_name, "message": message}]})


def check_name(name: str, field_name: str = "name") -> str:
    clean = name.strip()
    if not clean or len(clean) > MAX_NAME or any(ord(c) < 0x20 for c in clean):
        raise field_error(field_name, f"1 to {MAX_NAME} printable characters")
    return clean


def check_email(address: str, field_name: str = "target") -> str:
    """An email address as email-validator reads it, normalised: syntax only (no DNS on the request
    path), ASCII only (what SES sends to without SMTPUTF8)."""
    from email_validator import EmailNotValidError, validate_email  # on first use: cold starts

    try:
        checked = validate_email(address, check_deliverability=False, allow_smtputf8=False)
        return str(checked.ascii_email or checked.normalized)
    except EmailNotValidError as e:
        raise field_error(field_name, f"not a valid email address: {e}") from e


def check_phone(number: str, field_name: str = "target") -> str:
    """An E.164 number (``+`` and the country code) that phonenumbers knows as valid, normalised."""
    import phonenumbers  # on first use: cold starts

    if not number.strip().startswith("+"):
        raise field_error(field_name, "an E.164 phone number, with + and the country code (+14155550100)")
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as e:
        raise field_error(field_name, f"not a phone number: {e}") from e
    if not phonenumbers.is_valid_number(parsed):
        raise field_error(field_name, "not a valid phone number for its country")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


SLACK_HOST = "hooks.slack.com"


def check_slack_url(url: str, local: bool, check_url: Callable[[str], Any], field_name: str = "target") -> str:
    """A Slack incoming webhook: ``https://hooks.slack.com/services/...`` (in the local stage also the
    Slack stand-in's ``http`` address on loopback)."""
    from urllib.parse import urlsplit

    try:
        check_url(url)
    except ValueError as e:
        raise field_error(field_name, str(e)) from e
    parts = urlsplit(url)
    if not local and (parts.hostname or "").lower() != SLACK_HOST:
        raise field_error(field_name, f"a Slack incoming webhook address (https://{SLACK_HOST}/services/...)")
    if not parts.path.startswith("/services/") or parts.path.count("/") < 4:
        raise field_error(field_name, "a Slack incoming webhook address: /services/T.../B.../...")
    return url


def check_webhook_url(url: str, check_url: Callable[[str], Any], field_name: str = "target") -> str:
    try:
        check_url(url)
    except ValueError as e:
        raise field_error(field_name, str(e)) from e
    return url


def mask_slack(url: str) -> str:
    """``https://hooks.slack.com/services/T0…/***``: the scheme, host and team; the rest is the credential."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    segments = parts.path.split("/")
    team = segments[2] if len(segments) > 2 else ""
    return f"{parts.scheme}://{parts.netloc}/services/{team}/***"


def check_rate_limit(value: int, field_name: str = "rate_limit") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RATE_LIMIT:
        raise field_error(field_name, f"messages per hour, a whole number from 1 to {MAX_RATE_LIMIT}")
    return value


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    id: str
    events: tuple[str, ...]  # exact types or ``prefix.*`` patterns
    channels: tuple[str, ...]
    severity: Severity = "warning"
    repeat_interval: int = REPEAT_INTERVAL
    group_window: int = GROUP_WINDOW
    enabled: bool = True

    def matches(self, event_type: str) -> bool:
        return self.enabled and event_type in expand(self.events)


@dataclass(frozen=True)
class RuleSet:
    namespace: str
    rules: tuple[Rule, ...]
    version: int = 0
    updated_at: datetime | None = None
    updated_by: str | None = None

    @property
    def default(self) -> bool:
        return self.version == 0


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("failures", FAILURES, (OWNERS,), "critical"),
    Rule("billing", BILLING, (OWNERS,), "warning"),
)
PLATFORM_RULES: tuple[Rule, ...] = (Rule("platform", PLATFORM_WIDE, (ADMINS,), "critical"),)


def check_rules(rules: Sequence[Mapping[str, Any]], channel_ids: set[str]) -> tuple[Rule, ...]:
    """The rules of a ``PUT``, each field checked; 422 naming every failing field (``rules.0.channels.1``)."""
    fields: list[dict[str, str]] = []

    def bad(name: str, message: str) -> None:
        fields.append({"field": name, "message": message})

    if len(rules) > MAX_RULES:
        bad("rules", f"at most {MAX_RULES} rules")
    out: list[Rule] = []
    seen: set[str] = set()
    for i, r in enumerate(rules):
        at = f"rules.{i}"
        rule_id = str(r.get("id", ""))
        if not RULE_ID.match(rule_id):
            bad(f"{at}.id", "1 to 40 of a-z, 0-9 and -, starting with a letter or digit")
        elif rule_id in seen:
            bad(f"{at}.id", "each rule id once")
        seen.add(rule_id)
        events = list(r.get("events") or [])
        if not events:
            bad(f"{at}.events", "at least one event type")
        for j, pattern in enumerate(events):
            if not expand([pattern]):
                bad(
                    f"{at}.events.{j}",
                    f"not an event type alerts are sent for: {pattern!r} (see GET .../alerts/events)",
                )
        channels = list(r.get("channels") or [])
        if not channels:
            bad(f"{at}.channels", "at least one channel")
        if len(channels) > MAX_CHANNELS_PER_RULE:
            bad(f"{at}.channels", f"at most {MAX_CHANNELS_PER_RULE} channels")
        if len(set(channels)) != len(channels):
            bad(f"{at}.channels", "each channel once")
        for j, channel in enumerate(channels):
            if channel != OWNERS and channel not in channel_ids:
                bad(f"{at}.channels.{j}", f"no channel {channel!r} in this namespace")
        repeat = r.get("repeat_interval", REPEAT_INTERVAL)
        if not MIN_REPEAT_INTERVAL <= repeat <= MAX_REPEAT_INTERVAL:
            bad(f"{at}.repeat_interval", f"seconds, from {MIN_REPEAT_INTERVAL} to {MAX_REPEAT_INTERVAL}")
        window = r.get("group_window", GROUP_WINDOW)
        if not 0 <= window <= MAX_GROUP_WINDOW:
            bad(f"{at}.group_window", f"seconds, from 0 to {MAX_GROUP_WINDOW}")
        severity = r.get("severity", "warning")
        if severity not in SEVERITIES:
            bad(f"{at}.severity", f"one of {', '.join(SEVERITIES)}")
        out.append(
            Rule(
                id=rule_id,
                events=tuple(dict.fromkeys(events)),
                channels=tuple(channels),
                severity=severity,
                repeat_interval=int(repeat),
                group_window=int(window),
                enabled=bool(r.get("enabled", True)),
            )
        )
    if fields:
        raise ValidationError("the rules are not valid", {"fields": fields})
    return tuple(out)


# --------------------------------------------------------------------------- alerts and groups


@dataclass(frozen=True)
class Alert:
    """One rule matched by one event. ``id`` is ``<event id>:<rule id>``: a redelivered event makes the
    same alert again, which exists already."""

    namespace: str
    event_id: str
    rule_id: str
    event_type: str
    severity: Severity
    occurred_at: datetime
    data: dict[str, Any]
    fingerprint: str
    group_id: str
    created_at: datetime
    occurrences: int = 1
    last_seen_at: datetime | None = None

    @property
    def id(self) -> str:
        return alert_id(self.event_id, self.rule_id)


def alert_id(event_id: str, rule_id: str) -> str:
    return f"{event_id}:{rule_id}"


def fingerprint(event_type: str, namespace: str | None, data: Mapping[str, Any], event_id: str) -> str:
    """What makes two events the same alert: the type and its ``same_alert`` fields (all present), else
    the event itself (every event its own alert)."""
    spec = ALERTABLE.get(event_type)
    if spec is None or any(data.get(f) in (None, "") for f in spec.same_alert):
        basis = f"{event_type}|event|{event_id}"
    else:
        basis = "|".join([event_type, namespace or "", *(f"{f}={data[f]}" for f in spec.same_alert)])
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class AlertGroup:
    """Alerts of one rule and one event type, gathered for ``window`` seconds, then sent as one message
    per channel. ``status``: ``open`` while it gathers, ``flushed`` once its deliveries exist."""

    id: str
    namespace: str
    rule_id: str
    event_type: str
    severity: Severity
    channel_ids: tuple[str, ...]
    alert_ids: tuple[str, ...]
    opened_at: datetime
    flush_at: datetime
    status: Literal["open", "flushed"] = "open"
    flushed_at: datetime | None = None
    # channel id -> why nothing was sent to it (rate limit, channel gone); the delivery log has the rest
    skipped: dict[str, str] = field(default_factory=dict)
    # channel id -> the delivery key(s) of its messages (the owners channel: one per owner)
    deliveries: dict[str, list[str]] = field(default_factory=dict)


# --------------------------------------------------------------------------- what an alert says


@dataclass(frozen=True)
class Described:
    """An alert for people: a title, detail lines, and a link to the page concerned."""

    title: str
    details: tuple[str, ...]
    link: str | None
    link_text: str = "Open"


def money(cents: Any, currency: Any = "usd") -> str:
    if not isinstance(cents, int) or isinstance(cents, bool):
        return str(cents)
    amount = f"{abs(cents) // 100:,}.{abs(cents) % 100:02d}"
    sign = "-" if cents < 0 else ""
    return f"{sign}${amount}" if str(currency).lower() == "usd" else f"{sign}{amount} {str(currency).upper()}"


def describe(event_type: str, namespace: str | None, data: Mapping[str, Any], public_url: str) -> Described:
    """What happened, to which service or namespace, and where to look."""
    ns = namespace or "the platform"
    api = public_url.rstrip("/")
    svc = str(data.get("service") or "?")
    dep = data.get("deployment_id")
    deployment = f"{api}/v1/namespaces/{namespace}/services/{svc}/deployments/{dep}" if dep and namespace else None
    billing = f"{api}/v1/namespaces/{namespace}/billing" if namespace else None
    reason = str(data.get("reason") or "")
    if event_type == "deployment.failed":
        return Described(
            f"Deploy of {svc} failed in {ns}",
            tuple(x for x in (f"Reason: {reason}" if reason else "", f"Deployment: {dep}") if x),
            deployment,
            "View the deployment",
        )
    if event_type == "deployment.rolled_back":
        to = data.get("to") or data.get("rolled_back_to")
        return Described(
            f"{svc} was rolled back in {ns}",
            (f"Deployment {dep} was replaced by {to or 'the last good deployment'}",),
            deployment,
            "View the deployment",
        )
    if event_type == "deployment.succeeded":
        commit = str(data.get("commit") or "")[:12]
        return Described(
            f"{svc} deployed in {ns}", (f"Commit {commit}" if commit else f"Deployment {dep}",), deployment, "View"
        )
    if event_type == "onboarding.failed":
        return Described(
            f"Creating the namespace {ns} failed",
            tuple(x for x in (f"Step: {data.get('step')}", f"Reason: {reason}" if reason else "") if x),
            f"{api}/v1/namespaces/{namespace}" if namespace else None,
            "View the namespace",
        )
    if event_type == "namespace.created":
        return Described(
            f"The namespace {ns} is ready",
            (f"Region {data.get('region')}, plan {data.get('plan')}",),
            f"{api}/v1/namespaces/{namespace}",
            "View the namespace",
        )
    if event_type == "namespace.deleted":
        return Described(f"The namespace {ns} was deleted", (), None)
    currency = data.get("currency", "usd")
    if event_type == "billing.threshold_crossed":
        return Described(
            f"{ns} reached {data.get('threshold')}% of its monthly budget",
            (
                f"Spent {money(data.get('spent'), currency)} of {money(data.get('monthly_limit'), currency)} "
                f"in {data.get('period')}",
            ),
            billing,
            "View billing",
        )
    if event_type == "billing.suspended":
        return Described(
            f"Deploys to {ns} are suspended: the budget's hard cap is spent",
            (
                f"Spent {money(data.get('spent'), currency)} of {money(data.get('monthly_limit'), currency)} "
                f"in {data.get('period')}. Running services keep running; raise the limit to deploy again.",
            ),
            billing,
            "View billing",
        )
    if event_type == "billing.resumed":
        return Described(
            f"Deploys to {ns} resumed",
            (f"Reason: {data.get('reason')} ({data.get('period')})",),
            billing,
            "View billing",
        )
    if event_type == "billing.payment_failed":
        amount = data.get("amount_due")
        link = data.get("hosted_invoice_url") or billing
        return Described(
            f"A payment for {ns} failed",
            tuple(
                x
                for x in (
                    f"Invoice {data.get('invoice_id')}" if data.get("invoice_id") else "",
                    f"Amount due {money(amount, currency)}" if amount is not None else "",
                    f"Next attempt {data.get('next_attempt_at')}" if data.get("next_attempt_at") else "",
                )
                if x
            ),
            str(link) if link else None,
            "View the invoice",
        )
    if event_type == "billing.reconciliation_mismatch":
        return Described(
            f"Billing for {ns} does not match the usage ledger",
            tuple(f"{k}: {v}" for k, v in sorted(data.items()) if isinstance(v, str | int | float))[:6],
            billing,
            "View billing",
        )
    if event_type == "region.unhealthy":
        return Described(
            f"Region {data.get('region')} is unhealthy",
            tuple(x for x in (f"Reason: {reason}" if reason else "",) if x),
            f"{api}/v1/regions",
            "View regions",
        )
    return Described(f"{event_type} in {ns}", tuple(f"{k}: {v}" for k, v in sorted(data.items()))[:6], None)
