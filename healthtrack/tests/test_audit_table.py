"""The audit table in the database itself: append-only, and indexed once per lookup."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from healthtrack.models import AuditEvent

pytestmark = pytest.mark.django_db


def _event() -> AuditEvent:
    return AuditEvent.objects.create(action="read", resource_type="metric", actor_id=1, subject_id=2)


def test_a_stored_row_cannot_be_changed():
    event = _event()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="delete")
    assert AuditEvent.objects.get(pk=event.pk).action == "read"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="DELETE is refused on PostgreSQL only")
def test_a_stored_row_cannot_be_deleted():
    event = _event()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_each_lookup_has_one_index_and_the_insert_maintains_no_other():
    """Lookups by subject or actor use the (column, time) indexes; a single-column index
    beside them would only cost every audited request's insert."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, AuditEvent._meta.db_table)
    indexed = sorted(
        tuple(details["columns"])
        for details in constraints.values()
        if details["index"] and not details["primary_key"]
    )
    assert indexed == [
        ("action", "timestamp"),
        ("actor_id", "timestamp"),
        ("subject_id", "timestamp"),
        ("timestamp",),
    ]
