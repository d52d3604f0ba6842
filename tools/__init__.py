"""Operator tooling outside the product: the load test, the smoke check and the benchmark.

One reference live-room client (`liveclient`), one delivery tracker (`tracking`) and one process
sampler (`sampler`) serve them all and the end-to-end tests.
"""
