"""Alembic's entry point, run by `moodring.store.migrate` on a connection it shares (no alembic.ini).

The caller owns the connection and its transaction (and, on PostgreSQL, the advisory lock taken in it),
so this only configures the context and runs the scripts. A new migration: write a file in `versions/`
(`alembic.command.revision(moodring.store.migrate.alembic_config(), "what changes")` renders one from
`script.py.mako`) whose `down_revision` is the current head, and change `moodring/store/schema.py` alike.
"""

from alembic import context

from moodring.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run Moodring's migrations with `moodring db upgrade`; they need a shared connection")
# render_as_batch: SQLite cannot ALTER most things, so later migrations copy tables in batches there
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
