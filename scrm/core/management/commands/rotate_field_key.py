from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from scrm.core.crypto import key_id_of, keyring
from scrm.core.fields import EncryptedTextField


class Command(BaseCommand):
    help = (
        "Re-encrypts every encrypted column with the active key (the first in FIELD_ENCRYPTION_KEY). "
        "Keep the old key listed until this has run."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        active = keyring().active_kid
        total = 0
        for model in apps.get_models():
            fields = [f for f in model._meta.get_fields() if isinstance(f, EncryptedTextField)]
            if not fields:
                continue
            names = [f.name for f in fields]
            columns = [str(f.column) for f in fields]
            with transaction.atomic():
                for obj in model._base_manager.select_for_update().only("pk", *names).iterator():
                    stale = self._stale_columns(model, obj.pk, columns, active)
                    if stale:
                        obj.save(update_fields=names)
                        total += 1
        self.stdout.write(f"re-encrypted {total} row(s) with key {active!r}")

    @staticmethod
    def _stale_columns(model: Any, pk: Any, columns: list[str], active: str) -> bool:
        from django.db import connection

        table = connection.ops.quote_name(model._meta.db_table)
        cols = ", ".join(connection.ops.quote_name(c) for c in columns)
        pk_col = connection.ops.quote_name(model._meta.pk.column)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {cols} FROM {table} WHERE {pk_col} = %s", [pk])  # noqa: S608
            row = cursor.fetchone()
        return any(value and key_id_of(value) != active for value in (row or ()))
