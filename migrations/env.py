"""Alembic environment driven by the Flask app's engine and metadata."""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

config = context.config
fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

target_db = current_app.extensions["migrate"].db
# Celery's database result backend creates its own tables; they are not ours to migrate.
FOREIGN_TABLES = {"celery_taskmeta", "celery_tasksetmeta"}


def include_object(obj, name, type_, reflected, compare_to):
    if type_ == "table" and name in FOREIGN_TABLES:
        return False
    return True


def _configure(**kwargs):
    context.configure(
        target_metadata=target_db.metadata,
        include_object=include_object,
        compare_type=True,
        render_as_batch=True,  # SQLite needs table rebuilds for ALTER
        **kwargs,
    )


def run_migrations_offline():
    url = target_db.engine.url.render_as_string(hide_password=False)
    _configure(url=url, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    def process_revision_directives(ctx, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    with target_db.engine.connect() as connection:
        _configure(connection=connection, process_revision_directives=process_revision_directives)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
