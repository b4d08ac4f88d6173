"""The email side of the ``NotifierPort`` over SES v2 (plain and HTML bodies, attachments as raw MIME)."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from chalicelib.domain.errors import DependencyUnavailableError, ValidationError
from chalicelib.domain.ports import Notification


class SesEmailNotifier:
    def __init__(self, sender: str, client: Any = None, *, region: str | None = None, endpoint_url: str | None = None):
        self._sender = sender
        self._client = client
        self._region = region
        self._endpoint_url = endpoint_url

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("sesv2", region_name=self._region, endpoint_url=self._endpoint_url)
        return self._client

    def send(self, notification: Notification) -> str:
        if notification.channel != "email":
            raise ValidationError("the SES notifier sends email only", {"channel": notification.channel})
        msg = EmailMessage()
        msg["From"] = self._sender
        msg["To"] = notification.target
        msg["Subject"] = notification.subject
        msg.set_content(notification.text)
        if notification.html:
            msg.add_alternative(notification.html, subtype="html")
        for filename, content, mime in notification.attachments:
            maintype, _, subtype = mime.partition("/")
            msg.add_attachment(content, maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
        try:
            answer = self.client.send_email(
                FromEmailAddress=self._sender,
                Destination={"ToAddresses": [notification.target]},
                Content={"Raw": {"Data": msg.as_bytes()}},
            )
        except Exception as e:
            code = getattr(e, "response", {}).get("Error", {}).get("Code", type(e).__name__)
            raise DependencyUnavailableError("email could not be sent", {"provider_error": code}) from e
        return str(answer["MessageId"])
