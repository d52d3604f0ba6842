"""Operator tools that drive a running server over its public interfaces: load test and smoke check.

Nothing here runs inside the server. The worker side (client, http, worker, tracking) imports
no Django at all, so worker processes start fast and stay light; only `accounts` uses the ORM.
"""
