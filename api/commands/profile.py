"""``runlog profile``: create, switch between, list, inspect and delete settings profiles."""

from __future__ import annotations

import os

import click

from runlog.eventstore.urls import mask_url

from ..errors import SettingsError
from ..settings import (
    PROFILE_VAR,
    check_profile_name,
    read_profiles,
    resolve_home,
    select_profile,
    write_profiles,
)
from .common import requested_profile


@click.group("profile")
def group() -> None:
    """Manage settings profiles, kept in $RUNLOG_HOME/profiles.toml."""


@group.command("create")
@click.argument("name")
@click.option("--from", "source", metavar="OTHER", help="Copy the settings of profile OTHER.")
def create(name: str, source: str | None) -> None:
    """Create profile NAME.

    It starts empty or as a copy of OTHER, and does not become active.
    """
    check_profile_name(name)
    home = resolve_home()
    profiles = read_profiles(home)
    if name in profiles.profiles:
        raise SettingsError(f"profile {name!r} already exists")
    entries = dict(profiles.get(source)) if source is not None else {}
    profiles.profiles[name] = entries
    write_profiles(home, profiles)
    click.echo(f"Created profile {name!r}" + (f" from {source!r}." if source else "."))
    click.echo(f"Switch to it with: runlog profile use {name}")


@group.command("use")
@click.argument("name")
def use(name: str) -> None:
    """Make NAME the active profile."""
    home = resolve_home()
    profiles = read_profiles(home)
    profiles.get(name)
    profiles.active = name
    write_profiles(home, profiles)
    click.echo(f"Switched to profile {name!r}.")
    override = os.environ.get(PROFILE_VAR)
    if override and override != name:
        click.echo(f"Warning: {PROFILE_VAR}={override!r} in the environment still selects another profile.", err=True)


@group.command("ls")
def ls() -> None:
    """List the profiles; '*' marks the active one."""
    profiles = read_profiles(resolve_home())
    for name in sorted(profiles.profiles):
        click.echo(f"{'*' if name == profiles.active else ' '} {name}")


@group.command("inspect")
@click.argument("name", required=False)
@click.pass_context
def inspect(ctx: click.Context, name: str | None) -> None:
    """Show the entries of a profile.

    NAME defaults to the selected profile; passwords in URLs are masked.
    """
    profiles = read_profiles(resolve_home())
    name = name or select_profile(profiles, requested_profile(ctx))
    entries = profiles.get(name)
    if not entries:
        click.echo(f"Profile {name!r} is empty.")
    for key, value in entries.items():
        click.echo(f"{key}={mask_url(value)!r}")


@group.command("delete")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(name: str, yes: bool) -> None:
    """Delete profile NAME (not the active one)."""
    home = resolve_home()
    profiles = read_profiles(home)
    profiles.get(name)
    if name == profiles.active:
        raise SettingsError(
            f"profile {name!r} is the active profile; switch to another with "
            "'runlog profile use OTHER' before deleting it"
        )
    if not yes and not click.confirm(f"Delete profile {name!r}?"):
        click.echo("Nothing changed.")
        return
    del profiles.profiles[name]
    write_profiles(home, profiles)
    click.echo(f"Deleted profile {name!r}.")
