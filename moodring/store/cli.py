"""`moodring db upgrade|current` (the schema) and `moodring forget --user ID` (delete everything about a user)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from moodring.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `db` and `forget` to the `moodring` command."""
    db = subparsers.add_parser(
        "db",
        help="the state database's schema",
        description="MOODRING_DATABASE_URL (default: a SQLite file in the user's data folder). "
        "`moodring bot` and `moodring recommend` also migrate on start when the schema is behind.",
    )
    actions = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = actions.add_parser("upgrade", help="migrate the database to this version's schema (once per fleet)")
    upgrade.set_defaults(handler=run_db_upgrade)
    current = actions.add_parser("current", help="print the database's schema revision and this version's")
    current.set_defaults(handler=run_db_current)

    forget = subparsers.add_parser(
        "forget",
        help="delete everything Moodring stores about a user",
        description="Deletes the user's recent tracks, feedback and chosen strategy.",
    )
    forget.add_argument(
        "--user",
        required=True,
        metavar="ID",
        help="a CLI user name (stored as local:NAME), a Discord user id (a number, or discord:ID), or local:NAME",
    )
    forget.set_defaults(handler=run_forget)


def run_db_upgrade(args: argparse.Namespace) -> int:
    """Handler of `moodring db upgrade`."""
    from moodring.store.migrate import upgrade

    before, after = _on_database(upgrade)
    print(f"schema at {after}" + ("" if before == after else f" (was {before or 'empty'})"))
    return 0


def run_db_current(args: argparse.Namespace) -> int:
    """Handler of `moodring db current`."""
    from moodring.store.migrate import current_revision, head_revision

    print(f"database schema: {_on_database(current_revision) or 'empty'}; this Moodring's: {head_revision()}")
    return 0


def run_forget(args: argparse.Namespace) -> int:
    """Handler of `moodring forget`."""
    from moodring.store import Store, user_key_from_cli

    user_key = user_key_from_cli(args.user)

    async def forget() -> int:
        async with await Store.connect(Settings.load()) as store:
            return await store.forget_user(user_key)

    print(f"forgot {user_key}: {asyncio.run(forget())} row(s) deleted")
    return 0


def _on_database(action: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run `action` on the configured database's engine; an outage is one line (`StoreUnavailable`)."""
    from moodring.errors import StoreUnavailable
    from moodring.store.database import configured_url, create_engine, is_outage, outage_reason

    async def run() -> T:
        url = configured_url(Settings.load().database_url)
        engine = create_engine(url)
        try:
            return await action(engine)
        except Exception as error:
            if is_outage(error):
                raise StoreUnavailable(outage_reason(error, url)) from None
            raise
        finally:
            await engine.dispose()

    return asyncio.run(run())
