"""Admin for alert rules (edited by administrators; every change captured) and
deliveries (read-only), and the deliveries of an event on its admin page."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from alerts.models import AlertRule, Delivery, GroupBy, RecipientRole, Trigger, split_lines
from audit.admin.base import NoWrites
from audit.admin.records import SystemEventAdmin
from audit.models import SystemEvent
from core.admin_base import RecordedAdmin
from core.permissions import is_admin


class _AdminsOnly:
    def has_module_permission(self, request):
        return is_admin(request.user)

    def has_view_permission(self, request, obj=None):
        return is_admin(request.user)


class AlertRuleForm(forms.ModelForm):
    recipient_roles = forms.MultipleChoiceField(choices=RecipientRole.choices, required=False,
                                                widget=forms.CheckboxSelectMultiple, label="Roles to tell",
                                                help_text="Every active, approved member with an e-mail address.")
    recipient_users = forms.CharField(required=False, label="Users to tell", widget=forms.Textarea(attrs={"rows": 2}),
                                      help_text="User ids such as PE001, one per line or comma separated.")

    class Meta:
        model = AlertRule
        fields = ("name", "description", "enabled", "trigger", "event_type", "severity", "entity_type", "threshold",
                  "window_minutes", "group_by", "recipient_roles", "recipient_users", "recipient_emails",
                  "notify_urls")
        widgets = {"recipient_emails": forms.Textarea(attrs={"rows": 2}),
                   "notify_urls": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["recipient_users"] = "\n".join(self.instance.recipient_users or [])

    def clean_recipient_users(self):
        ids = [u.upper() for u in split_lines(self.cleaned_data.get("recipient_users", ""))]
        known = set(get_user_model().objects.filter(user_id__in=ids).values_list("user_id", flat=True))
        unknown = [u for u in ids if u not in known]
        if unknown:
            raise ValidationError("No such user: " + ", ".join(unknown[:10]) + ".")
        return ids

    def clean_recipient_emails(self):
        emails = split_lines(self.cleaned_data.get("recipient_emails", ""))
        for email in emails:
            try:
                validate_email(email)
            except ValidationError:
                raise ValidationError(f"Not an e-mail address: {email[:80]}") from None
        return "\n".join(emails)

    def clean_notify_urls(self):
        import apprise

        urls = split_lines(self.cleaned_data.get("notify_urls", ""))
        for number, url in enumerate(urls, start=1):
            if not apprise.Apprise.instantiate(url):
                raise ValidationError(f"Line {number} is not a notification URL that Apprise knows "
                                      "(e.g. json://host/path, slack://..., mailto://...).")
        return "\n".join(urls)

    def clean(self):
        data = super().clean()
        trigger = data.get("trigger")
        threshold = data.get("threshold") or 1
        if trigger == Trigger.FAILED_LOGINS:
            if data.get("group_by") not in (GroupBy.USER, GroupBy.IP):
                self.add_error("group_by", "A failed-login rule counts per user or per IP address.")
            if not data.get("window_minutes"):
                self.add_error("window_minutes", "A failed-login rule needs a window (minutes).")
        elif threshold > 1 and not data.get("window_minutes"):
            self.add_error("window_minutes", "A threshold above 1 needs a window (minutes).")
        elif data.get("group_by") in (GroupBy.USER, GroupBy.IP):
            self.add_error("group_by", "An event rule counts all together or per entity.")
        if not (data.get("recipient_roles") or data.get("recipient_users") or data.get("recipient_emails")
                or data.get("notify_urls")):
            raise ValidationError("Name at least one recipient: a role, a user, an e-mail address or a URL.")
        return data


@admin.register(AlertRule)
class AlertRuleAdmin(RecordedAdmin, _AdminsOnly, admin.ModelAdmin):
    """Rules are settings: added, changed and deleted by administrators, each change
    captured in the audit trail (the URLs masked)."""

    form = AlertRuleForm
    list_display = ("name", "enabled", "trigger", "event_type", "severity", "threshold", "window_minutes",
                    "recipients")
    list_filter = ("enabled", "trigger")
    search_fields = ("name",)
    fieldsets = (
        (None, {"fields": ("name", "description", "enabled")}),
        ("When", {"fields": ("trigger", "event_type", "severity", "entity_type", "threshold", "window_minutes",
                             "group_by")}),
        ("Who is told", {"fields": ("recipient_roles", "recipient_users", "recipient_emails", "notify_urls")}),
    )

    def has_add_permission(self, request):
        return is_admin(request.user)

    def has_change_permission(self, request, obj=None):
        return is_admin(request.user)

    def has_delete_permission(self, request, obj=None):
        return is_admin(request.user)

    @admin.display(description="recipients")
    def recipients(self, obj):
        roles = dict(RecipientRole.choices)
        parts = [roles.get(r, r) for r in obj.recipient_roles or []]
        parts += list(obj.recipient_users or []) + obj.email_list()
        urls = len(obj.url_list())
        if urls:
            parts.append(f"{urls} notification URL(s)")
        return ", ".join(parts) or "nobody"


@admin.register(Delivery)
class DeliveryAdmin(_AdminsOnly, NoWrites, admin.ModelAdmin):
    """Every notification sent or attempted, read-only."""

    list_display = ("created_at", "event_link", "channel", "recipient", "recipient_user", "outcome", "attempts",
                    "sent_at", "last_error")
    list_filter = ("outcome", "channel")
    list_select_related = ("event", "rule")
    readonly_fields = ("event_link", "rule", "channel", "recipient", "recipient_user", "outcome", "attempts",
                       "last_error", "created_at", "next_attempt_at", "claimed_at", "sent_at", "finished_at")
    exclude = ("event", "target_key")
    show_full_result_count = False
    actions = None

    @admin.display(description="event")
    def event_link(self, obj):
        from django.urls import reverse
        from django.utils.html import format_html

        url = reverse("admin:audit_systemevent_change", args=[obj.event_id])
        return format_html('<a href="{}">#{} {}</a>', url, obj.event_id, obj.event.event_type if obj.event else "")


class DeliveryInline(NoWrites, admin.TabularInline):
    model = Delivery
    fk_name = "event"
    fields = ("channel", "recipient", "recipient_user", "outcome", "attempts", "sent_at", "last_error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "deliveries (who was notified)"


class SystemEventWithDeliveriesAdmin(SystemEventAdmin):
    inlines = [DeliveryInline]


admin.site.unregister(SystemEvent)
admin.site.register(SystemEvent, SystemEventWithDeliveriesAdmin)
