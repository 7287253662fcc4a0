-- photovault: no-transaction
-- The trash: a photo moved there keeps its row (and its quota) with the time it was trashed,
-- until RestorePhoto clears it or the sweep deletes the photo for good. A nullable column
-- without a default is added without rewriting the table.
ALTER TABLE photos ADD COLUMN IF NOT EXISTS trashed_at timestamptz;

-- ListTrash: a keyset scan of one owner's trashed photos in (trashed_at, id) order. Partial,
-- so it holds only the trash, and the listing indexes (0001, 0006) stay as they are:
-- ListPhotos filters the few trashed rows out of its index scans on the way.
CREATE INDEX CONCURRENTLY IF NOT EXISTS photos_owner_trashed_at_id
    ON photos (owner_id, trashed_at, id) WHERE trashed_at IS NOT NULL;
-- The sweep: trashed photos past the retention, whoever owns them, oldest first.
CREATE INDEX CONCURRENTLY IF NOT EXISTS photos_trashed_at
    ON photos (trashed_at) WHERE trashed_at IS NOT NULL;

-- CreateUploadUrl's skip_if_duplicate: the caller's photos with a checksum, looked up by the
-- owner first, so that the lookup reads one owner's entries and never another's.
CREATE INDEX CONCURRENTLY IF NOT EXISTS photos_owner_checksum_sha256
    ON photos (owner_id, checksum_sha256);
