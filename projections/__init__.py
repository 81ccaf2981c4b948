"""Read models folded from the event log (filled in by the orchestration issue)."""
