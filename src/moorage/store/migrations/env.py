"""Alembic environment: migrations run on the connection the master hands over."""

from alembic import context

from moorage.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the master always passes a connection
    raise RuntimeError("Moorage migrations run from the master (Database.migrate), not the alembic CLI")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
