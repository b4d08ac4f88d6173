"""The email side of the ``NotifierPort`` over SES v2: one raw MIME message per notification.

The message (``compose``): ``multipart/mixed`` holding ``multipart/alternative`` (the plain-text
part, then ``multipart/related`` with the HTML and its inline images, ``Content-ID`` referenced as
``cid:`` from the HTML), then the attachments. It is sent with ``SendEmail`` and ``Content.Raw``.

botocore retries a read timeout and a dropped connection by itself, which would send an email twice:
the client makes exactly one attempt (``total_max_attempts=1``), with short timeouts, and the outcome
is classified instead (``NotifierPort``): no connection or a throttle/5xx -> not sent
(``DependencyUnavailableError``); SES refusing the message (an unverified sender, a paused account,
a malformed message) -> ``DeliveryRefusedError``; a read timeout or a connection dropped after
sending -> ``DeliveryOutcomeUnknownError``.

``mailbox``: in the local stage every email SES accepted is also written as an ``.eml`` file
(``eml.py``), byte for byte what was sent.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, Any, cast

from chalicelib.adapters.notify.aws_send import classified_send, one_attempt_client
from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import DeliveryRefusedError, ValidationError
from chalicelib.domain.ports import Notification
from chalicelib.domain.services.delivery import valid_email

if TYPE_CHECKING:
    from chalicelib.adapters.notify.eml import EmlMailbox

READ_TIMEOUT = 20
# SES error codes meaning "this message will not be taken as it is" (SES v2 API reference, SendEmail "Errors").
REFUSED = {
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "AccountSuspendedException",
    "SendingPausedException",
    "BadRequestException",
    "NotFoundException",
}


def compose(sender: str, notification: Notification, now: datetime | None = None) -> EmailMessage:
    """The raw MIME message of an email notification (``now``: its Date, from the injected clock)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = notification.target
    msg["Subject"] = notification.subject
    msg["Date"] = formatdate(now.timestamp() if now is not None else None, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(notification.text)
    inline = [a for a in notification.attachments if a.content_id]
    files = [a for a in notification.attachments if not a.content_id]
    if notification.html:
        msg.add_alternative(notification.html, subtype="html")
        html = cast(EmailMessage, msg.get_payload()[1])  # type: ignore[index]
        for a in inline:
            maintype, _, subtype = a.mime_type.partition("/")
            html.add_related(
                a.content,
                maintype=maintype,
                subtype=subtype or "octet-stream",
                cid=f"<{a.content_id}>",
                filename=a.filename,
                disposition="inline",  # shown in the HTML, not listed as an attachment (RFC 2183)
            )
    for a in files:
        maintype, _, subtype = a.mime_type.partition("/")
        msg.add_attachment(a.content, maintype=maintype, subtype=subtype or "octet-stream", filename=a.filename)
    return msg


class SesEmailNotifier:
    def __init__(
        self,
        sender: str,
        client: Any = None,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        mailbox: EmlMailbox | None = None,
        clock: Clock | None = None,
    ):
        self._clock = clock
        self._sender = sender
        self._client = client
        self._region = region
        self._endpoint_url = endpoint_url
        self._mailbox = mailbox

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = one_attempt_client("sesv2", self._region, self._endpoint_url, READ_TIMEOUT)
        return self._client

    def describe(self, target: str) -> str:
        return target

    def send(self, notification: Notification) -> str:
        if notification.channel != "email":
            raise ValidationError("the SES notifier sends email only", {"channel": notification.channel})
        if not valid_email(notification.target):
            raise DeliveryRefusedError("not an email address the platform sends to", {"provider_error": "bad_address"})
        raw = compose(self._sender, notification, self._clock.now() if self._clock else None).as_bytes()
        with classified_send(
            "SES",
            REFUSED,
            refused="SES refused the email",
            failed="email could not be sent",
            unanswered="SES did not answer after the email was sent",
        ):
            answer = self.client.send_email(
                FromEmailAddress=self._sender,
                Destination={"ToAddresses": [notification.target]},
                Content={"Raw": {"Data": raw}},
            )
        message_id = str(answer["MessageId"])
        if self._mailbox is not None:
            self._mailbox.keep(message_id, raw)
        return message_id
