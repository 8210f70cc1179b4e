"""The whole bot under attack and failure; one row of docs/reliability.md per test."""
