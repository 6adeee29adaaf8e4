"""Make the audit trail append-only in the database itself.

UPDATE is refused on every backend; DELETE is refused on PostgreSQL (where test
databases are emptied with TRUNCATE, which row triggers do not see).
"""

from django.db import migrations

POSTGRES_FORWARD = """
CREATE OR REPLACE FUNCTION healthtrack_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'healthtrack_auditevent is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER healthtrack_auditevent_append_only
    BEFORE UPDATE OR DELETE ON healthtrack_auditevent
    FOR EACH ROW EXECUTE FUNCTION healthtrack_audit_append_only();
"""
POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS healthtrack_auditevent_append_only ON healthtrack_auditevent;
DROP FUNCTION IF EXISTS healthtrack_audit_append_only();
"""
SQLITE_FORWARD = """
CREATE TRIGGER healthtrack_auditevent_append_only
BEFORE UPDATE ON healthtrack_auditevent
BEGIN
    SELECT RAISE(ABORT, 'healthtrack_auditevent is append-only');
END;
"""
SQLITE_BACKWARD = "DROP TRIGGER IF EXISTS healthtrack_auditevent_append_only;"


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_FORWARD)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("healthtrack", "0002_initial")]

    operations = [migrations.RunPython(forward, backward)]
