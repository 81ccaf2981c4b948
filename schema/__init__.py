"""The shape of runlog's data: the event catalogue and the SQL migrations for both backends."""
