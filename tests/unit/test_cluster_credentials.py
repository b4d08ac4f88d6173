"""The cluster credentials' reader masks the credential's secret in the logs, and only that: the
account's id ("platform" in every region composition) is a name, and masking it would hide the word
wherever a log line holds it (a function's name, the service)."""

from __future__ import annotations

import json
from pathlib import Path

from chalicelib.adapters.runtime.credentials import ClusterCredentials
from chalicelib.domain.redaction import redact


def test_the_secret_is_masked_and_the_account_id_is_not(tmp_path: Path) -> None:
    kept = tmp_path / "credential.json"
    kept.write_text(json.dumps({"id": "platform", "secret": "s3cr3t-of-the-cluster-0f9a", "issuer": "micro"}))
    minted: list[tuple[str, str, str]] = []

    def mint(api: str, account: str, secret: str) -> tuple[str, float]:
        minted.append((api, account, secret))
        return "tok-1", 4102444800.0

    credentials = ClusterCredentials("", mint, allow_files=True)
    assert credentials.token("http://cluster:8080", f"file:{kept}") == "tok-1"
    assert minted == [("http://cluster:8080", "platform", "s3cr3t-of-the-cluster-0f9a")]
    line = "platform-dev-regions-health used s3cr3t-of-the-cluster-0f9a"
    assert redact(line) == "platform-dev-regions-health used ***"
