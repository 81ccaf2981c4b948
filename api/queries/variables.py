"""Listing variables from the variables projection; filters are evaluated in SQL. One variable
is read by the projection (projections/variables.py), which commands share."""

from __future__ import annotations

from runlog.projections.variables import decode_variable, get, get_by_name

from .filtering import Criteria, Listing, Resource, any_in, like, tag_table, tags_all, tags_null, views_of


# Ties fall back to the id, so that pages never overlap.
ORDER = {
    "CREATED_DESC": "v.created DESC, v.id DESC",
    "UPDATED_DESC": "v.updated DESC, v.id DESC",
    "NAME_DESC": "v.name DESC, v.id DESC",
    "NAME_ASC": "v.name ASC, v.id DESC",
}


# Prefect's VariableFilter over the variables row aliased ``v`` (see filtering.py).
VARIABLE_TAGS = tag_table("variable_tags", "variable_id")
VARIABLE = Resource({
    "id": Criteria("v.id", {"any_": any_in}),
    "name": Criteria("v.name", {"any_": any_in, "like_": like}),
    "tags": Criteria("v.id", {"all_": tags_all(VARIABLE_TAGS), "is_null_": tags_null(VARIABLE_TAGS)}),
})


VARIABLES = Listing("variables v", "v.view", Resource({"variables": VARIABLE}), ORDER, views_of(decode_variable))


__all__ = ["VARIABLES", "get", "get_by_name"]
