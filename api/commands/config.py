"""``runlog config``: show the resolved settings and change entries of the selected profile."""

from __future__ import annotations

import os

import click

from runlog.eventstore.urls import mask_url

from ..errors import SettingsError
from ..settings import (
    HOME_VAR,
    PROFILE_VAR,
    SETTINGS,
    get_setting,
    read_profiles,
    resolve_home,
    select_profile,
    validate_value,
    write_profiles,
)
from .common import get_settings, requested_profile


@click.group("config")
def group() -> None:
    """View and change settings in the selected profile (env beats profile beats defaults)."""


@group.command("set")
@click.argument("pairs", nargs=-1, required=True, metavar="KEY=VALUE...")
@click.pass_context
def set_(ctx: click.Context, pairs: tuple[str, ...]) -> None:
    """Set settings in the profile.

    Every KEY=VALUE is checked before anything is written.
    """
    home = resolve_home()
    profiles = read_profiles(home)
    name = select_profile(profiles, requested_profile(ctx))
    updates: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SettingsError(f"{mask_url(pair)!r} is not KEY=VALUE, e.g. RUNLOG_SERVER_PORT=4200")
        key = key.strip().upper()
        validate_value(key, value, home)
        updates[key] = value
    profiles.get(name).update(updates)
    write_profiles(home, profiles)
    for key, value in updates.items():
        click.echo(f"Set {key!r} to {get_setting(key).shown(value)!r}.")
        if key in os.environ:
            click.echo(f"Warning: {key} is also set in the environment, which overrides the profile.", err=True)
    click.echo(f"Updated profile {name!r}.")


@group.command("unset")
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def unset(ctx: click.Context, keys: tuple[str, ...], yes: bool) -> None:
    """Remove settings from the profile.

    The environment or the default then applies again.
    """
    home = resolve_home()
    profiles = read_profiles(home)
    name = select_profile(profiles, requested_profile(ctx))
    entries = profiles.get(name)
    # Upper-cased like `config set`, unless the file has the name exactly as typed: an unknown
    # or lower-case name that was written by hand may still be removed, which is how such a
    # mistake gets repaired (load_settings refuses the profile until it is).
    names = list(dict.fromkeys(k if k in entries else k.strip().upper() for k in keys))
    for key in names:
        if key not in entries:
            raise SettingsError(f"{key!r} is not set in profile {name!r}")
    listed = ", ".join(repr(k) for k in names)
    if not yes and not click.confirm(f"Unset {listed} from profile {name!r}?"):
        click.echo("Nothing changed.")
        return
    for key in names:
        del entries[key]
    write_profiles(home, profiles)
    for key in names:
        click.echo(f"Unset {key!r}.")
    click.echo(f"Updated profile {name!r}.")


@group.command("view")
@click.option("--show-sources/--hide-sources", default=True, help="Say where each value comes from.")
@click.option("--show-defaults/--hide-defaults", default=False, help="Also list values left at their default.")
@click.pass_context
def view(ctx: click.Context, show_sources: bool, show_defaults: bool) -> None:
    """Show the settings in effect; passwords in URLs are masked."""
    settings = get_settings(ctx)

    def line(key: str, value: str, source: str) -> str:
        return f"{key}={value!r}" + (f" (from {source})" if show_sources else "")

    click.echo(f"{PROFILE_VAR}={settings.profile!r}")
    click.echo(line(HOME_VAR, str(settings.home), "env" if os.environ.get(HOME_VAR) else "defaults"))
    for setting in SETTINGS:
        source = settings.source(setting.name).source
        value = settings.display(setting.name)
        if value is None or (source == "defaults" and not show_defaults):
            continue
        click.echo(line(setting.name, value, source))
