-- What the background worker reads from a photo's bytes, its variants, and its job queue.

ALTER TABLE photos
    ADD COLUMN processing_state  smallint NOT NULL DEFAULT 1 CHECK (processing_state IN (1, 2, 3)),
    -- Why a FAILED photo could not be processed, for operators (never returned by the API).
    ADD COLUMN processing_error  text NOT NULL DEFAULT '',
    ADD COLUMN width             integer NOT NULL DEFAULT 0 CHECK (width >= 0),
    ADD COLUMN height            integer NOT NULL DEFAULT 0 CHECK (height >= 0),
    ADD COLUMN taken_time        timestamptz,
    ADD COLUMN camera            text NOT NULL DEFAULT '',
    ADD COLUMN latitude          double precision,
    ADD COLUMN longitude         double precision,
    ADD COLUMN placeholder       text NOT NULL DEFAULT '',
    -- [{name, object_key, content_type, width, height, size_bytes}], as the worker stored them:
    -- always read and written whole, with the photo.
    ADD COLUMN variants          jsonb NOT NULL DEFAULT '[]',
    -- The taken-time orders' key: photos without a taken time sort by their create time.
    ADD COLUMN taken_sort_time   timestamptz GENERATED ALWAYS AS (coalesce(taken_time, create_time)) STORED;
-- ListPhotos' taken-time orders and filters: a keyset scan on (owner_id, taken_sort_time, id).
CREATE INDEX photos_owner_taken_sort_time_id ON photos (owner_id, taken_sort_time, id);

-- One job per photo waiting for the worker, written in the transaction that confirms it.
-- A worker claims a job by pushing run_after past a lease (FOR UPDATE SKIP LOCKED: workers never
-- wait on each other); a worker that dies mid-job leaves it to be claimed again when the lease
-- ends. Done or FAILED: the row goes, in the transaction that records the outcome.
CREATE TABLE photo_jobs (
    photo_id    uuid PRIMARY KEY REFERENCES photos (id) ON DELETE CASCADE,
    attempts    integer NOT NULL DEFAULT 0,
    run_after   timestamptz NOT NULL,
    last_error  text NOT NULL DEFAULT ''
);
CREATE INDEX photo_jobs_run_after ON photo_jobs (run_after);

-- Photos confirmed before the worker existed get their job too.
INSERT INTO photo_jobs (photo_id, run_after) SELECT id, now() FROM photos;
