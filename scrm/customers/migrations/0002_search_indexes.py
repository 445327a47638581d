"""Trigram indexes so "name or remark contains …" stays fast at a million follows."""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial")]

    operations = [
        TrigramExtension(),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS customer_name_trgm ON customers_customer USING gin (name gin_trgm_ops);"
            "CREATE INDEX IF NOT EXISTS follow_remark_trgm ON customers_follow USING gin (remark gin_trgm_ops);",
            "DROP INDEX IF EXISTS customer_name_trgm; DROP INDEX IF EXISTS follow_remark_trgm;",
        ),
    ]
