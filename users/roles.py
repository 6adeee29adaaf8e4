"""Staff roles: the exact permissions each group gets (applied by a data migration)."""

from __future__ import annotations

from users.models import CLINICIANS_GROUP, SUPPORT_GROUP

# (app_label, codename). Row-level scope (a clinician sees only their care-team
# patients) is enforced by the admin classes on top of these model permissions.
ROLE_PERMISSIONS: dict[str, list[tuple[str, str]]] = {
    CLINICIANS_GROUP: [
        ("users", "view_user"),
        ("users", "view_profile"),
        ("metrics", "view_healthmetric"),
        ("nutrition", "view_nutritionlog"),
        ("goals", "view_healthgoal"),
        ("insights", "view_healthinsight"),
        ("insights", "add_healthinsight"),
        ("insights", "change_healthinsight"),  # only is_read; other fields are read-only
    ],
    SUPPORT_GROUP: [
        ("users", "view_user"),
        ("users", "change_user"),  # activate, deactivate, password-set link; no PHI
    ],
}


def roles_sync() -> None:
    """Create or repair the staff groups with exactly ROLE_PERMISSIONS (idempotent).

    Migration 0002 does this on a fresh database; this serves databases emptied since
    (test flushes) and operators who want to undo hand edits to the groups.
    """
    from django.contrib.auth.models import Group, Permission

    for group_name, permissions in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        wanted = [
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
            for app_label, codename in permissions
        ]
        group.permissions.set(wanted)
