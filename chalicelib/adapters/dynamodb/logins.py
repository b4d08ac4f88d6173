"""Login windows on the single table: device-flow codes, OAuth states and browser sessions, each
expiring (read as absent once past its time, wherever TTL has not run). Keys: docs/data-model.md."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DeleteError, UpdateError

from chalicelib.adapters.dynamodb.base import BaseItem, condition_failed
from chalicelib.domain.clock import epoch_seconds
from chalicelib.domain.stores import DeviceLogin


class DeviceCodeItem(BaseItem, discriminator="DeviceCode"):
    github_device_code = UnicodeAttribute()
    interval = NumberAttribute()
    last_polled_at = UTCDateTimeAttribute(null=True)

    @staticmethod
    def key(code_hash: str) -> tuple[str, str]:
        return f"DEVICE#{code_hash}", "DEVICE"


class OAuthStateItem(BaseItem, discriminator="OAuthState"):
    browser = UnicodeAttribute()

    @staticmethod
    def key(state_hash: str) -> tuple[str, str]:
        return f"OAUTHSTATE#{state_hash}", "OAUTHSTATE"


class SessionItem(BaseItem, discriminator="Session"):
    uid = NumberAttribute()
    login = UnicodeAttribute()

    @staticmethod
    def key(session_hash: str) -> tuple[str, str]:
        return f"SESSION#{session_hash}", "SESSION"


class DynamoLoginWindowStore:
    def put_device(self, code_hash: str, github_device_code: str, interval: int, expires_at: datetime) -> None:
        pk, sk = DeviceCodeItem.key(code_hash)
        DeviceCodeItem(
            PK=pk, SK=sk, github_device_code=github_device_code, interval=interval, expires_at=epoch_seconds(expires_at)
        ).save(condition=DeviceCodeItem.PK.does_not_exist())

    def poll_device(
        self, code_hash: str, now: datetime
    ) -> tuple[Literal["ok", "expired", "slow_down"], DeviceLogin | None]:
        item = DeviceCodeItem.get_live(*DeviceCodeItem.key(code_hash), now)
        if item is None:
            return "expired", None
        too_soon = item.last_polled_at is not None and now < item.last_polled_at + timedelta(seconds=int(item.interval))
        try:
            actions: list[Any] = [DeviceCodeItem.last_polled_at.set(now)]
            if too_soon:
                actions.append(DeviceCodeItem.interval.set(int(item.interval) + 5))
            condition = DeviceCodeItem.expires_at >= epoch_seconds(now)
            if item.last_polled_at is None:
                condition &= DeviceCodeItem.last_polled_at.does_not_exist()
            else:
                condition &= DeviceCodeItem.last_polled_at == item.last_polled_at
            item.update(actions=actions, condition=condition)
        except UpdateError as e:
            if condition_failed(e):
                return "slow_down", None  # a concurrent poll won
            raise
        login = DeviceLogin(
            item.github_device_code,
            int(item.interval),
            datetime.fromtimestamp(int(item.expires_at or 0), UTC),
            item.last_polled_at,
        )
        return ("slow_down" if too_soon else "ok"), login

    def slow_down_device(self, code_hash: str, interval: int) -> None:
        try:
            DeviceCodeItem(*DeviceCodeItem.key(code_hash)).update(
                actions=[DeviceCodeItem.interval.set(interval)],
                condition=DeviceCodeItem.PK.exists() & (DeviceCodeItem.interval < interval),
            )
        except UpdateError as e:
            if not condition_failed(e):
                raise

    def finish_device(self, code_hash: str) -> None:
        DeviceCodeItem(*DeviceCodeItem.key(code_hash)).delete()

    def put_state(self, state_hash: str, browser_hash: str, expires_at: datetime) -> None:
        pk, sk = OAuthStateItem.key(state_hash)
        OAuthStateItem(PK=pk, SK=sk, browser=browser_hash, expires_at=epoch_seconds(expires_at)).save(
            condition=OAuthStateItem.PK.does_not_exist()
        )

    def consume_state(self, state_hash: str, browser_hash: str, now: datetime) -> bool:
        try:
            OAuthStateItem(*OAuthStateItem.key(state_hash)).delete(
                condition=OAuthStateItem.PK.exists()
                & (OAuthStateItem.expires_at >= epoch_seconds(now))
                & (OAuthStateItem.browser == browser_hash)
            )
        except DeleteError as e:
            if condition_failed(e):
                return False
            raise
        return True

    def put_session(self, session_hash: str, uid: int, login: str, expires_at: datetime) -> None:
        pk, sk = SessionItem.key(session_hash)
        SessionItem(
            PK=pk,
            SK=sk,
            GSI1PK=f"USER#{uid}",
            GSI1SK=f"SESSION#{session_hash[:16]}",
            uid=uid,
            login=login,
            expires_at=epoch_seconds(expires_at),
        ).save(condition=SessionItem.PK.does_not_exist())

    def get_session(self, session_hash: str, now: datetime) -> tuple[int, str] | None:
        item = SessionItem.get_live(*SessionItem.key(session_hash), now)
        return None if item is None else (int(item.uid), item.login)

    def delete_session(self, session_hash: str) -> None:
        SessionItem(*SessionItem.key(session_hash)).delete()


if TYPE_CHECKING:  # the protocol it implements, checked by mypy
    from chalicelib.domain.stores import LoginWindowStore

    _checked: LoginWindowStore = DynamoLoginWindowStore()
