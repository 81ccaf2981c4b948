"""Errors of the outer layer that a person can act on; the CLI prints them without a traceback."""

from __future__ import annotations


class RunlogError(Exception):
    """Base of errors whose message is meant for the person at the keyboard."""


class SettingsError(RunlogError):
    """A setting is unknown, malformed, or a profile does not exist."""
