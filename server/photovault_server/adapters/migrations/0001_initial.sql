-- Accounts, pending uploads and photos.

CREATE TABLE accounts (
    user_id      text PRIMARY KEY,
    -- NULL means the configured default (PHOTOVAULT_QUOTA_BYTES); set to override per account.
    quota_bytes  bigint CHECK (quota_bytes >= 0),
    used_bytes   bigint NOT NULL DEFAULT 0 CHECK (used_bytes >= 0),
    photo_count  bigint NOT NULL DEFAULT 0 CHECK (photo_count >= 0),
    create_time  timestamptz NOT NULL
);

-- Uploads issued and not yet confirmed. A row reserves quota until reserved_until.
CREATE TABLE uploads (
    id               uuid PRIMARY KEY,
    owner_id         text NOT NULL REFERENCES accounts (user_id),
    object_key       text NOT NULL UNIQUE,
    file_name        text NOT NULL,
    content_type     text NOT NULL,
    size_bytes       bigint NOT NULL CHECK (size_bytes > 0),
    checksum_sha256  text NOT NULL DEFAULT '',
    create_time      timestamptz NOT NULL,
    reserved_until   timestamptz NOT NULL
);
-- Sums of live reservations per account, and the sweep of expired ones.
CREATE INDEX uploads_owner_reserved_until ON uploads (owner_id, reserved_until);
CREATE INDEX uploads_reserved_until ON uploads (reserved_until);

CREATE TABLE photos (
    id               uuid PRIMARY KEY,
    owner_id         text NOT NULL REFERENCES accounts (user_id),
    object_key       text NOT NULL UNIQUE,
    file_name        text NOT NULL,
    content_type     text NOT NULL,
    size_bytes       bigint NOT NULL CHECK (size_bytes > 0),
    checksum_sha256  text NOT NULL DEFAULT '',
    title            text NOT NULL DEFAULT '',
    description      text NOT NULL DEFAULT '',
    tags             text[] NOT NULL DEFAULT '{}',
    visibility       smallint NOT NULL CHECK (visibility IN (1, 2)),
    create_time      timestamptz NOT NULL,
    update_time      timestamptz NOT NULL,
    -- What ListPhotos' text query searches; lower() here and on the query words alike.
    search_text      text GENERATED ALWAYS AS (lower(title || ' ' || description || ' ' || file_name)) STORED
);
-- ListPhotos is a keyset scan of one owner's rows in (create_time, id) order, either direction.
CREATE INDEX photos_owner_create_time_id ON photos (owner_id, create_time, id);
