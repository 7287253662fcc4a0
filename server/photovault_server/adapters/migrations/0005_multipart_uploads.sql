-- S3 multipart uploads: what one adds to its pending upload (same id). The uploads row keeps
-- the quota reservation and expiry; this row goes with it (confirm, abort, sweep).
CREATE TABLE multipart_uploads (
    upload_id        uuid PRIMARY KEY REFERENCES uploads (id) ON DELETE CASCADE,
    owner_id         text NOT NULL,
    s3_upload_id     text NOT NULL UNIQUE,
    part_size_bytes  bigint NOT NULL CHECK (part_size_bytes > 0),
    part_count       integer NOT NULL CHECK (part_count BETWEEN 1 AND 10000)
);
-- The per-user bound on open multipart uploads counts these.
CREATE INDEX multipart_uploads_owner ON multipart_uploads (owner_id);
