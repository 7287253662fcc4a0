-- photovault: no-transaction
-- Albums and share links (issue 17): new tables, and one index on photos built CONCURRENTLY
-- so that a live photos table keeps taking writes (every statement is idempotent, as
-- no-transaction migrations must be).
--
-- An album holds only its owner's photos: album_photos names the owner too, and both foreign
-- keys include it, so a row pairing one user's album with another user's photo cannot exist,
-- whatever the code does. Deleting a photo deletes its memberships (ON DELETE CASCADE);
-- deleting an album deletes its memberships and its share links, never its photos.

-- The composite key the foreign keys below refer to (a unique index is enough for them).
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS photos_owner_id_id ON photos (owner_id, id);

CREATE TABLE IF NOT EXISTS albums (
    id              uuid PRIMARY KEY,
    owner_id        text NOT NULL REFERENCES accounts (user_id),
    title           text NOT NULL,
    description     text NOT NULL DEFAULT '',
    -- Chosen with UpdateAlbum; it only counts while that photo is in the album and not
    -- trashed (the effective cover is computed on read, so nothing has to follow a photo's
    -- removal, trash or deletion).
    cover_photo_id  uuid,
    create_time     timestamptz NOT NULL,
    update_time     timestamptz NOT NULL,
    UNIQUE (owner_id, id)
);
-- ListAlbums: one owner's albums, newest first, keyset on (create_time, id).
CREATE INDEX IF NOT EXISTS albums_owner_create_time_id ON albums (owner_id, create_time, id);

CREATE TABLE IF NOT EXISTS album_photos (
    album_id    uuid NOT NULL,
    photo_id    uuid NOT NULL,
    owner_id    text NOT NULL,
    add_time    timestamptz NOT NULL,
    -- Copies of the photo's create time (it never changes) and trash state (TrashPhoto and
    -- RestorePhoto set it in their own transaction), so that an album's count and cover read
    -- its memberships alone: an index-only count and a one-row cover, not a join of up to
    -- 10,000 photos per album read.
    photo_create_time timestamptz NOT NULL,
    trashed     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (album_id, photo_id),
    FOREIGN KEY (owner_id, album_id) REFERENCES albums (owner_id, id) ON DELETE CASCADE,
    FOREIGN KEY (owner_id, photo_id) REFERENCES photos (owner_id, id) ON DELETE CASCADE
);
-- The cascade from a deleted photo, TrashPhoto's and RestorePhoto's updates, and ListPhotos'
-- album filter joined from the photo side.
CREATE INDEX IF NOT EXISTS album_photos_photo_id ON album_photos (photo_id);
-- An album's photos outside the trash, newest first: its count (index-only) and default cover.
CREATE INDEX IF NOT EXISTS album_photos_live
    ON album_photos (album_id, photo_create_time, photo_id) WHERE NOT trashed;

CREATE TABLE IF NOT EXISTS share_links (
    id              uuid PRIMARY KEY,
    owner_id        text NOT NULL REFERENCES accounts (user_id),
    -- SHA-256 of the token: the token itself is never stored (a read of this table gives no
    -- working link).
    token_sha256    bytea NOT NULL UNIQUE,
    album_id        uuid,
    photo_id        uuid,
    expire_time     timestamptz NOT NULL,
    allow_original  boolean NOT NULL,
    -- scrypt of the password, with its parameters and salt; NULL: no password.
    password_hash   text,
    create_time     timestamptz NOT NULL,
    CHECK ((album_id IS NULL) <> (photo_id IS NULL)),
    FOREIGN KEY (owner_id, album_id) REFERENCES albums (owner_id, id) ON DELETE CASCADE,
    FOREIGN KEY (owner_id, photo_id) REFERENCES photos (owner_id, id) ON DELETE CASCADE
);
-- ListShareLinks and the per-user limit.
CREATE INDEX IF NOT EXISTS share_links_owner_create_time ON share_links (owner_id, create_time);
