"""Report schedules (filed in the due index ``REPORT_DUE#<UTC hour>``), the fan-out's cursor, and
reports on the single table. A Slack channel's webhook URL is stored encrypted. Keys:
docs/data-model.md."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import PutError, UpdateError

from chalicelib.adapters.dynamodb.base import BaseItem, condition_failed
from chalicelib.domain.clock import epoch_seconds
from chalicelib.domain.reports import Channel, Frequency, Schedule
from chalicelib.domain.services.reports import RETENTION, Report, ReportStatus, _period_from, _period_json

DUE = "REPORT_DUE#"


def due_partition(hour: datetime) -> str:
    return f"{DUE}{hour:%Y-%m-%dT%H}"


class ReportScheduleItem(BaseItem, discriminator="ReportSchedule"):
    ns = UnicodeAttribute()
    frequency = UnicodeAttribute()
    timezone = UnicodeAttribute()
    hour = NumberAttribute()
    weekday = UnicodeAttribute(null=True)
    channels = UnicodeAttribute(default="[]")  # JSON; a Slack URL as its ciphertext
    enabled = BooleanAttribute(default=True)
    next_due = UTCDateTimeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)
    updated_by = UnicodeAttribute(default="system")

    @staticmethod
    def key(ns: str) -> tuple[str, str]:
        return f"NS#{ns}", "REPORTSCHEDULE"


class ReportFanOutCursorItem(BaseItem, discriminator="ReportFanOutCursor"):
    through = UTCDateTimeAttribute()

    @staticmethod
    def key() -> tuple[str, str]:
        return "REPORTS#FANOUT", "CURSOR"


class SentReportItem(BaseItem, discriminator="SentReport"):
    ns = UnicodeAttribute()
    report_id = UnicodeAttribute()
    period = UnicodeAttribute()  # JSON
    status = UnicodeAttribute()
    trigger = UnicodeAttribute()
    channels = UnicodeAttribute(default="[]")
    summary = UnicodeAttribute(null=True)

    @staticmethod
    def key(ns: str, report_id: str) -> tuple[str, str]:
        return f"NS#{ns}#REPORTS", f"REPORT#{report_id}"

    def to_domain(self) -> Report:
        return Report(
            namespace=self.ns,
            id=self.report_id,
            period=_period_from(json.loads(self.period)),
            status=cast(ReportStatus, self.status),
            trigger=self.trigger,
            created_at=self.created_at,
            channels=tuple(json.loads(self.channels or "[]")),
            summary=json.loads(self.summary) if self.summary else None,
        )


class DynamoScheduleStore:
    def __init__(self, encrypt: Any, decrypt: Any) -> None:
        self._encrypt = encrypt  # (plaintext, namespace) -> ciphertext
        self._decrypt = decrypt

    def _item(self, s: Schedule) -> ReportScheduleItem:
        pk, sk = ReportScheduleItem.key(s.namespace)
        channels = [
            {"type": c.type, "to": c.to}
            if c.type == "email"
            else {"type": "slack", "webhook_url_encrypted": self._encrypt(c.webhook_url or "", s.namespace)}
            for c in s.channels
        ]
        filed = s.enabled and s.next_due is not None
        return ReportScheduleItem(
            PK=pk,
            SK=sk,
            GSI1PK=due_partition(s.next_due) if filed and s.next_due else None,
            GSI1SK=s.namespace if filed else None,
            ns=s.namespace,
            frequency=s.frequency,
            timezone=s.timezone,
            hour=s.hour,
            weekday=s.weekday,
            channels=json.dumps(channels),
            enabled=s.enabled,
            next_due=s.next_due,
            updated_at=s.updated_at,
            updated_by=s.updated_by,
        )

    def _domain(self, i: ReportScheduleItem) -> Schedule:
        channels = []
        for c in json.loads(i.channels or "[]"):
            if c["type"] == "email":
                channels.append(Channel("email", to=c["to"]))
            else:
                channels.append(Channel("slack", webhook_url=self._decrypt(c["webhook_url_encrypted"], i.ns)))
        return Schedule(
            namespace=i.ns,
            frequency=cast(Frequency, i.frequency),
            timezone=i.timezone,
            hour=int(i.hour),
            weekday=i.weekday,
            channels=tuple(channels),
            enabled=bool(i.enabled),
            next_due=i.next_due,
            updated_at=i.updated_at,
            updated_by=i.updated_by,
        )

    def get(self, ns: str) -> Schedule | None:
        try:
            return self._domain(ReportScheduleItem.get(*ReportScheduleItem.key(ns), consistent_read=True))
        except ReportScheduleItem.DoesNotExist:
            return None

    def put(self, schedule: Schedule) -> None:
        self._item(schedule).save()

    def put_default(self, schedule: Schedule) -> bool:
        try:
            self._item(schedule).save(condition=ReportScheduleItem.PK.does_not_exist())
        except PutError as e:
            if condition_failed(e):
                return False
            raise
        return True

    def advance(self, ns: str, due: datetime, next_due: datetime) -> bool:
        item = ReportScheduleItem(*ReportScheduleItem.key(ns))
        try:
            item.update(
                actions=[
                    ReportScheduleItem.next_due.set(next_due),
                    ReportScheduleItem.GSI1PK.set(due_partition(next_due)),
                    ReportScheduleItem.GSI1SK.set(ns),
                ],
                condition=(ReportScheduleItem.next_due == due) & (ReportScheduleItem.enabled == True),  # noqa: E712
            )
        except UpdateError as e:
            if condition_failed(e):
                return False
            raise
        return True

    def due(self, hour: datetime, limit: int, start: str | None) -> tuple[list[str], str | None]:
        last = None
        if start:
            pk, sk = ReportScheduleItem.key(start)
            last = {"PK": {"S": pk}, "SK": {"S": sk}, "GSI1PK": {"S": due_partition(hour)}, "GSI1SK": {"S": start}}
        result = ReportScheduleItem.gsi1.query(due_partition(hour), limit=limit, last_evaluated_key=last)
        ids = [i.ns for i in result if isinstance(i, ReportScheduleItem)]
        more = result.last_evaluated_key
        return ids, (more["GSI1SK"]["S"] if more else None)

    def fan_out_cursor(self) -> datetime | None:
        try:
            return ReportFanOutCursorItem.get(*ReportFanOutCursorItem.key(), consistent_read=True).through
        except ReportFanOutCursorItem.DoesNotExist:
            return None

    def set_fan_out_cursor(self, hour: datetime) -> None:
        pk, sk = ReportFanOutCursorItem.key()
        item = ReportFanOutCursorItem(PK=pk, SK=sk, through=hour)
        try:  # never backwards (a late retry of an older page)
            item.save(condition=ReportFanOutCursorItem.PK.does_not_exist() | (ReportFanOutCursorItem.through < hour))
        except PutError as e:
            if not condition_failed(e):
                raise


class DynamoReportStore:
    def _item(self, r: Report) -> SentReportItem:
        pk, sk = SentReportItem.key(r.namespace, r.id)
        return SentReportItem(
            PK=pk,
            SK=sk,
            ns=r.namespace,
            report_id=r.id,
            period=json.dumps(_period_json(r.period)),
            status=r.status,
            trigger=r.trigger,
            channels=json.dumps(list(r.channels)),
            summary=json.dumps(r.summary) if r.summary is not None else None,
            created_at=r.created_at,
            expires_at=epoch_seconds(r.period.end + RETENTION),  # retention only
        )

    def create(self, report: Report) -> bool:
        try:
            self._item(report).save(condition=SentReportItem.PK.does_not_exist())
        except PutError as e:
            if condition_failed(e):
                return False
            raise
        return True

    def get(self, ns: str, report_id: str) -> Report | None:
        try:
            return SentReportItem.get(*SentReportItem.key(ns, report_id), consistent_read=True).to_domain()
        except SentReportItem.DoesNotExist:
            return None

    def update(self, report: Report) -> None:
        self._item(report).save()

    def list(self, ns: str, limit: int) -> list[Report]:
        pk, _ = SentReportItem.key(ns, "")
        return [
            i.to_domain()
            for i in SentReportItem.query(
                pk, SentReportItem.SK.startswith("REPORT#"), scan_index_forward=False, limit=limit
            )
            if isinstance(i, SentReportItem)
        ]
