"""Fakes only the tests use: source APIs (Mastodon, Bluesky, X, RSS) and Slack's Socket Mode, on
127.0.0.1, driven by the real clients. Imported as `support.…` (pytest puts tests/ on the path).

Fakes that the demo and benchmarks need too (the Slack Web API, a real Airflow deployment) live
in the installed development package `siaga_dev` instead.
"""
