from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from scrm.tenancy.models import Corp, Membership, Role
from wecom.sandbox import demo

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "scrm-demo-2026"  # noqa: S105  (local demo only; printed on start)


class Command(BaseCommand):
    help = "Creates the demo admin and the demo corp, pointed at the local WeCom sandbox. Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sandbox", default="http://127.0.0.1:8900", help="the sandbox's base URL")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        user = user_model.objects.filter(username=DEMO_USERNAME).first()
        if user is None:
            user = user_model.objects.create_user(username=DEMO_USERNAME, password=DEMO_PASSWORD)
        api_base = options["sandbox"].rstrip("/") + "/cgi-bin/"
        corp, _ = Corp.objects.update_or_create(
            corp_id=demo.CORP_ID,
            defaults={
                "name": demo.CORP_NAME,
                "agent_id": demo.AGENT_ID,
                "secret": demo.SECRET,
                "callback_token": demo.TOKEN,
                "encoding_aes_key": demo.ENCODING_AES_KEY,
                "api_base": api_base,
            },
        )
        Membership.objects.update_or_create(user=user, corp=corp, defaults={"role": Role.ADMIN})
        self.stdout.write(f"corp_id={corp.corp_id}")
        self.stdout.write(f"login={DEMO_USERNAME} / {DEMO_PASSWORD}")
