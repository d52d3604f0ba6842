import pytest
from django.contrib.auth.models import Permission

from inventory import services
from inventory.access import Room
from inventory.models import Agency, Inventory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def inventory(alfa, ana):
    inventory = services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    services.scan_record(inventory=inventory, user=ana, code="VIN-ADMIN-1")
    return inventory


def test_admin_lists_agencies_inventories_and_scans(admin_client, inventory):
    assert b"Alfa Romeo" in admin_client.get("/admin/inventory/agency/").content
    page = admin_client.get("/admin/inventory/inventory/?status__exact=open&year=2025")
    assert page.status_code == 200 and b"Alfa Romeo/10/2025" in page.content
    change = admin_client.get(f"/admin/inventory/inventory/{inventory.pk}/change/")
    assert b"VIN-ADMIN-1" in change.content  # scans inline, read-only
    search = admin_client.get("/admin/inventory/scan/?q=ADMIN")
    assert b"VIN-ADMIN-1" in search.content


def test_admin_action_completes_through_the_service_and_tells_open_sessions(
    admin_client, inventory, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr("realtime.broadcast.publish", lambda inventory_id, *m, **kw: sent.append((m, kw)))
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/inventory/inventory/",
            {"action": "complete_inventories", "_selected_action": [inventory.pk]},
            follow=True,
        )
    assert response.status_code == 200
    inventory.refresh_from_db()
    assert inventory.status == Inventory.Status.COMPLETED
    assert inventory.completed_by_name == "Jefa"
    messages, options = sent[-1]
    assert [m["type"] for m in messages] == ["inventory_completed", "session_terminated"]
    assert options == {"close": True}


def test_admin_agency_is_created_with_members(admin_client, ana):
    response = admin_client.post(
        "/admin/inventory/agency/add/",
        {"name": "Fiat Puebla", "slug": "fiat-puebla", "is_active": "on", "members": [ana.pk]},
    )
    assert response.status_code == 302
    assert ana.agencies.filter(slug="fiat-puebla").exists()


def test_admin_removes_a_scan_through_the_service_and_tells_the_room(
    admin_client, inventory, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr("realtime.broadcast.publish", lambda inventory_id, *m, **kw: sent.append(m))
    scan = inventory.scans.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/inventory/scan/{scan.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not inventory.scans.exists()
    assert [m["type"] for messages in sent for m in messages] == ["scan_removed"]
    assert inventory.events.filter(type="scan_removed").exists()


def test_admin_keeps_a_completed_count_and_a_room_in_place(admin_client, inventory, staff):
    change = admin_client.get(f"/admin/inventory/inventory/{inventory.pk}/change/")
    assert b'name="month"' not in change.content and b'name="agency"' not in change.content
    assert admin_client.get(f"/admin/inventory/inventory/{inventory.pk}/delete/").status_code == 403
    services.inventory_complete(inventory=inventory, user=staff)
    scan = inventory.scans.get()
    assert admin_client.get(f"/admin/inventory/scan/{scan.pk}/delete/").status_code == 403
    assert inventory.scans.exists()


def test_a_name_that_is_another_agencys_slug_is_refused_in_the_admin(admin_client, alfa):
    response = admin_client.post(
        "/admin/inventory/agency/add/", {"name": "alfa-romeo", "slug": "otra", "is_active": "on"}
    )
    assert response.status_code == 200
    assert "«alfa-romeo» es el slug de otra agencia; elige otro nombre." in response.content.decode()
    response = admin_client.post(
        "/admin/inventory/agency/add/", {"name": "Otra", "slug": "alfa-romeo", "is_active": "on"}
    )
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert Agency.objects.count() == 1


def test_an_admin_user_who_may_only_view_inventories_cannot_complete_them(client, make_user, inventory):
    viewer = make_user("viewer")
    viewer.is_staff = True
    viewer.save()
    viewer.user_permissions.add(Permission.objects.get(codename="view_inventory"))
    client.force_login(viewer)
    assert client.get("/admin/inventory/inventory/").status_code == 200
    response = client.post(
        "/admin/inventory/inventory/",
        {"action": "complete_inventories", "_selected_action": [inventory.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert Inventory.objects.get(pk=inventory.pk).is_open
