"""The view cache is bounded, never goes back in version, and answers only exact versions."""

from __future__ import annotations

import msgspec

from runlog.projections.cache import ViewCache


class V(msgspec.Struct):
    version: int


def test_at_version_answers_only_the_exact_version():
    cache = ViewCache()
    cache.put("r", V(3))
    assert cache.at_version("r", 3) == V(3)
    assert cache.at_version("r", 2) is None and cache.at_version("x", 3) is None


def test_an_older_view_never_replaces_a_newer_one_and_none_forgets():
    cache = ViewCache()
    cache.put("r", V(5))
    cache.put("r", V(4))
    assert cache.get("r") == V(5)
    cache.put("r", None)
    assert cache.get("r") is None


def test_the_least_recently_used_entry_goes_first_when_full():
    cache = ViewCache(size=2)
    cache.put("a", V(1))
    cache.put("b", V(1))
    cache.get("a")
    cache.put("c", V(1))
    assert cache.get("b") is None and cache.get("a") == V(1) and len(cache) == 2


def test_an_empty_cache_still_caches():
    cache = ViewCache()
    assert not cache  # empty, hence falsy: callers must test "is None", not truth
    cache.put("a", V(1))
    assert cache.get("a") == V(1)
