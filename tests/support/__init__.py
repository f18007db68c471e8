"""Fakes only the tests use: source APIs (Mastodon, Bluesky, X, RSS) and Slack's Socket Mode, on
127.0.0.1, driven by the real clients. Imported as `support.…` (pytest puts tests/ on the path).
"""
