from django.db import migrations


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
                ],
                "verbose_name": "agency",
                "verbose_name_plural": "agencies",
            },
        ),
    ]
