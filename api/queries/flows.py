"""Listing flows from the flows projection; filters are evaluated in SQL (run_filters.FLOW).
A flow by id is read by the projection (projections/flows.py), which commands share."""

from __future__ import annotations

from runlog.projections.flows import decode_flow, get

from .filtering import Listing, Resource, view_time, views_of
from .run_filters import FLOW


# A flow's update time is only in its view, so it is read there and compared as a time (its
# text form need not sort chronologically); the name breaks ties, as flows are listed by name.
ORDER = {
    "NAME_ASC": "f.name ASC",
    "NAME_DESC": "f.name DESC",
    "CREATED_DESC": "f.created DESC, f.name ASC",
    "UPDATED_DESC": view_time("f", "updated", "DESC, f.name ASC"),
}


FLOWS = Listing("flows f", "f.view", Resource({"flows": FLOW}), ORDER, views_of(decode_flow))


__all__ = ["FLOWS", "get"]
