-- Objects deleted while an upload URL could still create them again, and sweeps that share
-- their work.
--
-- not_before: an upload URL for the key may be used until then (its expiry plus the time a
-- PUT begun just before it may take), so the key is deleted again at or after it: what a URL
-- recreated after the first deletion is removed too. deleted_once: the first deletion is done;
-- until not_before the row only waits for the second one.
ALTER TABLE object_deletions
    ADD COLUMN not_before    timestamptz NOT NULL DEFAULT '-infinity',
    ADD COLUMN deleted_once  boolean NOT NULL DEFAULT false,
    -- A sweeper owns the row until then (a crashed one's rows come back after it).
    ADD COLUMN claimed_until timestamptz;

ALTER TABLE uploads
    ADD COLUMN claimed_until timestamptz;

-- Pending uploads counted per user at each reservation (PHOTOVAULT_MAX_PENDING_UPLOADS) use
-- uploads_owner_reserved_until; the sweep's claims use these.
CREATE INDEX object_deletions_not_before ON object_deletions (not_before);
