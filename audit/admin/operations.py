"""Admin for the seal chain and its signing keys (read-only) and legal holds (audit.operations)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm

from audit.admin.base import NoWrites
from audit.models import AuditSeal, AuditSigningKey, LegalHold
from audit.operations import retention


@admin.register(AuditSeal)
class AuditSealAdmin(NoWrites, admin.ModelAdmin):
    """The seal chain, read-only (written by seal_audit and purge_audit only)."""

    list_display = ("seq", "kind", "created_at", "row_count", "short_hash", "signing_key")
    list_filter = ("kind",)
    readonly_fields = ("seq", "kind", "created_at", "horizon", "ranges", "row_count", "rows_digest", "prev_hash",
                       "hash", "details", "key_id", "signature")
    exclude = ("row_hashes",)
    show_full_result_count = False
    actions = None

    @admin.display(description="hash")
    def short_hash(self, obj):
        return obj.hash[:16] + "…"

    @admin.display(description="signed by key")
    def signing_key(self, obj):
        return obj.key_id[:12] + "…" if obj.key_id else "not signed"


@admin.register(AuditSigningKey)
class AuditSigningKeyAdmin(NoWrites, admin.ModelAdmin):
    """The public keys that have signed seals, read-only (listed by sealing only)."""

    list_display = ("key_id", "first_seq", "created_at")
    readonly_fields = ("key_id", "first_seq", "created_at", "public_key")
    actions = None


class LegalHoldForm(forms.ModelForm):
    class Meta:
        model = LegalHold
        fields = ("entity_type", "entity_id", "user_id", "starts_at", "ends_at", "reason")


    def clean(self):
        data = super().clean()
        if bool(data.get("entity_type")) != bool(data.get("entity_id")):
            raise forms.ValidationError("An entity hold needs both the entity type and the entity id.")
        if not any(data.get(k) for k in ("entity_type", "user_id", "starts_at", "ends_at")):
            raise forms.ValidationError("Say what to hold: an entity, a user or a time range.")
        if data.get("starts_at") and data.get("ends_at") and data["starts_at"] > data["ends_at"]:
            raise forms.ValidationError("The hold's start is after its end.")
        return data


class LiftActionForm(ActionForm):
    lift_reason = forms.CharField(required=False, label="Reason (to lift)")


@admin.register(LegalHold)
class LegalHoldAdmin(admin.ModelAdmin):
    """Admins place holds (through retention.place_hold, recorded) and lift
    them with a reason (the "lift" action); holds are never edited or deleted."""

    list_display = ("id", "__str__", "reason", "placed_by", "placed_at", "lifted_by", "lifted_at")
    list_filter = (("lifted_at", admin.EmptyFieldListFilter),)
    form = LegalHoldForm
    action_form = LiftActionForm
    actions = ["lift_holds"]

    def _admin(self, request):
        return getattr(request.user, "is_admin", False) or request.user.is_superuser

    def has_module_permission(self, request):
        return self._admin(request)

    def has_view_permission(self, request, obj=None):
        return self._admin(request)

    def has_add_permission(self, request, obj=None):
        return self._admin(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        hold = retention.place_hold(actor=request.user, reason=data["reason"], entity_type=data["entity_type"],
                                    entity_id=data["entity_id"], user_id=data["user_id"],
                                    starts_at=data["starts_at"], ends_at=data["ends_at"])
        obj.pk = hold.pk

    @admin.action(description="Lift the selected holds (reason required)", permissions=["add"])
    def lift_holds(self, request, queryset):
        reason = (request.POST.get("lift_reason") or "").strip()
        if not reason:
            self.message_user(request, "Give a reason to lift a hold: nothing was lifted.", messages.ERROR)
            return
        lifted = 0
        for hold in queryset.filter(lifted_at__isnull=True):
            retention.lift_hold(hold=hold, actor=request.user, reason=reason)
            lifted += 1
        self.message_user(request, f"Lifted {lifted} hold(s).")
