"""Backend adapters: Postgres (asyncpg), S3 (aioboto3), Redis (redis.asyncio)."""
