"""Block document values: sealed at rest, masked on read, kept when sent back masked (pure)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from runlog.projections.block_secrets import MASK, SealBroken, keep_masked_secrets, mask, seal, unseal


@pytest.mark.parametrize(("values", "secret_fields", "shown"), [
    ({"url": "https://hooks.slack.com/T/B/x", "notify_type": "info"}, ["url"], {"url": MASK, "notify_type": "info"}),
    # A wildcard masks every key below its head, an empty dict included (as a whole).
    ({"secrets": {"token": "t", "other": "o"}, "url": "u"}, ["secrets.*"],
     {"secrets": {"token": MASK, "other": MASK}, "url": "u"}),
    ({"secrets": {}, "url": "u"}, ["secrets.*"], {"secrets": MASK, "url": "u"}),
    # Nested paths, and a secret that is null stays null (Prefect masks only values present).
    ({"inner": {"password": "p", "user": "u"}}, ["inner.password"], {"inner": {"password": MASK, "user": "u"}}),
    ({"url": None}, ["url"], {"url": None}),
    ({"value": "s3cr3t"}, ["value", "value"], {"value": MASK}),
    ({"a": 1}, [], {"a": 1}),
])
def test_secret_fields_read_as_eight_stars(values, secret_fields, shown) -> None:
    assert mask(values, secret_fields) == shown


def test_a_secret_sent_back_masked_keeps_its_stored_value_and_a_new_one_replaces_it() -> None:
    current = {"url": "https://old", "secrets": {"token": "T1", "key": "K1"}, "name": "n"}
    sent = {"url": MASK, "secrets": {"token": MASK, "key": "K2"}, "name": "renamed"}
    assert keep_masked_secrets(sent, current, ["url", "secrets.*"]) == {
        "url": "https://old", "secrets": {"token": "T1", "key": "K2"}, "name": "renamed",
    }
    # Stars in a field that is not secret are a value like any other.
    assert keep_masked_secrets({"name": MASK}, {"name": "n"}, ["url"]) == {"name": MASK}


def test_values_are_sealed_and_a_wrong_key_fails_without_quoting_the_token() -> None:
    cipher = Fernet(Fernet.generate_key())
    token = seal(cipher, {"url": "https://hooks.slack.com/SEEDSECRET"})
    assert "SEEDSECRET" not in token
    assert unseal(cipher, token) == {"url": "https://hooks.slack.com/SEEDSECRET"}
    with pytest.raises(SealBroken) as raised:
        unseal(Fernet(Fernet.generate_key()), token)
    assert token not in str(raised.value) and "RUNLOG_SERVER_ENCRYPTION_KEY" in str(raised.value)
