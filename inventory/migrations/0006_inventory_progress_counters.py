from django.db import migrations, models


def count_progress(apps, schema_editor):
    """The counters of every existing inventory, counted from its rows as the services define them."""
    from inventory.reconciliation.selectors import progress_recount

    Inventory = apps.get_model("inventory", "Inventory")
    Scan = apps.get_model("inventory", "Scan")
    ExpectedVehicle = apps.get_model("inventory", "ExpectedVehicle")
    for inventory_id in Inventory.objects.values_list("pk", flat=True).iterator(chunk_size=1000):
        counters = progress_recount(inventory_id, scans=Scan.objects, expected_vehicles=ExpectedVehicle.objects)
        Inventory.objects.filter(pk=inventory_id).update(**counters)


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0005_removed_scans"),
    ]

    operations = [
        migrations.AddField(
            model_name="inventory",
            name="progress_counted",
            field=models.PositiveIntegerField(default=0, editable=False, verbose_name="contados"),
        ),
        migrations.AddField(
            model_name="inventory",
            name="progress_expected",
            field=models.PositiveIntegerField(default=0, editable=False, verbose_name="esperados"),
        ),
        migrations.AddField(
            model_name="inventory",
            name="progress_flagged",
            field=models.PositiveIntegerField(default=0, editable=False, verbose_name="VIN dudosos"),
        ),
        migrations.AddField(
            model_name="inventory",
            name="progress_found",
            field=models.PositiveIntegerField(default=0, editable=False, verbose_name="encontrados"),
        ),
        migrations.AddField(
            model_name="inventory",
            name="progress_unexpected",
            field=models.PositiveIntegerField(default=0, editable=False, verbose_name="no esperados"),
        ),
        migrations.RunPython(count_progress, migrations.RunPython.noop),
    ]
