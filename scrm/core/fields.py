from __future__ import annotations

from typing import Any

from django.db import models

from scrm.core.crypto import decrypt_str, encrypt_str


class EncryptedTextField(models.TextField):
    """A text column stored encrypted (AES-GCM). The plaintext exists only in memory.

    The model and field name are bound as associated data, so a ciphertext copied into another
    column or table does not decrypt.
    """

    description = "Text encrypted at rest"

    def _aad(self) -> bytes:
        return f"{self.model._meta.label_lower}.{self.name}".encode()

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return decrypt_str(value, aad=self._aad())

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt_str(str(value), aad=self._aad())
