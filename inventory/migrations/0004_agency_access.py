from django.db import migrations

# No agency's name (lowercased) may be another agency's slug: else one spelling names two agencies.
# The models and serializers say so with a clear message; these triggers keep it true whatever writes.
POSTGRESQL = """
CREATE OR REPLACE FUNCTION inventory_agency_unambiguous() RETURNS trigger AS $$
BEGIN
    -- One writer of names at a time, so two concurrent renames cannot pass each other's check.
    PERFORM pg_advisory_xact_lock(hashtext('inventory_agency_unambiguous'));
    IF EXISTS (
        SELECT 1 FROM inventory_agency
        WHERE id <> NEW.id AND (slug = lower(NEW.name) OR lower(name) = NEW.slug)
    ) THEN
        RAISE EXCEPTION USING
            MESSAGE = 'agency_name_is_another_slug: ' || NEW.name, ERRCODE = 'unique_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER inventory_agency_unambiguous BEFORE INSERT OR UPDATE OF name, slug ON inventory_agency
    FOR EACH ROW EXECUTE FUNCTION inventory_agency_unambiguous();
"""
POSTGRESQL_REVERSE = """
DROP TRIGGER IF EXISTS inventory_agency_unambiguous ON inventory_agency;
DROP FUNCTION IF EXISTS inventory_agency_unambiguous();
"""
# SQLite writes one transaction at a time; lower() folds ASCII only, which is all a slug holds.
SQLITE = [
    """
    CREATE TRIGGER inventory_agency_unambiguous_insert BEFORE INSERT ON inventory_agency
    WHEN EXISTS (SELECT 1 FROM inventory_agency WHERE slug = lower(NEW.name) OR lower(name) = NEW.slug)
    BEGIN SELECT RAISE(ABORT, 'agency_name_is_another_slug'); END;
    """,
    """
    CREATE TRIGGER inventory_agency_unambiguous_update BEFORE UPDATE OF name, slug ON inventory_agency
    WHEN EXISTS (
        SELECT 1 FROM inventory_agency
        WHERE id <> NEW.id AND (slug = lower(NEW.name) OR lower(name) = NEW.slug)
    )
    BEGIN SELECT RAISE(ABORT, 'agency_name_is_another_slug'); END;
    """,
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS inventory_agency_unambiguous_insert;",
    "DROP TRIGGER IF EXISTS inventory_agency_unambiguous_update;",
]


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE:
            schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_REVERSE, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_REVERSE:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0003_agency_name_rules"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="agency",
            options={
                "ordering": ["name"],
                "permissions": [
                    ("access_every_agency", "Puede entrar, contar y completar en todas las agencias"),
                    ("manage_every_agency", "Es gerente en todas las agencias"),
                    ("view_realtime_metrics", "Puede ver las métricas en vivo de todas las salas"),
                ],
                "verbose_name": "agency",
                "verbose_name_plural": "agencies",
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
