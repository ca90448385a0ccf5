"""Portal forms for emergencies; the rules live in emergencies.services."""

from __future__ import annotations

from django import forms

from core.lengths import max_length
from core.permissions import is_manager
from core.portal import ReasonField, SearchField
from maintenance.forms import UserChoiceField

from .models import DESCRIPTION_MAX_LENGTH, Emergency, EmergencyStatus, EmergencyType, Severity


class EmergencyFilterForm(forms.Form):
    q = SearchField(placeholder="Code, vessel or location")
    status = forms.ChoiceField(choices=[("", "Any status"), *EmergencyStatus.choices], required=False)
    severity = forms.ChoiceField(choices=[("", "Any severity"), *Severity.choices], required=False)
    emergency_type = forms.ChoiceField(label="Type", choices=[("", "Any type"), *EmergencyType.choices], required=False)
    active = forms.BooleanField(label="Active only", required=False)


class EmergencyForm(forms.Form):
    """Report and edit an emergency. ``assigned_to`` is offered to managers only."""

    wide_fields = ("description", "reason")

    vessel = forms.CharField(max_length=max_length(Emergency, "vessel"))
    emergency_type = forms.ChoiceField(label="Type", choices=EmergencyType.choices)
    severity = forms.ChoiceField(choices=Severity.choices, initial=Severity.HIGH)
    location = forms.CharField(max_length=max_length(Emergency, "location"), required=False, help_text="Berth, position or coordinates.")
    assigned_to = UserChoiceField(required=False, label="Assigned to", empty_label="Nobody yet")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), max_length=DESCRIPTION_MAX_LENGTH)
    reason = ReasonField()

    FIELDS = ("vessel", "emergency_type", "severity", "location", "assigned_to", "description")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if not is_manager(user):
            del self.fields["assigned_to"]

    def values(self, *, only_changed: bool = False) -> dict:
        names = [n for n in self.FIELDS if n in self.fields and (not only_changed or n in self.changed_data)]
        return {n: self.cleaned_data[n] for n in names}


class ActionForm(forms.Form):
    reason = ReasonField()


class AssignForm(forms.Form):
    assignee = UserChoiceField(label="Assign to", empty_label="Choose a user…")
    reason = ReasonField()
