"""Storage: SQLAlchemy 2 Core on aiosqlite or asyncpg, one code path for both."""
