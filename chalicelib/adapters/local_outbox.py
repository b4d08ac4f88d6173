"""The local stage's outbox: everything the platform sent, of every kind, read back from where the local
cloud keeps it (``GET /v1/local/outbox``, ``platform outbox``):

- email: SES's sent messages on the moto server (``/moto-api/data.json``, ``ses.RawMessage``), each with
  the ``.eml`` copy written under the local data folder when there is one;
- SMS: SNS's sent texts on the moto server (``sns.SMS``);
- Slack: what the Slack stand-in accepted (``/_stand-in/received``);
- webhooks: what the webhook receiver stand-in received, with whether it verified the signature.

Local stage only: nothing of this exists on AWS."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as email_policy
from pathlib import Path
from typing import Any

TIMEOUT = 5
STAMP = re.compile(r"^(\d{8}T\d{6}\d*Z)-(.+)\.eml$")


@dataclass(frozen=True)
class Sent:
    kind: str
    at: datetime | None
    to: str
    summary: str
    id: str | None = None
    file: str | None = None
    verified: bool | None = None
    error: str | None = None


def _get(url: str) -> Any:
    import requests

    answer = requests.get(url, timeout=TIMEOUT)
    answer.raise_for_status()
    return answer.json()


def read_outbox(aws_endpoint: str | None, mail_dir: str | None, slack_url: str, receiver_url: str) -> list[Sent]:
    out: list[Sent] = []
    emls: dict[str, tuple[datetime, Path]] = {}
    if mail_dir and Path(mail_dir).is_dir():
        for path in Path(mail_dir).glob("*.eml"):
            m = STAMP.match(path.name)
            if m:
                at = datetime.strptime(m.group(1)[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
                emls[m.group(2)] = (at, path)
    if aws_endpoint:
        data = _get(f"{aws_endpoint.rstrip('/')}/moto-api/data.json")
        for raw in (data.get("ses") or {}).get("RawMessage", []):
            headers = BytesHeaderParser(policy=email_policy).parsebytes(  # unfolds long headers
                str(raw.get("raw_data", "")).encode()
            )
            message_id = str(raw.get("id"))
            kept = emls.get(re.sub(r"[^A-Za-z0-9._-]", "_", message_id)[:100])
            to = ", ".join(dict.fromkeys(raw.get("destinations") or []))
            subject = str(headers.get("Subject", ""))
            out.append(
                Sent("email", kept[0] if kept else None, to, subject, message_id, str(kept[1]) if kept else None)
            )
        for sms in (data.get("sns") or {}).get("SMS", []):
            out.append(Sent("sms", None, str(sms.get("phone_number")), str(sms.get("message")), sms.get("message_id")))
    if slack_url:
        for post in _get(f"{slack_url.rstrip('/')}/_stand-in/received"):
            body = post.get("body") or {}
            out.append(Sent("slack", _time(post.get("received_at")), str(post.get("path")), str(body.get("text", ""))))
    if receiver_url:
        for post in _get(f"{receiver_url.rstrip('/')}/_stand-in/received"):
            body = post.get("body") if isinstance(post.get("body"), dict) else {}
            repeat = "a repeat: its webhook-id was seen before" if post.get("duplicate") else None
            data = body.get("data") or {}
            alerts = data.get("alerts") or [{}]
            summary = f"{body.get('type', '?')}: {alerts[0].get('title', '')}" + (
                f" (+{len(alerts) - 1} more)" if len(alerts) > 1 else ""
            )
            out.append(
                Sent(
                    "webhook",
                    _time(post.get("received_at")),
                    str(post.get("endpoint")),
                    summary,
                    (post.get("headers") or {}).get("webhook-id"),
                    verified=bool(post.get("verified")),
                    error=post.get("error") or repeat,
                )
            )
    return out


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
