"""The rows a service has decided to write, written in one round trip on PostgreSQL.

The services (inventory/services.py) own every rule: under the inventory's lock they read what
their checks need and decide, in Python, each row to insert, update or delete. This module only
turns those decisions into SQL and runs them, the same SQL on both databases: on PostgreSQL as one
data-modifying CTE, on SQLite (which has none) one statement after another. See `run` for why the
two give the same result.
"""

from __future__ import annotations

from typing import NamedTuple

from django.db import connection, models


class Statement(NamedTuple):
    """One write, to one table, reading no other: an INSERT of given values, an UPDATE or DELETE by pk."""

    table: str
    sql: str
    params: list


def insert(instance: models.Model, *, returning_pk: bool = False) -> Statement:
    """The INSERT that `instance.save()` runs (defaults and `auto_now_add` applied now), without the ORM."""
    meta, quote = instance._meta, connection.ops.quote_name
    fields = [
        field
        for field in meta.local_concrete_fields
        if not (field is meta.auto_field and getattr(instance, field.attname) is None)
    ]
    params = [field.get_db_prep_save(field.pre_save(instance, add=True), connection) for field in fields]
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    if returning_pk:
        sql += f" RETURNING {quote(meta.pk.column)}"
    return Statement(meta.db_table, sql, params)


def increment(instance: models.Model, steps: dict[str, int]) -> Statement:
    """`UPDATE ... SET field = field + step` on the instance's row (the ORM's `F(field) + step`)."""
    meta, quote = instance._meta, connection.ops.quote_name
    columns = [quote(meta.get_field(name).column) for name in steps]
    return Statement(
        meta.db_table,
        f"UPDATE {quote(meta.db_table)} SET {', '.join(f'{column} = {column} + %s' for column in columns)} "
        f"WHERE {quote(meta.pk.column)} = %s",
        [*steps.values(), instance.pk],
    )


def delete(instance: models.Model) -> Statement:
    """The DELETE of the instance's row (for a model nothing else refers to: no cascade to collect)."""
    meta, quote = instance._meta, connection.ops.quote_name
    return Statement(
        meta.db_table,
        f"DELETE FROM {quote(meta.db_table)} WHERE {quote(meta.pk.column)} = %s",
        [instance.pk],
    )


def run(*statements: Statement) -> tuple | None:
    """Run the statements in the current transaction, in one round trip on PostgreSQL; the last one's row.

    On PostgreSQL: `WITH w0 AS (first), w1 AS (second) last`, one data-modifying CTE; the row the
    last statement returns (its RETURNING), if any. On SQLite, which has no data-modifying CTE, the
    same statements with the same parameters run one after another in the order given.

    Why SQLite gets the same answer: the parts of a CTE see one snapshot and run in an order of
    PostgreSQL's choosing, so a part could miss another's change, or depend on which ran first.
    Here each statement writes one table and reads no table but its own (`insert`, `increment`,
    `delete` only build such), and no two statements touch the same table; then no part can see or
    miss another's change, and any order, the CTE's or SQLite's, leaves the same rows (Django's
    foreign keys are deferred to the commit on both). Every rule (what to write, and whether) was
    applied by the caller; the SQL only carries it out.
    """
    tables = [statement.table for statement in statements]
    if len(set(tables)) != len(tables):
        raise ValueError(f"one statement per table in one write, not {tables}")
    if connection.vendor == "postgresql" and len(statements) > 1:
        *first, last = statements
        sql = "WITH " + ", ".join(f"w{n} AS ({part.sql})" for n, part in enumerate(first)) + " " + last.sql
        statements = (Statement(last.table, sql, [param for part in statements for param in part.params]),)
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement.sql, statement.params)
        return cursor.fetchone() if cursor.description else None


def saved(instance: models.Model, pk) -> None:
    """Mark an instance written by `insert` as the ORM marks one it saved."""
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = connection.alias


def deleted(instance: models.Model) -> None:
    """Mark an instance removed by `delete` as the ORM's `delete()` leaves it: without a pk."""
    instance.pk = None
