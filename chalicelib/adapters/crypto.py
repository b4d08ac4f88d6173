"""The ``EncryptorPort``: KMS on AWS (with an encryption context), a local key in the local cloud
(Fernet, AES-128-CBC + HMAC-SHA256, from ``cryptography``). The context is bound into the
ciphertext, so a secret of one namespace cannot be decrypted as another's."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from chalicelib.domain.errors import DependencyUnavailableError


class LocalKeyEncryptor:
    def __init__(self, key: str) -> None:
        from cryptography.fernet import Fernet

        if not key:
            raise ValueError("PLATFORM_LOCAL_KEY is empty")
        raw = hashlib.sha256(key.encode()).digest()  # any passphrase -> a 32-byte Fernet key
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))

    def encrypt(self, plaintext: str, context: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps({"c": context, "p": plaintext}).encode()).decode()

    def decrypt(self, ciphertext: str, context: dict[str, str]) -> str:
        from cryptography.fernet import InvalidToken

        try:
            data = json.loads(self._fernet.decrypt(ciphertext.encode()))
        except InvalidToken as e:
            raise DependencyUnavailableError("a secret could not be decrypted", {}) from e
        if data.get("c") != context:
            raise DependencyUnavailableError("a secret was decrypted with the wrong context", {})
        return str(data["p"])


class KmsEncryptor:
    def __init__(
        self, key_id: str, client: Any = None, *, region: str | None = None, endpoint_url: str | None = None
    ) -> None:
        self._key_id = key_id
        self._client = client
        self._region = region
        self._endpoint_url = endpoint_url

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("kms", region_name=self._region, endpoint_url=self._endpoint_url)
        return self._client

    def encrypt(self, plaintext: str, context: dict[str, str]) -> str:
        blob = self.client.encrypt(KeyId=self._key_id, Plaintext=plaintext.encode(), EncryptionContext=context)[
            "CiphertextBlob"
        ]
        return base64.b64encode(blob).decode()

    def decrypt(self, ciphertext: str, context: dict[str, str]) -> str:
        try:
            out = self.client.decrypt(CiphertextBlob=base64.b64decode(ciphertext), EncryptionContext=context)
        except Exception as e:
            raise DependencyUnavailableError("a secret could not be decrypted", {}) from e
        return bytes(out["Plaintext"]).decode()
