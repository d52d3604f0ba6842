"""The event log keeps domain facts (inventory.events), no longer finished protocol v1 messages.

Reversible: the facts hold everything the messages said but the room's name (the inventory's) and
the completion's text (the site's language), which the way back writes again.
"""

from django.conf import settings
from django.db import migrations
from django.utils import translation
from django.utils.translation import gettext as _

BATCH_SIZE = 1000
COMPLETED_TEXT = "El inventario ha sido completado por %(name)s."


def _scan_facts(data: dict) -> dict:
    scan = data.get("scanData") or {}
    return {
        "scan": {
            "id": scan.get("id"),
            "code": scan.get("code"),
            "scanned_by_id": scan.get("userId"),
            "scanned_by_name": scan.get("user", ""),
            "scanned_at": scan.get("timestamp"),
            "match": data.get("match"),
        },
        "user_id": data.get("userId"),
        "user_name": data.get("userName", ""),
        "progress": data.get("progress"),
        "at": data.get("timestamp"),
    }


def _completed_facts(data: dict, inventory) -> dict:
    return {
        # The message did not say who by id; the inventory does.
        "completed_by_id": str(inventory.completed_by_id) if inventory.completed_by_id else None,
        "completed_by_name": data.get("completedBy", ""),
        "completed_at": data.get("timestamp"),
        "summary": data.get("summary"),
    }


def frame_to_facts(event) -> dict:
    data = event.facts.get("data", {})
    return _completed_facts(data, event.inventory) if event.type == "inventory_completed" else _scan_facts(data)


def facts_to_frame(event) -> dict:
    facts, inventory = event.facts, event.inventory
    data = {"agency": inventory.agency.name, "month": str(inventory.month), "year": inventory.year}
    if event.type == "inventory_completed":
        name = facts["completed_by_name"]
        with translation.override(settings.LANGUAGE_CODE):
            message = _(COMPLETED_TEXT) % {"name": name}
        data |= {
            "completedBy": name,
            "inventoryId": str(inventory.pk),
            "message": message,
            "timestamp": facts["completed_at"],
            "seq": event.seq,
        }
        if facts.get("summary") is not None:
            data["summary"] = facts["summary"]
        return {"type": event.type, "data": data}
    scan = facts["scan"]
    data |= {
        "userId": facts["user_id"],
        "userName": facts["user_name"],
        "scanData": {
            "code": scan["code"],
            "user": scan["scanned_by_name"],
            "timestamp": scan["scanned_at"],
            "id": scan["id"],
            "userId": scan["scanned_by_id"],
        },
        "timestamp": facts["at"],
        "seq": event.seq,
    }
    if event.type == "scan_added":
        data["match"] = scan["match"]
    if facts.get("progress") is not None:
        data["progress"] = facts["progress"]
    return {"type": event.type, "data": data}


def _convert(apps, convert) -> None:
    InventoryEvent = apps.get_model("inventory", "InventoryEvent")
    batch = []
    for event in (
        InventoryEvent.objects.select_related("inventory__agency").order_by("pk").iterator(BATCH_SIZE)
    ):
        event.facts = convert(event)
        batch.append(event)
        if len(batch) >= BATCH_SIZE:
            InventoryEvent.objects.bulk_update(batch, ["facts"])
            batch = []
    InventoryEvent.objects.bulk_update(batch, ["facts"])


def forwards(apps, schema_editor):
    _convert(apps, frame_to_facts)


def backwards(apps, schema_editor):
    _convert(apps, facts_to_frame)


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0006_inventory_progress_counters"),
    ]

    operations = [
        migrations.RenameField(model_name="inventoryevent", old_name="payload", new_name="facts"),
        migrations.RunPython(forwards, backwards),
    ]
