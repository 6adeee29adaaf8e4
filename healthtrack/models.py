"""Cross-cutting models: the audit trail."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditAction(models.TextChoices):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    EXPORT = "export"
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    DENIED = "denied"


class AuditEvent(models.Model):
    """Who touched whose data, how, when and from where; append-only.

    Holds no health values, tokens or passwords. Users are referenced without a
    database constraint so the trail outlives any account. Database triggers refuse
    UPDATE (and DELETE on PostgreSQL), see migration 0002.
    """

    timestamp = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        # audit_actor_time leads with the actor: a second index would only slow the
        # insert every audited request makes.
        db_index=False,
        related_name="+",
        help_text="The user who acted (empty for an anonymous caller).",
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # covered by audit_subject_time, as the actor's by audit_actor_time
        related_name="+",
        help_text="The person whose data or profile was touched.",
    )
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    resource_type = models.CharField(max_length=40)
    object_ids = models.JSONField(default=list, blank=True)
    method = models.CharField(max_length=8, blank=True)
    path = models.CharField(max_length=255, blank=True)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    request_id = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["subject", "-timestamp"], name="audit_subject_time"),
            models.Index(fields=["actor", "-timestamp"], name="audit_actor_time"),
            models.Index(fields=["action", "-timestamp"], name="audit_action_time"),
        ]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.action} {self.resource_type} by {self.actor_id}"
