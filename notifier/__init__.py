"""Alerting on run events (filled in by the notification issue)."""
