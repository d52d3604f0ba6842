"""Django's PostgreSQL backend, whose pool tests every idle connection when one is found dead.

psycopg_pool checks a connection as it is borrowed (Django passes `ConnectionPool.check_connection`
when CONN_HEALTH_CHECKS is on). When the check fails it tries the next idle connection after a pause
that grows each time (0 s, then 1 s, then 2 s, within the pool's timeout). After PostgreSQL restarts
every idle connection is dead: with three or more of them the first request after the return spent
the whole timeout on dead connections and failed. Here the first failed check makes the pool test
all its idle connections at once (`ConnectionPool.check`, a documented method): the dead ones are
replaced and the borrower gets a new connection as soon as the server accepts one.

Django 5.2 builds the pool itself and refuses a `check` in OPTIONS["pool"], hence this backend.
"""

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


class SweepingConnectionPool(ConnectionPool):
    """A pool that checks all its idle connections when a borrowed one fails its check."""

    def __init__(self, *args, check=None, **kwargs):
        self.borrow_check = check
        super().__init__(*args, check=self.check_borrowed if check else None, **kwargs)

    def check_borrowed(self, conn) -> None:
        """Check a connection being borrowed; if it is dead, check the idle ones too."""
        try:
            self.borrow_check(conn)
        except Exception:
            self.check()
            raise


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        """Django 5.2's pool (same arguments, same cache), built as a SweepingConnectionPool."""
        options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not options:
            return None
        if self.alias not in self._connection_pools:
            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                raise ImproperlyConfigured("Pooling doesn't support persistent connections.")
            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True  # as Django's: it sets autocommit itself later
            pool = SweepingConnectionPool(
                kwargs=connect_kwargs,
                open=False,
                configure=self._configure_connection,
                check=ConnectionPool.check_connection if self.settings_dict["CONN_HEALTH_CHECKS"] else None,
                **({} if options is True else options),
            )
            self._connection_pools.setdefault(self.alias, pool)
        return self._connection_pools[self.alias]
