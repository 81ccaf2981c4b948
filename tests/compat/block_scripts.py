"""What the compatibility tests do with the stock Prefect client's blocks; run as
``python -m tests.compat.block_scripts SCENARIO [ARGS]`` against PREFECT_API_URL. Prints one JSON line."""

from __future__ import annotations

import json
import sys

from prefect.blocks.core import Block
from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook
from prefect.blocks.system import Secret
from prefect.filesystems import LocalFileSystem
from pydantic import SecretStr


class Credentials(Block):
    _block_type_slug = "runlog-compat-credentials"
    password: SecretStr
    user: str = "u"


class Holder(Block):
    """A block nesting another: saved by reference when the inner one has a name, else inline."""

    _block_type_slug = "runlog-compat-holder"
    credentials: Credentials
    label: str = "x"


def save_and_load(secret: str, basepath: str) -> dict:
    url = f"https://hooks.slack.com/services/{secret}"
    SlackWebhook(url=url).save("ops")
    loaded = SlackWebhook.load("ops").url.get_secret_value()
    try:
        SlackWebhook(url="https://hooks.slack.com/services/other").save("ops")
        refused = False
    except ValueError:
        refused = True
    SlackWebhook(url=url + "-2").save("ops", overwrite=True)
    overwritten = SlackWebhook.load("ops").url.get_secret_value()

    CustomWebhookNotificationBlock(
        name="hook", url="http://127.0.0.1:9/hook", json_data={"text": "{{subject}} {{body}}", "token": "{{token}}"},
        secrets={"token": secret},
    ).save("custom")
    custom = CustomWebhookNotificationBlock.load("custom")
    Secret(value=secret).save("api-key")
    LocalFileSystem(basepath=basepath).save("results")
    storage = LocalFileSystem.load("results")
    storage.write_path("answer.txt", b"42")
    return {
        "loaded": loaded, "refused_without_overwrite": refused, "overwritten": overwritten,
        "custom_secrets": custom.secrets.get_secret_value(), "custom_json": custom.json_data,
        "secret": Secret.load("api-key").get(), "basepath": storage.basepath,
        "read_back": storage.read_path("answer.txt").decode(),
    }


def nested(secret: str) -> dict:
    Credentials(password=secret).save("inner")
    Holder(credentials=Credentials.load("inner"), label="by-reference").save("outer")
    Holder(credentials=Credentials(password=secret + "-inline"), label="inline").save("inline")
    by_reference, inline = Holder.load("outer"), Holder.load("inline")
    Holder(credentials=Credentials(password="replaced"), label="again").save("inline", overwrite=True)
    return {
        "by_reference": [by_reference.credentials.password.get_secret_value(), by_reference.label],
        "inline": [inline.credentials.password.get_secret_value(), inline.label],
        "overwritten": Holder.load("inline").credentials.password.get_secret_value(),
    }


def load(kind: str, name: str) -> dict:
    if kind == "slack":
        return {"url": SlackWebhook.load(name).url.get_secret_value()}
    block = CustomWebhookNotificationBlock.load(name)
    return {"url": block.url, "secrets": block.secrets.get_secret_value(), "json_data": block.json_data}


if __name__ == "__main__":
    scenario, *args = sys.argv[1:]
    scenarios = {"save_and_load": save_and_load, "nested": nested, "load": load}
    outcome = scenarios[scenario](*args)
    print(json.dumps(outcome))
