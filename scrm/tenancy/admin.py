from django.contrib import admin

from scrm.tenancy.models import Corp, Membership


@admin.register(Corp)
class CorpAdmin(admin.ModelAdmin):
    # Secrets are never shown or edited here: they are set through the corp settings page only.
    fields = ["name", "corp_id", "agent_id", "api_base", "created_at", "updated_at", "last_connection_ok_at"]
    readonly_fields = ["corp_id", "created_at", "updated_at", "last_connection_ok_at"]
    list_display = ["name", "corp_id", "agent_id", "created_at"]
    search_fields = ["name", "corp_id"]

    def has_add_permission(self, request: object) -> bool:
        return False  # onboarding validates credentials; the admin site would bypass that


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "corp", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "corp__corp_id", "corp__name"]
    raw_id_fields = ["user", "corp"]
