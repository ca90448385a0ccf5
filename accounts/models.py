from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import Group, PermissionsMixin
from django.db import models
from django.utils import timezone

from audit.capture.history import records as history_records
from audit.capture.querysets import AuditedModelMixin, AuditedQuerySet
from audit.capture.registry import track


class Role(models.TextChoices):
    ADMIN = "admin", "Administrator"
    PORT_ENGINEER = "port_engineer", "Port engineer"
    STAFF = "staff", "Staff"


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class UserManager(BaseUserManager.from_queryset(AuditedQuerySet)):
    use_in_migrations = True

    def _create(self, user_id, password, **fields):
        if not user_id:
            raise ValueError("user_id is required")
        user = self.model(user_id=user_id.strip().upper(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, user_id, password=None, role=Role.STAFF, **fields):
        """Create an approved account (SPEC: Identities)."""
        fields.setdefault("approval_status", ApprovalStatus.APPROVED)
        return self._create(user_id, password, role=role, **fields)

    def create_superuser(self, user_id, password=None, **fields):
        fields.setdefault("approval_status", ApprovalStatus.APPROVED)
        fields["is_superuser"] = True
        return self._create(user_id, password, role=Role.ADMIN, **fields)

    def get_by_natural_key(self, user_id):
        return self.get(user_id__iexact=user_id)


@track(entity_type="user", code_field="user_id", exclude=["last_login", "failed_login_count"], mask=["password"])
class User(AuditedModelMixin, AbstractBaseUser, PermissionsMixin):
    """An account of the service center, logged in by its ``user_id`` code."""

    user_id = models.CharField("user ID", max_length=20, unique=True, help_text="Login code such as ADM001, PE001, ST001.")
    full_name = models.CharField(max_length=150, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    department = models.CharField(max_length=100, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.STAFF)
    approval_status = models.CharField(max_length=20, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    approved_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    failed_login_count = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)

    history = history_records("user_id", "approved_by",
                              excluded_fields=["password", "last_login", "failed_login_count"])

    objects = UserManager()

    USERNAME_FIELD = "user_id"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        ordering = ["user_id"]
        indexes = [
            # user list filtered by role / approval state (approval queue)
            models.Index(fields=["approval_status", "role"], name="user_approval_role_idx"),
        ]

    def __str__(self):
        return f"{self.user_id} ({self.full_name})" if self.full_name else self.user_id

    @property
    def code(self) -> str:
        return self.user_id

    @property
    def is_staff(self) -> bool:
        """Django admin access: administrators only."""
        return self.is_active and (self.role == Role.ADMIN or self.is_superuser)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN or self.is_superuser

    @property
    def is_port_engineer(self) -> bool:
        return self.role == Role.PORT_ENGINEER

    @property
    def can_manage(self) -> bool:
        """Admins and port engineers approve work and read all audit data."""
        return self.is_admin or self.is_port_engineer

    @property
    def is_approved(self) -> bool:
        return self.approval_status == ApprovalStatus.APPROVED

    def is_locked(self, now=None) -> bool:
        return bool(self.locked_until and self.locked_until > (now or timezone.now()))

    def has_perm(self, perm, obj=None):
        if self.is_active and self.is_admin:
            return True
        return super().has_perm(perm, obj)

    def has_module_perms(self, app_label):
        if self.is_active and self.is_admin:
            return True
        return super().has_module_perms(app_label)

    def get_full_name(self):
        return self.full_name or self.user_id

    def get_short_name(self):
        return self.user_id


# A group's permissions are rights of every member: a group gaining or losing
# one (the admin's group page, group.permissions.add/remove/set/clear) is a
# permission_change of the group, recorded like a user's groups (SPEC "Group
# permissions"). The group's name is its code in the record.
track(Group, entity_type="group", code_field="name")


# The app's system checks register on import; models are imported by every
# process, and the app keeps no ready() of its own (tests/audit/capture/test_registry.py).
from . import checks  # noqa: E402,F401
