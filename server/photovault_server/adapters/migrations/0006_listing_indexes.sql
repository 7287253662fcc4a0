-- photovault: no-transaction
-- An index for every ListPhotos filter on a user with millions of photos, built CONCURRENTLY
-- so that a live photos table keeps taking writes (adapters/migrations.py: no-transaction
-- migrations run statement by statement and must be idempotent).
--
-- Trusted extensions (any database owner may create them, RDS and Aurora included):
-- pg_trgm for the word search, btree_gin to put owner_id in the same GIN index as the
-- searched column, so a scan reads one owner's matches, not every owner's.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- `tags @> $n` (all of the given tags).
CREATE INDEX CONCURRENTLY IF NOT EXISTS photos_owner_tags
    ON photos USING gin (owner_id, tags);
-- The word search, `search_text LIKE '%word%'` per word: trigrams of the lowered text.
CREATE INDEX CONCURRENTLY IF NOT EXISTS photos_owner_search_text
    ON photos USING gin (owner_id, search_text gin_trgm_ops);
-- Visibility and content type: an equality between the owner and each order's keyset keys,
-- so a rare value is a range scan in page order, not a filter over the owner's whole index.
CREATE INDEX CONCURRENTLY IF NOT EXISTS photos_owner_visibility_create_time_id
    ON photos (owner_id, visibility, create_time, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS photos_owner_visibility_taken_sort_time_id
    ON photos (owner_id, visibility, taken_sort_time, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS photos_owner_content_type_create_time_id
    ON photos (owner_id, content_type, create_time, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS photos_owner_content_type_taken_sort_time_id
    ON photos (owner_id, content_type, taken_sort_time, id);
