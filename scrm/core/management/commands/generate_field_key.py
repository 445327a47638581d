from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from scrm.core.crypto import generate_key


class Command(BaseCommand):
    help = "Prints a new FIELD_ENCRYPTION_KEY entry (kid:base64key). Put it first to make it the active key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--kid", default="k1", help="key id, letters and digits")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(generate_key(options["kid"]))
