"""Integration tests: adapters against real PostgreSQL, Redis and SQLite."""
