"""An inventory's lock: its writers run one at a time, each seeing what the one before committed.

Every write that changes what a room shows takes it first (inventory.services, the reconciliation
services), so a scan never matches against an expected list being replaced.
"""

from __future__ import annotations

import copy

from django.db import connection

from .models import Inventory
from .reconciliation.selectors import PROGRESS_FIELDS


def lock(inventory: Inventory) -> Inventory:
    """Lock the inventory's row until the transaction ends (`SELECT ... FOR UPDATE`); its current state."""
    return Inventory.objects.select_for_update(of=("self",)).select_related("agency").get(pk=inventory.pk)


# What the statement that takes an inventory's lock reads back: its state and its counters.
_TAKEN = ("status", "last_seq", "completed_by_name", *PROGRESS_FIELDS.values())


def take(inventory: Inventory, *, only_open: bool = False, **values) -> Inventory | None:
    """Lock the inventory and hand out its next event seq, in one statement; its state read back.

    `UPDATE ... SET last_seq = last_seq + 1 ... RETURNING`: the row lock taken by the UPDATE (on SQLite
    the transaction's write lock, taken at BEGIN IMMEDIATE) holds until the transaction ends, so the
    writers of one inventory run one at a time, and every read after it sees what the writer before
    committed. A transaction that takes a seq and then logs nothing must roll back (an error, or
    `transaction.set_rollback`), so the event log stays without gaps. `values` are set in the same
    statement; with `only_open` a completed inventory is not touched and None is returned.
    The same SQL on PostgreSQL and SQLite (>= 3.35): Django's update() cannot return the row.
    """
    quote = connection.ops.quote_name
    assignments, params = [f"{quote('last_seq')} = {quote('last_seq')} + 1"], []
    for name, value in values.items():
        field = Inventory._meta.get_field(name)
        assignments.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    condition = f"{quote('id')} = %s"
    params.append(inventory.pk)
    if only_open:
        condition += f" AND {quote('status')} = %s"
        params.append(Inventory.Status.OPEN)
    returning = ", ".join(quote(Inventory._meta.get_field(name).column) for name in _TAKEN)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(Inventory._meta.db_table)} SET {', '.join(assignments)} "
            f"WHERE {condition} RETURNING {returning}",
            params,
        )
        row = cursor.fetchone()
    if row is None:
        if not only_open:
            raise Inventory.DoesNotExist(inventory.pk)
        return None
    taken = copy.copy(inventory)  # the caller's instance keeps its (older) state
    for name, value in values.items():
        setattr(taken, name, value)
    for name, value in zip(_TAKEN, row, strict=True):
        setattr(taken, name, value)
    return taken
