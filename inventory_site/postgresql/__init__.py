"""Django's PostgreSQL backend with a connection pool that recovers at once after an outage."""
