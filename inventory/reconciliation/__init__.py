"""Reconciliation: the expected stock list, live matching, variance explanations and the report.

`services` is this feature's write path and `selectors` its reads, as in the rest of the app.
"""
