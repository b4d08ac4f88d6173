"""The local outbox (``GET /v1/local/outbox``, ``platform outbox``) reads back what was sent."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest


def test_a_long_subject_folded_by_the_mail_is_shown_as_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.adapters import local_outbox

    subject = "[acme-backend] 10 alerts: Deploy of svc0 failed in acme-backend, and 9 more like it"
    mail = EmailMessage(policy=SMTP)  # as the SES notifier writes it: long headers folded at 78 characters
    mail["From"], mail["To"], mail["Subject"] = "no-reply@platform.local", "ada@acme.example", subject
    mail.set_content("text")
    raw = mail.as_string()
    assert "\r\n 9 more" in raw or "\n 9 more" in raw  # folded

    def moto_data(url: str) -> dict[str, Any]:  # the moto server's /moto-api/data.json, as it answers
        return {"ses": {"RawMessage": [{"id": "m1", "raw_data": raw, "destinations": ["ada@acme.example"]}]}}

    monkeypatch.setattr(local_outbox, "_get", moto_data)
    [sent] = local_outbox.read_outbox("http://aws.invalid", None, "", "")
    assert sent.summary == subject and sent.to == "ada@acme.example"
