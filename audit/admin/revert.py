"""Reverting to an earlier version from the admin history, told truthfully.

:class:`RevertHistoryAdmin` replaces simple-history's ``SimpleHistoryAdmin`` for every
tracked model whose history the admin shows. A revert either

- works: the version's values go through the admin's own ``save_model`` (and so through
  the model's services, with their rules), with a required "Reason for this revert"; the
  changes are captured as a ``revert`` audit_trail row with that reason (the audit
  context carries the reason and the ``revert`` action, see
  :attr:`audit.context.AuditContext.action`), the person's activity says "Reverted
  maintenance request MR001 to its version of ..." beside the service's own sentence, and
  the message says what was restored, or that nothing differed; or
- is refused: the page shows why and has no Revert button, and a POST is refused with
  the same sentence, changes nothing and leaves one ``failed`` audit_trail row (a
  refused attempt, SPEC "What is recorded").

simple-history's own view checks only the *view* permission before saving a POST; here a
POST needs the change-history permission.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import router, transaction
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import capfirst
from simple_history.admin import SimpleHistoryAdmin

from audit.capture import registry
from audit.context import audit_context
from core import actions
from core.actions import REFUSALS, refusal_message
from core.signals import action_refused

REASON_FIELD = "change_reason"
REASON_LABEL = "Reason for this revert"
REASON_MAX_LENGTH = 500


@dataclass(frozen=True)
class Revert:
    """The revert a request is looking at: the historical record, the object as it is
    now (None when it was deleted) and why the revert is refused (None when it is not)."""

    record: object
    current: object | None
    refusal: str | None

    @property
    def when(self) -> str:
        return date_format(timezone.localtime(self.record.history_date), "j M Y, H:i:s T")


def _reverting(request) -> Revert | None:
    return getattr(request, "_audit_revert", None)


class RevertHistoryAdmin(SimpleHistoryAdmin):
    """The admin history with an honest revert (see the module docstring).

    The admin's form must have a ``change_reason`` field in its fieldsets: on the revert page
    it becomes the required "Reason for this revert". Subclasses say when a revert is refused
    with :meth:`revert_refusal`, and which status field a revert never moves with
    :attr:`revert_status_field`."""

    object_history_form_template = "admin/audit/revert_form.html"
    #: a status that moves only through the model's actions: a version with another status
    #: than the object's current one is not restored (None: no such field)
    revert_status_field: str | None = None

    # --- the rules ------------------------------------------------------------------

    def revert_refusal(self, request, current, version) -> str | None:
        """Why reverting ``current`` to ``version`` (an instance built from the history
        record; None when asked for the object's history as a whole) is refused, or None.
        Subclasses add their own rules and call this one."""
        if version is None:
            return None
        if current is None:
            return (f"{_code(version)} no longer exists. A deleted record is not brought back from its history; "
                    "nothing was changed.")
        field = self.revert_status_field
        if field and getattr(version, field) != getattr(current, field):
            label = self.model._meta.get_field(field).verbose_name
            return (f"In this version {_code(current)} has the {label} {_display(version, field)}; it is "
                    f"{_display(current, field)} now. A revert never changes the {label}, which moves only through "
                    f"its actions: pick a version whose {label} is {_display(current, field)}.")
        return None

    def reverting(self, request) -> bool:
        """Whether ``request`` is the revert page (for ``get_form`` / ``get_readonly_fields``)."""
        return _reverting(request) is not None

    def revert_disabled(self, request, obj=None):
        revert = _reverting(request)
        if revert is not None:
            return revert.refusal is not None or not self.has_change_history_permission(request, revert.current)
        if self.revert_refusal(request, obj, None) is not None:
            return True
        return super().revert_disabled(request, obj)

    # --- the form ---------------------------------------------------------------------

    def get_form(self, request, obj=None, **kwargs):
        form_class = super().get_form(request, obj, **kwargs)
        if not self.reverting(request):
            return form_class

        class RevertForm(form_class):
            def __init__(self, *args, **kw):
                super().__init__(*args, **kw)
                self.fields[REASON_FIELD] = forms.CharField(
                    label=REASON_LABEL, required=True, max_length=REASON_MAX_LENGTH,
                    help_text="Required. Kept in the audit trail with the revert.")

        return RevertForm

    # --- the view ---------------------------------------------------------------------

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        history_model = getattr(self.model, self.model._meta.simple_history_manager_attribute).model
        pk_name = self.model._meta.pk.attname
        try:
            lookup = {pk_name: self.model._meta.pk.to_python(unquote(object_id)),
                      "history_id": history_model._meta.pk.to_python(version_id)}
        except Exception as exc:  # a malformed id in the URL: not a version of anything
            raise Http404("No such version.") from exc
        record = get_object_or_404(history_model, **lookup)
        current = self.model._default_manager.filter(pk=lookup[pk_name]).first()
        version = record.instance
        if not self.has_view_history_or_change_history_permission(request, current or version):
            raise PermissionDenied
        revert = Revert(record=record, current=current, refusal=self.revert_refusal(request, current, version))
        request._audit_revert = revert
        context = {"revert_refusal": revert.refusal, "revert_when": revert.when, "revert_reason_label": REASON_LABEL,
                   **(extra_context or {})}
        if request.method != "POST":
            return super().history_form_view(request, object_id, version_id, context)
        if not self.has_change_history_permission(request, current):
            raise PermissionDenied
        reason = (request.POST.get(REASON_FIELD) or "").strip()
        if revert.refusal is not None:
            self._refused(request, revert, revert.refusal, reason)
            return HttpResponseRedirect(request.get_full_path())
        request._audit_revert_before = self._restorable_values(current)
        # one transaction for the change and the revert's sentence; a refusal by the services is
        # caught inside it (their own savepoint has rolled back), so the failed row they left stays
        with transaction.atomic(using=router.db_for_write(self.model)):
            try:
                # one action, one sentence: the services' own ("Edited ...") give way to the
                # revert's, which response_change composes and which is recorded below
                with audit_context(reason=reason, action="revert"), actions.silenced():
                    response = super().history_form_view(request, object_id, version_id, context)
            except REFUSALS as exc:
                messages.error(request, f"{_named(current)} was not reverted: {refusal_message(exc)} "
                                        "Nothing was changed.")
                return HttpResponseRedirect(request.get_full_path())
            sentence = getattr(request, "_audit_revert_sentence", None)
            if sentence is not None:
                actions.record(sentence, actor=request.user, reason=reason)
            return response

    def response_change(self, request, obj):
        revert = _reverting(request)
        if revert is None or request.method != "POST":
            return super().response_change(request, obj)
        before = getattr(request, "_audit_revert_before", {})
        after = self._restorable_values(self.model._default_manager.get(pk=obj.pk))
        restored = [self.model._meta.get_field(name).verbose_name for name in before if before[name] != after[name]]
        if restored:
            reason = request.POST[REASON_FIELD].strip()
            request._audit_revert_sentence = (f"Reverted {obj._meta.verbose_name} {_code(obj)} to its version of "
                                              f"{revert.when} ({_sentence_list(restored).lower()})")
            messages.success(request, f"{_named(obj)} was reverted to its version of {revert.when}: "
                                      f"{_sentence_list(restored)} restored. Reason: {reason}")
        else:
            messages.info(request, f"{_named(obj)} already matched its version of {revert.when}: nothing was changed.")
        opts = self.model._meta
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change",
                                            args=[obj.pk]))

    # --- helpers ------------------------------------------------------------------------

    def _restorable_values(self, obj) -> dict:
        """The values of the model fields the revert form may change, as stored."""
        fields = [f for f in self.model._meta.concrete_fields if f.editable and not f.primary_key]
        return {f.name: getattr(obj, f.attname) for f in fields}

    def _refused(self, request, revert: Revert, refusal: str, reason: str) -> None:
        messages.error(request, f"{_named(revert.current or revert.record.instance)} was not reverted: {refusal}")
        if revert.current is not None:
            action_refused.send(sender=type(self), target=revert.current, actor=request.user, action_type="revert",
                                error=refusal, reason=reason)


def _code(obj) -> str:
    """The object's code as the audit trail names it (``MR001``, ``ST001``)."""
    config = registry.get_config(type(obj))
    return str(config.entity_id(obj)) if config is not None else str(obj)


def _named(obj) -> str:
    """``Maintenance request MR001``: the start of a message about ``obj``."""
    return f"{capfirst(obj._meta.verbose_name)} {_code(obj)}"


def _display(obj, field: str) -> str:
    return str(getattr(obj, f"get_{field}_display", lambda: getattr(obj, field))()).lower()


def _sentence_list(items: list) -> str:
    items = [str(i).capitalize() if n == 0 else str(i) for n, i in enumerate(items)]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
