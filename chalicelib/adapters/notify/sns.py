"""The SMS side of the ``NotifierPort``: SNS ``Publish`` straight to a phone number (E.164).

As for SES (``ses.py``), botocore makes one attempt (its own retries would send a text twice after a
read timeout) and the outcome is classified (``NotifierPort``): no connection, a throttle or a 5xx ->
not sent (``DependencyUnavailableError``); SNS refusing the request (an invalid or opted-out number,
no permission, a spend limit reached) -> ``DeliveryRefusedError``; a read timeout or a connection
dropped after sending -> ``DeliveryOutcomeUnknownError``: never sent again blindly.

Messages are ``Transactional`` (SNS Developer Guide, "Publishing to a mobile phone": the
``AWS.SNS.SMS.SMSType`` attribute; transactional messages are delivered with the higher reliability).
A text longer than ``MAX_SMS`` is cut (SNS takes up to 1,600 characters, split into parts that each
cost a message): an alert's text says what happened and where to look, no more.
"""

from __future__ import annotations

import re
from typing import Any

from chalicelib.adapters.notify.aws_send import classified_send, one_attempt_client
from chalicelib.domain.errors import DeliveryRefusedError, ValidationError
from chalicelib.domain.ports import Notification

READ_TIMEOUT = 10
MAX_SMS = 320  # two parts of 160 GSM characters
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# SNS Publish errors meaning "this text will not be taken as it is" (SNS API Reference, Publish "Errors").
REFUSED = {
    "InvalidParameter",
    "InvalidParameterValue",
    "AuthorizationError",
    "EndpointDisabled",
    "OptedOut",
    "OptedOutException",
    "NotFound",
    "ValidationException",
    "KMSDisabled",
    "KMSInvalidState",
    "KMSNotFound",
    "KMSAccessDenied",
    "FilterPolicyLimitExceeded",
}


class SnsSmsNotifier:
    def __init__(self, client: Any = None, *, region: str | None = None, endpoint_url: str | None = None) -> None:
        self._client = client
        self._region = region
        self._endpoint_url = endpoint_url

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = one_attempt_client("sns", self._region, self._endpoint_url, READ_TIMEOUT)
        return self._client

    def describe(self, target: str) -> str:
        return target

    def send(self, notification: Notification) -> str:
        if notification.channel != "sms":
            raise ValidationError("the SNS notifier sends SMS only", {"channel": notification.channel})
        if not E164.match(notification.target):
            raise DeliveryRefusedError("not an E.164 phone number", {"provider_error": "bad_number"})
        text = notification.text if len(notification.text) <= MAX_SMS else notification.text[: MAX_SMS - 1] + "…"
        with classified_send(
            "SNS",
            REFUSED,
            refused="SNS refused the text",
            failed="the text could not be sent",
            unanswered="SNS did not answer after the text was sent",
        ):
            answer = self.client.publish(
                PhoneNumber=notification.target,
                Message=text,
                MessageAttributes={
                    "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
                },
            )
        return str(answer["MessageId"])
