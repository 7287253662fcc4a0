-- Objects of deleted photos, queued in the transaction that deletes the row: the object goes
-- only once the row is gone (never a photo without its object), and one that could not be
-- deleted at once (S3 down) stays queued for `photovault sweep` (never a forgotten object).
CREATE TABLE object_deletions (
    object_key   text PRIMARY KEY,
    queue_time   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX object_deletions_queue_time ON object_deletions (queue_time);
