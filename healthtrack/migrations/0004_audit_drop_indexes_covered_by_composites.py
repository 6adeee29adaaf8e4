"""Drop the audit trail's single-column indexes on actor and subject.

``audit_actor_time`` and ``audit_subject_time`` lead with the same columns, so every
lookup by actor or subject can use them; the two extra indexes only cost each audited
request's insert two more index writes.

The schema editor is not asked to do it: on PostgreSQL it sees no change for a foreign
key without a constraint, and on SQLite it would rebuild the table and lose the
append-only trigger of migration 0003. The indexes are found by their columns, whatever
their names. On PostgreSQL they are dropped (and made again, backwards) CONCURRENTLY,
outside a transaction: a plain DROP INDEX waits for any running read of the table and,
meanwhile, holds up every request's audit insert.
"""

from django.conf import settings
from django.db import migrations, models

COLUMNS = ("actor_id", "subject_id")


def _single_column_indexes(schema_editor, table: str) -> dict[str, str]:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        details["columns"][0]: name
        for name, details in constraints.items()
        if details["index"]
        and not details["unique"]
        and not details["primary_key"]
        and len(details["columns"]) == 1
        and details["columns"][0] in COLUMNS
    }


def _on_postgresql(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


def drop_indexes(apps, schema_editor):
    table = apps.get_model("healthtrack", "AuditEvent")._meta.db_table
    concurrently = "CONCURRENTLY " if _on_postgresql(schema_editor) else ""
    for name in _single_column_indexes(schema_editor, table).values():
        schema_editor.execute(f"DROP INDEX {concurrently}{schema_editor.quote_name(name)}")


def create_indexes(apps, schema_editor):
    model = apps.get_model("healthtrack", "AuditEvent")
    existing = _single_column_indexes(schema_editor, model._meta.db_table)
    options = {"concurrently": True} if _on_postgresql(schema_editor) else {}
    for column in COLUMNS:
        if column not in existing:
            field = model._meta.get_field(column.removesuffix("_id"))
            schema_editor.execute(schema_editor._create_index_sql(model, fields=[field], **options))


def _unindexed_user_reference(name: str, help_text: str) -> migrations.AlterField:
    """The audit event's ``name`` field as the model now declares it: no index of its own."""
    return migrations.AlterField(
        model_name="auditevent",
        name=name,
        field=models.ForeignKey(
            blank=True,
            db_constraint=False,
            db_index=False,
            help_text=help_text,
            null=True,
            on_delete=models.deletion.DO_NOTHING,
            related_name="+",
            to=settings.AUTH_USER_MODEL,
        ),
    )


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("healthtrack", "0003_audit_append_only"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                _unindexed_user_reference("actor", "The user who acted (empty for an anonymous caller)."),
                _unindexed_user_reference("subject", "The person whose data or profile was touched."),
            ],
            database_operations=[migrations.RunPython(drop_indexes, create_indexes, atomic=False)],
        )
    ]
