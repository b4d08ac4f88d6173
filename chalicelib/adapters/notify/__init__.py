"""Notifiers: the adapters behind ``NotifierPort`` (email through SES, Slack incoming webhooks), the
outbound rules for addresses users give, and the local stage's ``.eml`` mailbox. The delivery service
(chalicelib/domain/services/delivery.py) is the one caller: it claims, sends and records."""
