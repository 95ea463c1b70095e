"""The gateway's own state: SQLAlchemy 2 async models, the engine, Alembic migrations.

SQLite (aiosqlite) in the embedded default, PostgreSQL (asyncpg) when scaled; the same
migrations run on both.
"""
