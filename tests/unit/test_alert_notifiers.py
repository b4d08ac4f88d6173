"""The alert notifiers without a network: webhooks signed as Standard Webhooks says (verified by the
``standardwebhooks`` package, both secrets during a rotation), outbound addresses refused where they are
used (a name resolving to a private, loopback or metadata address is never connected to; Slack only on
its host outside the local stage), SNS texts and how their failures are classified, and messages that
escape what they quote."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.domain.errors import DeliveryOutcomeUnknownError, DeliveryRefusedError, DependencyUnavailableError
from chalicelib.domain.ports import Notification

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the specification's example secret
OTHER = "whsec_" + "b3RoZXItc2VjcmV0LW9mLXRoaXJ0eS10d28tYnl0ZXMh"


def test_a_signature_verifies_with_standardwebhooks_and_both_secrets_sign_during_a_rotation() -> None:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    from chalicelib.adapters.notify.webhook import message_id, sign

    body = json.dumps({"type": "alert.fired", "data": {"total": 1}})
    at = datetime.now(UTC).replace(microsecond=0)
    msg_id = message_id("alert:acme-backend:01JD:01JE")
    assert msg_id == message_id("alert:acme-backend:01JD:01JE") and msg_id.startswith("msg_")
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": sign((SECRET, OTHER), msg_id, at, body),
    }
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(SECRET).verify(body, headers) == json.loads(body)
    assert Webhook(OTHER).verify(body, headers) == json.loads(body)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace("1", "2"), headers)


def test_the_specifications_example_signature() -> None:
    """standard-webhooks' own test vector (spec/standard-webhooks.md, "Signature scheme")."""
    from chalicelib.adapters.notify.webhook import sign

    at = datetime.fromtimestamp(1614265330, UTC)
    body = '{"test": 2432232314}'
    assert (
        sign((SECRET,), "msg_p5jXN8AQM9LWM0D4loKWxJek", at, body) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def webhook(target: str, local: bool = False) -> Any:
    from chalicelib.adapters.notify.outbound import OutboundPolicy
    from chalicelib.adapters.notify.webhook import SignedWebhookNotifier

    notifier = SignedWebhookNotifier(OutboundPolicy.local() if local else OutboundPolicy())
    return notifier.send(Notification("webhook", target, "s", "{}", key="k", signing_secrets=(SECRET,)))


@pytest.mark.parametrize("address", ["10.1.2.3", "127.0.0.1", "169.254.169.254", "::ffff:127.0.0.1", "fd00:ec2::254"])
def test_a_name_resolving_to_a_private_address_is_refused_at_use_and_never_connected(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    # the unit tier's socket guard fails the test on any connection: none is made
    with pytest.raises(DeliveryRefusedError) as e:
        webhook("https://hooks.example.com/alerts")
    assert "not a public address" in e.value.message and e.value.details["provider_error"] == "address_refused"


def test_http_and_literal_private_addresses_are_refused_outside_the_local_stage() -> None:
    for target in ("http://hooks.example.com/a", "https://192.168.1.1/a", "https://localhost/a"):
        with pytest.raises(DeliveryRefusedError):
            webhook(target)


def test_without_a_secret_nothing_is_sent() -> None:
    from chalicelib.adapters.notify.webhook import SignedWebhookNotifier

    with pytest.raises(DeliveryRefusedError):
        SignedWebhookNotifier().send(Notification("webhook", "https://hooks.example.com/a", "s", "{}", key="k"))


def test_slack_is_held_to_its_host_outside_the_local_stage() -> None:
    from chalicelib.adapters.notify.slack import SlackWebhookNotifier

    notifier = SlackWebhookNotifier(hosts=("hooks.slack.com",))
    with pytest.raises(DeliveryRefusedError) as e:
        notifier.send(Notification("slack", "https://hooks.example.com/services/T/B/X", "s", "t"))
    assert "not Slack's webhook host" in e.value.message


# --------------------------------------------------------------------------- SNS


def test_a_text_goes_to_sns_as_transactional_and_is_kept_short(aws: Any) -> None:
    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns import sns_backends

    from chalicelib.adapters.notify.sns import MAX_SMS, SnsSmsNotifier

    notifier = SnsSmsNotifier(boto3.client("sns", region_name="us-east-1"))
    message_id = notifier.send(Notification("sms", "+14155550100", "", "x" * 1000))
    number, text = sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sms_messages[message_id]
    assert number == "+14155550100" and len(text) == MAX_SMS and text.endswith("…")
    with pytest.raises(DeliveryRefusedError):
        notifier.send(Notification("sms", "4155550100", "", "x"))


class Raising:
    """An SNS client whose Publish raises what it is given."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def publish(self, **kwargs: Any) -> Any:
        raise self.error


def client_error(code: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": code}}, "Publish")


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (client_error("Throttling"), DependencyUnavailableError),
        (client_error("InternalError"), DependencyUnavailableError),
        (client_error("OptedOut"), DeliveryRefusedError),
        (client_error("InvalidParameter"), DeliveryRefusedError),
        ("connect", DependencyUnavailableError),
        ("read", DeliveryOutcomeUnknownError),
    ],
)
def test_sns_failures_are_told_apart_by_what_is_known_of_the_outcome(error: Any, outcome: type[Exception]) -> None:
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    from chalicelib.adapters.notify.sns import SnsSmsNotifier

    if error == "connect":
        error = ConnectTimeoutError(endpoint_url="https://sns.us-east-1.amazonaws.com")
    elif error == "read":
        error = ReadTimeoutError(endpoint_url="https://sns.us-east-1.amazonaws.com")
    with pytest.raises(outcome):
        SnsSmsNotifier(Raising(error)).send(Notification("sms", "+14155550100", "", "hello"))


# --------------------------------------------------------------------------- messages


def test_messages_escape_what_they_quote() -> None:
    from chalicelib.adapters.notify.alert_messages import JinjaAlertRenderer
    from chalicelib.domain.alerts import Alert, describe
    from chalicelib.domain.services.alerts import AlertMessage, ListedAlert

    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    data = {"service": "hello", "deployment_id": "d1", "reason": "<script>alert(1)</script> & <!here>"}
    alert = Alert("acme-backend", "01JD", "failures", "deployment.failed", "critical", now, data, "f", "g", now)
    described = describe("deployment.failed", "acme-backend", data, "https://api.example.com")
    message = AlertMessage(
        "acme-backend", "failures", "deployment.failed", "critical", "g", (ListedAlert(alert, described),), 1
    )
    renderer = JinjaAlertRenderer()
    email = renderer.render("email", message)
    assert email.html is not None and "<script>" not in email.html and "&lt;script&gt;" in email.html
    assert "<script>" in email.text  # the plain-text part says it as it is
    slack = renderer.render("slack", message)
    section = json.dumps(slack.blocks)
    assert "<!here>" not in section and "&lt;!here&gt;" in section
    assert (
        "<https://api.example.com/v1/namespaces/acme-backend/services/hello/deployments/d1|View the deployment>"
        in section
    )
    sms = renderer.render("sms", message)
    assert sms.text.startswith("[acme-backend] Deploy of hello failed in acme-backend https://")
    body = json.loads(renderer.render("webhook", message).text)
    assert body["type"] == "alert.fired" and body["data"]["alerts"][0]["data"]["reason"].startswith("<script>")
