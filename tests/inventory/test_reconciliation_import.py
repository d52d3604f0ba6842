"""Importing the expected stock list: CSV and XLSX, flexible headers, all or nothing."""

from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from inventory import services
from inventory.access import Room
from inventory.models import ExpectedVehicle, Inventory, Scan, ScanMatch, VarianceExplanation
from inventory.reconciliation import services as reconciliation
from inventory.reconciliation.errors import ImportRejected, NotAManager
from inventory.reconciliation.expected_file import field_for, header_key, read_expected_file

from .reconciliation_helpers import BOOKS, csv_bytes, make_vin, xlsx_bomb, xlsx_bytes, zip_with_entries

pytestmark = pytest.mark.django_db


@pytest.fixture
def inventory(alfa):
    return services.inventory_get_or_open(room=Room(alfa, 10, 2025))


def upload(data: bytes, name: str = "lista.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


@pytest.mark.parametrize(
    "header,field",
    [
        ("VIN", "code"),
        ("Serie", "code"),
        ("No. de serie", "code"),
        ("Número de serie", "code"),
        ("NÚMERO DE SERIE", "code"),
        ("Nº de serie", "code"),
        ("NIV", "code"),
        ("Serial number", "code"),
        ("Stock", "stock_number"),
        ("No. Stock", "stock_number"),
        ("Stock #", "stock_number"),
        ("Inventario", "stock_number"),
        ("No. de inventario", "stock_number"),
        ("Descripción", "description"),
        ("Description", "description"),
        ("Marca", "make"),
        ("Make", "make"),
        ("Modelo", "model"),
        ("Model", "model"),
        ("Año", "year"),
        ("AÑO", "year"),
        ("Year", "year"),
        ("Color", "color"),
        ("Colour", "color"),
        ("Ubicación", "location"),
        ("ubicacion", "location"),
        ("Location", "location"),
        # Combined headers of Mexican exports: every word names the same field.
        ("No. de Serie (VIN)", "code"),
        ("Serie VIN", "code"),
        ("VIN / Serie", "code"),
        ("NIV (VIN)", "code"),
        ("N.I.V.", "code"),
        ("V.I.N.", "code"),
        ("No. N.I.V", "code"),
        ("VIN del vehículo", "code"),
        ("Stock Nbr", "stock_number"),
        ("Inv.", "stock_number"),
        ("No. Inv.", "stock_number"),
        # A header with another word, or naming two fields, names none.
        ("Días en inventario", None),
        ("Fecha de inventario", None),
        ("Serie del motor", None),
        ("VIN / Stock", None),
        ("Precio", None),
        ("", None),
    ],
)
def test_headers_are_matched_in_spanish_and_english_whatever_the_accents_case_or_punctuation(header, field):
    assert field_for(header) == field


def test_header_key_drops_accents_punctuation_and_filler_words():
    assert header_key("  No. de Serie ") == "serie"
    assert header_key("Ubicación física") == "ubicacionfisica"


def test_csv_with_spanish_headers_is_imported(inventory, staff):
    result = reconciliation.expected_import_file(
        inventory=inventory, upload=csv_bytes(BOOKS), filename="libros.csv", user=staff
    )
    assert result.imported == 4 and result.replaced == 0
    assert result.columns == {
        "code": "No. de serie",
        "stock_number": "No. Stock",
        "make": "Marca",
        "model": "Modelo",
        "year": "Año",
        "color": "Color",
        "location": "Ubicación",
    }
    first = ExpectedVehicle.objects.get(inventory=inventory, code="1HGCM82633A004352")
    assert (
        first.stock_number,
        first.make,
        first.model,
        first.year,
        first.color,
        first.location,
        first.line,
    ) == (
        "S1",
        "Honda",
        "Accord",
        2003,
        "Plata",
        "Patio A",
        2,
    )
    assert first.label == "Honda Accord 2003 Plata"
    assert result.progress == {
        "expected": 4,
        "found": 0,
        "missing": 4,
        "unexpected": 0,
        "flagged": 0,
        "counted": 0,
    }


def test_excel_style_csv_with_semicolons_and_windows_1252_is_read(inventory):
    rows = [["Número de serie", "Descripción", "Ubicación"], ["3VWFE21C04M000001", "Jetta café", "Almacén"]]
    parsed = read_expected_file(csv_bytes(rows, delimiter=";", encoding="cp1252"), filename="lista.csv")
    assert not parsed.errors
    first = next(iter(parsed.rows))
    assert (first.description, first.location) == ("Jetta café", "Almacén")


TITLED_CSV = (
    "No. de serie;Stock;Descripción;Ubicación\n"
    "3VWFE21C04M000001;S1;Jetta, café;Patio A\n"
    "3VWFE21C04M000002;S2;Vento;Patio B\n"
)


@pytest.mark.parametrize(
    "title",
    [
        "Reporte de existencias - Peugeot Querétaro\n",
        "Peugeot Querétaro, existencias al 31/10/2025\n\nGenerado por: DMS\n",
    ],
)
def test_a_csv_with_title_lines_above_a_semicolon_header_is_imported(inventory, title):
    data = (title + TITLED_CSV).encode("utf-8")
    result = reconciliation.expected_import_file(inventory=inventory, upload=data, filename="existencias.csv")
    assert result.imported == 2
    assert result.columns == {
        "code": "No. de serie",
        "stock_number": "Stock",
        "description": "Descripción",
        "location": "Ubicación",
    }
    first = ExpectedVehicle.objects.get(code="3VWFE21C04M000001")
    assert (first.stock_number, first.description, first.location) == ("S1", "Jetta, café", "Patio A")
    assert first.line == title.count("\n") + 2


def test_combined_vin_and_stock_headers_of_mexican_exports_are_imported(inventory):
    rows = [
        ["No. de Serie (VIN)", "Stock Nbr", "Modelo", "Días en inventario"],
        ["3VWFE21C04M000001", "A7", "Jetta", "12"],
    ]
    result = reconciliation.expected_import_file(
        inventory=inventory, upload=csv_bytes(rows), filename="a.csv"
    )
    assert result.columns == {"code": "No. de Serie (VIN)", "stock_number": "Stock Nbr", "model": "Modelo"}
    assert result.ignored == ["Días en inventario"]
    assert ExpectedVehicle.objects.get().stock_number == "A7"


def test_a_header_naming_the_code_and_another_field_is_reported_by_name(inventory):
    rows = [["VIN / Stock", "Modelo"], ["3VWFE21C04M000001 A7", "Jetta"]]
    with pytest.raises(ImportRejected) as caught:
        reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(rows), filename="a.csv")
    message = caught.value.errors[0].message
    assert "«VIN / Stock»" in message and "VIN o código" in message and "número de stock" in message
    assert not ExpectedVehicle.objects.exists()


@pytest.mark.parametrize("bom,encoding", [(b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")])
def test_excel_unicode_text_utf16_tab_separated_is_imported(inventory, bom, encoding):
    text = "No. de serie\tDescripción\tUbicación\r\n3VWFE21C04M000001\tJetta café\tAlmacén\r\n"
    data = bom + text.encode(encoding)
    result = reconciliation.expected_import_file(inventory=inventory, upload=data, filename="lista.txt")
    assert result.imported == 1
    vehicle = ExpectedVehicle.objects.get()
    assert (vehicle.code, vehicle.description, vehicle.location) == (
        "3VWFE21C04M000001",
        "Jetta café",
        "Almacén",
    )


def test_xlsx_with_english_headers_and_a_title_row_is_imported(inventory):
    rows = [
        ["VIN", "Stock No.", "Description", "Year", "Location", "Price"],
        ["1M8GDM9AXKP042788", 1001, "Coach", 2019, "Lot 1", 10.5],
        ["JH4KA7561PC008269", 1002.0, "Legend", 1993.0, "Lot 2", None],
    ]
    data = xlsx_bytes(rows, title_rows=[["Inventario al 31/10/2025"], []])
    result = reconciliation.expected_import_file(inventory=inventory, upload=data, filename="stock.xlsx")
    assert result.imported == 2
    assert result.ignored == ["Price"]
    vehicles = list(ExpectedVehicle.objects.filter(inventory=inventory).order_by("line"))
    assert [(v.code, v.stock_number, v.year, v.location, v.line) for v in vehicles] == [
        ("1M8GDM9AXKP042788", "1001", 2019, "Lot 1", 4),
        ("JH4KA7561PC008269", "1002", 1993, "Lot 2", 5),
    ]


def test_bad_rows_are_reported_by_line_and_nothing_is_imported(inventory):
    reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(BOOKS[:2]), filename="a.csv")
    rows = [
        ["VIN", "Año", "Ubicación"],
        ["1HGCM82633A004352", "2003", "A"],
        ["", "2020", "B"],  # line 3: no code
        ["1hgcm82633a004352", "2003", "C"],  # line 4: the same code in another case
        ["X" * 65, "2020", "D"],  # line 5: too long
        ["OK-CODE", "dos mil", "E"],  # line 6: bad year
        [],  # blank lines are skipped
        ["LAST", "2021", "F" * 121],  # line 8: location too long
    ]
    with pytest.raises(ImportRejected) as caught:
        reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(rows), filename="b.csv")
    errors = [(error.line, error.message) for error in caught.value.errors]
    assert [line for line, _ in errors] == [3, 4, 5, 6, 8]
    assert "Falta el VIN" in errors[0][1]
    assert "repetido" in errors[1][1] and "línea 2" in errors[1][1]
    assert "64" in errors[2][1]
    assert "dos mil" in errors[3][1]
    assert "120" in errors[4][1]
    # The previous list is untouched.
    assert list(ExpectedVehicle.objects.filter(inventory=inventory).values_list("code", flat=True)) == [
        "1HGCM82633A004352"
    ]


@pytest.mark.parametrize(
    "data,name,message",
    [
        (b"", "a.csv", "vacío"),
        (b"Precio,Color\n1,2\n", "a.csv", "columna del VIN"),
        (b"VIN,Color\n", "a.csv", "no tiene vehículos"),
        (b"PK\x03\x04 not really a zip", "a.xlsx", "XLSX"),
        (b"\xd0\xcf\x11\xe0old excel", "a.xls", ".xls"),
    ],
)
def test_unusable_files_are_refused_with_a_reason(inventory, data, name, message):
    with pytest.raises(ImportRejected) as caught:
        reconciliation.expected_import_file(inventory=inventory, upload=data, filename=name)
    assert message in caught.value.errors[0].message
    assert not ExpectedVehicle.objects.exists()


def test_reimporting_replaces_the_list_and_rematches_the_scans(inventory, ana):
    services.scan_record(inventory=inventory, user=ana, code="1hgcm82633a004352")
    services.scan_record(inventory=inventory, user=ana, code="EXTRA-1")
    assert set(Scan.objects.values_list("match", flat=True)) == {""}  # no list yet
    reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(BOOKS), filename="a.csv")
    assert dict(Scan.objects.values_list("code", "match")) == {
        "1hgcm82633a004352": ScanMatch.EXPECTED,
        "EXTRA-1": ScanMatch.UNEXPECTED,
    }
    result = reconciliation.expected_import_file(
        inventory=inventory, upload=csv_bytes([["VIN"], ["EXTRA-1"]]), filename="b.csv"
    )
    assert result.replaced == 4 and result.imported == 1 and result.rematched == 2
    assert list(ExpectedVehicle.objects.values_list("code", flat=True)) == ["EXTRA-1"]
    assert dict(Scan.objects.values_list("code", "match")) == {
        "1hgcm82633a004352": ScanMatch.UNEXPECTED,
        "EXTRA-1": ScanMatch.EXPECTED,
    }


def test_only_managers_may_import(inventory, luis, make_user, alfa):
    with pytest.raises(NotAManager):
        reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(BOOKS), user=luis)
    boss = make_user("gerente", agencies=[alfa])
    alfa.managers.add(boss)
    assert (
        reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(BOOKS), user=boss).imported
        == 4
    )


def test_a_5000_row_file_imports_whole(inventory, staff):
    # How fast: tools/bench/import_speed.py, figures in docs/reconciliation.md (never a timed test).
    rows = [["VIN", "Stock", "Descripción", "Ubicación"]]
    rows += [[make_vin("3VWFE21C", f"{n:08d}"), f"S{n}", f"Auto {n}", f"Patio {n % 7}"] for n in range(5000)]
    result = reconciliation.expected_import_file(
        inventory=inventory, upload=csv_bytes(rows), filename="big.csv", user=staff
    )
    assert result.imported == 5000
    vehicles = ExpectedVehicle.objects.filter(inventory=inventory)
    assert vehicles.count() == 5000
    last = vehicles.get(stock_number="S4999")
    assert (last.code, last.location) == (rows[-1][0], f"Patio {4999 % 7}")


def test_import_command_opens_the_room_and_reports_in_spanish(tmp_path, alfa):
    path = tmp_path / "libros.xlsx"
    path.write_bytes(xlsx_bytes(BOOKS))
    out, err = StringIO(), StringIO()
    call_command("import_expected", "alfa-romeo", "11", "2025", str(path), stdout=out, stderr=err)
    output = out.getvalue()
    assert "Alfa Romeo/11/2025: 4 vehículos esperados importados (0 reemplazados)" in output
    assert "Faltantes 4" in output.replace("faltantes", "Faltantes")
    assert "VIN o código <- «No. de serie»" in output
    assert "imported" not in output and "Columns" not in output
    assert "Leyendo" in err.getvalue() and "Guardando" in err.getvalue()
    assert ExpectedVehicle.objects.filter(inventory__month=11, inventory__agency=alfa).count() == 4


def test_import_command_lists_bad_rows_and_fails_without_opening_the_room(tmp_path, alfa):
    path = tmp_path / "malo.csv"
    path.write_bytes(csv_bytes([["VIN", "Año"], ["A1", "1800"], ["A1", "2020"]]))
    err = StringIO()
    with pytest.raises(CommandError, match="2 filas con errores"):
        call_command("import_expected", "Alfa Romeo", "11", "2025", str(path), "--no-progress", stderr=err)
    assert "línea 2:" in err.getvalue() and "línea 3:" in err.getvalue()
    assert "line " not in err.getvalue()
    assert not ExpectedVehicle.objects.exists()
    assert not Inventory.objects.filter(agency=alfa, month=11, year=2025).exists()


def test_import_command_refuses_a_user_who_is_not_a_manager_before_opening_the_room(tmp_path, alfa, luis):
    path = tmp_path / "libros.csv"
    path.write_bytes(csv_bytes(BOOKS))
    with pytest.raises(CommandError, match="Solo un gerente de Alfa Romeo"):
        call_command(
            "import_expected", "Alfa Romeo", "11", "2025", str(path), "--user", "luis", "--no-progress"
        )
    assert not Inventory.objects.filter(agency=alfa, month=11, year=2025).exists()
    assert not ExpectedVehicle.objects.exists()
    alfa.managers.add(luis)
    out = StringIO()
    call_command(
        "import_expected",
        "Alfa Romeo",
        "11",
        "2025",
        str(path),
        "--user",
        "luis",
        "--no-progress",
        stdout=out,
    )
    assert "4 vehículos esperados importados" in out.getvalue()


def test_rest_upload_replaces_the_list(api_for, staff, inventory):
    url = f"/api/inventories/{inventory.pk}/expected/"
    response = api_for(staff).post(url, {"file": upload(csv_bytes(BOOKS))}, format="multipart")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["imported"] == 4 and body["progress"]["expected"] == 4
    xlsx = upload(xlsx_bytes([["Serie", "Ubicación"], ["ONLY-1", "Patio"]]), "lista.xlsx")
    again = api_for(staff).post(url, {"file": xlsx}, format="multipart")
    assert again.status_code == 201 and again.json()["replaced"] == 4
    assert list(ExpectedVehicle.objects.values_list("code", flat=True)) == ["ONLY-1"]


def test_rest_upload_with_bad_rows_is_400_with_lines_and_imports_nothing(api_for, staff, inventory):
    url = f"/api/inventories/{inventory.pk}/expected/"
    bad = csv_bytes([["VIN", "Año"], ["A1", "2020"], ["", "2020"], ["A2", "año"]])
    response = api_for(staff).post(url, {"file": upload(bad)}, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_file"
    assert [error["line"] for error in body["errors"]] == [3, 4]
    assert all(error["message"] for error in body["errors"])
    assert not ExpectedVehicle.objects.exists()
    missing = api_for(staff).post(url, {}, format="multipart")
    assert missing.status_code == 400 and missing.json()["errors"][0]["line"] is None


def test_a_file_wrong_throughout_lists_the_first_500_problems_and_counts_them(api_for, staff, inventory):
    rows = [["VIN", "Año"]] + [[f"C{n}", "nunca"] for n in range(600)]
    response = api_for(staff).post(
        f"/api/inventories/{inventory.pk}/expected/", {"file": upload(csv_bytes(rows))}, format="multipart"
    )
    assert response.status_code == 400
    body = response.json()
    assert len(body["errors"]) == 500 and body["errorCount"] == 600
    assert "600 filas" in body["detail"]


# The admin: another interface to the same services, never a server error.


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def test_admin_explanation_with_other_and_no_note_is_a_field_error_not_a_server_error(
    admin_client, inventory
):
    reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(BOOKS), filename="a.csv")
    form = {"inventory": inventory.pk, "code": "EXP-BARCODE-4", "reason": "other", "note": "  "}
    response = admin_client.post("/admin/inventory/varianceexplanation/add/", form)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "note": ["Con el motivo «Otro», explica la diferencia en la nota."]
    }
    assert "Con el motivo «Otro», explica la diferencia en la nota." in response.content.decode()
    assert not VarianceExplanation.objects.exists()
    saved = admin_client.post(
        "/admin/inventory/varianceexplanation/add/", {**form, "note": "Lo tiene el gerente"}
    )
    assert saved.status_code == 302
    assert VarianceExplanation.objects.get().note == "Lo tiene el gerente"


def test_admin_explanation_changed_to_other_without_a_note_is_a_field_error(admin_client, inventory, staff):
    reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(BOOKS), filename="a.csv")
    explanation = reconciliation.variance_explain(
        inventory=inventory, user=staff, code="EXP-BARCODE-4", reason="in_transit"
    )
    url = f"/admin/inventory/varianceexplanation/{explanation.pk}/change/"
    response = admin_client.post(url, {"reason": "other", "note": ""})
    assert response.status_code == 200
    assert "note" in response.context["adminform"].form.errors
    explanation.refresh_from_db()
    assert explanation.reason == "in_transit"


def test_admin_explanation_refused_by_the_service_at_save_is_a_message(
    admin_client, inventory, ana, monkeypatch
):
    reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(BOOKS), filename="a.csv")
    form = {"inventory": inventory.pk, "code": "EXP-BARCODE-4", "reason": "in_transit", "note": ""}
    # The vehicle is scanned between the form's check and the save: no longer a variance.
    monkeypatch.setattr(
        "inventory.reconciliation.admin.selectors", SimpleNamespace(variance_kind=lambda *args: "missing")
    )
    services.scan_record(inventory=inventory, user=ana, code="EXP-BARCODE-4")
    response = admin_client.post("/admin/inventory/varianceexplanation/add/", form, follow=True)
    assert response.status_code == 200
    assert "no es una diferencia de este inventario" in response.content.decode()
    assert not VarianceExplanation.objects.exists()


# Hostile files: refused before they are parsed, with the limit named (docs/reconciliation.md).


def refusal(api_for, user, inventory, data: bytes, name: str) -> dict:
    response = api_for(user).post(
        f"/api/inventories/{inventory.pk}/expected/", {"file": upload(data, name)}, format="multipart"
    )
    assert response.status_code == 400, response.content[:500]
    body = response.json()
    assert body["code"] == "invalid_file" and body["errors"][0]["line"] is None
    return body


def test_an_xlsx_whose_contents_expand_past_the_limit_is_refused_naming_it(api_for, staff, inventory):
    body = refusal(api_for, staff, inventory, xlsx_bomb(80 * 1024 * 1024), "lista.xlsx")
    assert "64 MB" in body["detail"], body
    assert not ExpectedVehicle.objects.exists()


def test_an_xlsx_compressed_beyond_the_ratio_is_refused_naming_it(api_for, staff, inventory, settings):
    unbounded = {"MAX_UNCOMPRESSED_BYTES": 10**9, "MAX_SHARED_STRINGS_BYTES": 10**9}
    settings.EXPECTED_IMPORT = {**settings.EXPECTED_IMPORT, **unbounded}
    body = refusal(api_for, staff, inventory, xlsx_bomb(20 * 1024 * 1024), "lista.xlsx")
    assert "100" in body["detail"] and "comprim" in body["detail"], body


def test_an_archive_of_too_many_entries_is_refused_naming_the_limit(api_for, staff, inventory):
    body = refusal(api_for, staff, inventory, zip_with_entries(5000), "lista.xlsx")
    assert "1000" in body["detail"] or "1.000" in body["detail"] or "1,000" in body["detail"], body


def test_a_csv_line_over_the_limit_is_refused_naming_it(api_for, staff, inventory, settings):
    settings.EXPECTED_IMPORT = {**settings.EXPECTED_IMPORT, "MAX_LINE_CHARS": 1000}
    rows = [["VIN", "Notas"], ["A1", "x" * 990], ["A2", "x" * 2000]]
    body = refusal(api_for, staff, inventory, csv_bytes(rows), "lista.csv")
    assert "1000" in body["detail"] and "línea 3" in body["detail"], body


def test_a_csv_of_more_rows_than_configured_is_refused_naming_the_limit(api_for, staff, inventory, settings):
    settings.EXPECTED_IMPORT = {**settings.EXPECTED_IMPORT, "MAX_ROWS": 10}
    rows = [["VIN"]] + [[f"C{n}"] for n in range(11)]
    response = api_for(staff).post(
        f"/api/inventories/{inventory.pk}/expected/", {"file": upload(csv_bytes(rows))}, format="multipart"
    )
    assert response.status_code == 400
    assert "10 filas" in response.json()["errors"][0]["message"]
    assert (
        reconciliation.expected_import_file(
            inventory=inventory, upload=csv_bytes(rows[:11]), filename="a.csv"
        ).imported
        == 10
    )


def test_a_file_over_the_configured_size_is_refused_naming_it(api_for, staff, inventory, settings):
    settings.EXPECTED_IMPORT = {**settings.EXPECTED_IMPORT, "MAX_BYTES": 1024 * 1024}
    rows = [["VIN", "Notas"]] + [[f"C{n}", "x" * 500] for n in range(3000)]
    body = refusal(api_for, staff, inventory, csv_bytes(rows), "lista.csv")
    assert "1 MB" in body["detail"], body


def test_the_admin_import_page_refuses_a_bomb_naming_the_limit(admin_client, inventory):
    bomb = SimpleUploadedFile("lista.xlsx", xlsx_bomb(80 * 1024 * 1024))
    response = admin_client.post(
        f"/admin/inventory/inventory/{inventory.pk}/import-expected/", {"file": bomb}, follow=True
    )
    assert response.status_code == 200
    assert "64 MB" in response.content.decode()
    assert not ExpectedVehicle.objects.exists()


def test_the_import_command_refuses_a_bomb_naming_the_limit(tmp_path, alfa):
    path = tmp_path / "lista.xlsx"
    path.write_bytes(xlsx_bomb(80 * 1024 * 1024))
    with pytest.raises(CommandError, match="64 MB"):
        call_command("import_expected", "alfa-romeo", "10", "2025", str(path), "--no-progress")
    assert not Inventory.objects.exists()
