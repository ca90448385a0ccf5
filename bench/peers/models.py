"""The same three models five times: untracked (the baseline), ours
(AuditedModelMixin + a simple-history snapshot, as the product ships
``MaintenanceRequest``), django-pghistory (triggers for insert, update and
delete), django-simple-history, django-auditlog. Fields, indexes and the
check constraint are those of ``maintenance.models``."""

import pghistory
from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from audit.capture.history import records as history_records
from audit.capture.querysets import AuditedModelMixin, AuditedQuerySet
from audit.capture.registry import track
from maintenance.models import Category, Priority, RequestStatus

USER = settings.AUTH_USER_MODEL


class RequestFields(models.Model):
    code = models.CharField(max_length=16, unique=True, editable=False)
    vessel = models.CharField(max_length=120)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.OTHER)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.MEDIUM)
    status = models.CharField(max_length=20, choices=RequestStatus.choices, default=RequestStatus.PENDING)
    requested_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    assigned_to = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    approved_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    estimated_cost = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    rejection_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        indexes = [
            models.Index(fields=["status", "-created_at"], name="%(class)s_st"),
            models.Index(fields=["requested_by", "-created_at"], name="%(class)s_rq"),
            models.Index(fields=["assigned_to", "-created_at"], name="%(class)s_as"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(estimated_cost__isnull=True) | models.Q(estimated_cost__gte=0),
                name="%(class)s_cost",
            ),
        ]

    def __str__(self):
        return self.code


class CommentFields(models.Model):
    author = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class AttachmentFields(models.Model):
    uploaded_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    file = models.FileField(max_length=255)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


def _children(prefix: str, request_model, bases=(), **attrs):
    """The comment and attachment models of one variant, each with its
    request foreign key (CASCADE, as in the product)."""
    made = []
    for kind, fields in (("Comment", CommentFields), ("Attachment", AttachmentFields)):
        body = {
            "__module__": __name__,
            "request": models.ForeignKey(request_model, on_delete=models.CASCADE, related_name=f"{kind.lower()}s"),
            **{k: (v() if callable(v) else v) for k, v in attrs.items()},
        }
        made.append(type(f"{prefix}{kind}", (*bases, fields), body))
    return made


# -- untracked: the baseline -----------------------------------------------------------------


class PlainRequest(RequestFields):  # noqa: DJ008 - __str__ from RequestFields
    pass


PlainComment, PlainAttachment = _children("Plain", PlainRequest)


# -- ours: as the product ships MaintenanceRequest -------------------------------------------------


@track(entity_type="bench_request")
class OursRequest(AuditedModelMixin, RequestFields):  # noqa: DJ008
    history = history_records("code", "requested_by", "assigned_to", "approved_by")
    objects = AuditedQuerySet.as_manager()


OursComment, OursAttachment = (
    track(m, entity_type=f"bench_{kind}", code_field="pk") and m
    # their snapshot tables as the product's comments' and attachments' (no index on the copied keys)
    for m, kind in zip(_children("Ours", OursRequest, bases=(AuditedModelMixin,),
                                 history=lambda: history_records("request", "author", "uploaded_by"),
                                 objects=AuditedQuerySet.as_manager), ("comment", "attachment"), strict=True)
)


# -- django-pghistory: insert, update and delete triggers ----------------------------------------

_PGH_TRACKERS = (pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())


@pghistory.track(*_PGH_TRACKERS)
class PghRequest(RequestFields):  # noqa: DJ008
    pass


PghComment, PghAttachment = (pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(),
                                             pghistory.DeleteEvent())(m) for m in _children("Pgh", PghRequest))


# -- django-simple-history ------------------------------------------------------------------------


class ShRequest(RequestFields):  # noqa: DJ008
    history = HistoricalRecords()


ShComment, ShAttachment = _children("Sh", ShRequest, history=HistoricalRecords)


# -- django-auditlog (registered in apps.py) -----------------------------------------------------------


class AlRequest(RequestFields):  # noqa: DJ008
    pass


AlComment, AlAttachment = _children("Al", AlRequest)
