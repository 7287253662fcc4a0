"""Field limits and the checks that enforce them. Every limit here has a test.

Checks collect violations rather than stopping at the first, so a caller learns everything that
is wrong with a request at once (google.rpc.BadRequest carries a list).
"""

from __future__ import annotations

import base64
import binascii
import unicodedata
from collections.abc import Iterable, Sequence
from uuid import UUID

from msgspec import Struct

from .errors import FieldViolation, InvalidArgument
from .models import Visibility

MAX_FILE_NAME_CHARS = 255
MAX_TITLE_CHARS = 200
MAX_DESCRIPTION_CHARS = 2000
MAX_TAGS = 20
MAX_TAG_CHARS = 50
MAX_QUERY_CHARS = 200
MAX_QUERY_WORDS = 10
MAX_CONTENT_TYPE_CHARS = 100
MAX_PAGE_TOKEN_CHARS = 512
MAX_BATCH_IDS = 100
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
CHECKSUM_SHA256_CHARS = 44  # base64 of 32 bytes

# Characters allowed in free text besides printable ones.
_TEXT_WHITESPACE = frozenset("\n\t")
# Bidirectional overrides and isolates let a name display as something else ("gpj.exe").
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class Violations:
    """Accumulates field violations; `raise_if_any` turns them into one InvalidArgument."""

    def __init__(self) -> None:
        self._items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self._items.append(FieldViolation(field, description))

    def __bool__(self) -> bool:
        return bool(self._items)

    def raise_if_any(self) -> None:
        if self._items:
            raise InvalidArgument(self._items)


def _bad_char(text: str, *, allow_whitespace: bool) -> str | None:
    for ch in text:
        if ch in _BIDI_CONTROLS:
            return f"U+{ord(ch):04X} (bidirectional control)"
        category = unicodedata.category(ch)
        if category == "Cc" and not (allow_whitespace and ch in _TEXT_WHITESPACE):
            return f"U+{ord(ch):04X} (control character)"
        if category in ("Cs", "Co", "Cn"):
            return f"U+{ord(ch):04X} (not a character)"
    return None


def check_text(
    v: Violations,
    field: str,
    value: str,
    *,
    max_chars: int,
    required: bool = False,
    multiline: bool = False,
) -> str:
    """Validates free text; returns it with surrounding white space stripped."""
    text = value.strip()
    if required and not text:
        v.add(field, "must not be empty")
        return text
    if len(text) > max_chars:
        v.add(field, f"must be at most {max_chars} characters (got {len(text)})")
        return text
    bad = _bad_char(text, allow_whitespace=multiline)
    if bad:
        v.add(field, f"must not contain {bad}")
    return text


def check_file_name(v: Violations, field: str, value: str) -> str:
    name = check_text(v, field, value, max_chars=MAX_FILE_NAME_CHARS, required=True)
    if any(sep in name for sep in ("/", "\\")):
        v.add(field, "must be a bare file name without '/' or '\\'")
    elif name in (".", ".."):
        v.add(field, "must be a file name, not '.' or '..'")
    return name


def check_tags(v: Violations, field: str, values: Sequence[str]) -> tuple[str, ...]:
    """Tags are compared case-insensitively: stored lower-cased, stripped, de-duplicated."""
    if len(values) > MAX_TAGS:
        v.add(field, f"must have at most {MAX_TAGS} tags (got {len(values)})")
        return ()
    tags: dict[str, None] = {}
    for i, raw in enumerate(values):
        tag = raw.strip().lower()
        if not tag:
            v.add(f"{field}[{i}]", "must not be empty")
        elif len(tag) > MAX_TAG_CHARS:
            v.add(f"{field}[{i}]", f"must be at most {MAX_TAG_CHARS} characters")
        elif (bad := _bad_char(tag, allow_whitespace=False)) is not None:
            v.add(f"{field}[{i}]", f"must not contain {bad}")
        else:
            tags[tag] = None
    return tuple(tags)


def check_content_type(
    v: Violations, field: str, value: str, allowed: Iterable[str], *, required: bool = True
) -> str:
    content_type = value.strip().lower()
    allowed = tuple(allowed)
    if not content_type:
        if required:
            v.add(field, "must be one of " + ", ".join(allowed))
        return content_type
    if len(content_type) > MAX_CONTENT_TYPE_CHARS or content_type not in allowed:
        shown = content_type[:MAX_CONTENT_TYPE_CHARS].encode("unicode_escape").decode()
        v.add(field, f"'{shown}' is not allowed; use one of " + ", ".join(allowed))
    return content_type


def check_checksum(v: Violations, field: str, value: str) -> str:
    """Optional base64 SHA-256 (what S3's x-amz-checksum-sha256 takes)."""
    if not value:
        return ""
    try:
        ok = (
            len(value) == CHECKSUM_SHA256_CHARS
            and len(base64.b64decode(value, validate=True)) == 32
        )
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        v.add(field, "must be the base64 SHA-256 of the bytes (44 characters)")
    return value


def check_id(v: Violations, field: str, value: str) -> UUID | None:
    """Ids are canonical UUID strings; anything else is malformed (INVALID_ARGUMENT), while a
    well-formed unknown id is NOT_FOUND later."""
    if len(value) == 36:
        try:
            parsed = UUID(value)
        except ValueError:
            pass
        else:
            if str(parsed) == value.lower():
                return parsed
    if not value:
        v.add(field, "is required")
    else:
        v.add(field, "must be a UUID like 1b4e28ba-2fa1-11d2-883f-0016d3cca427")
    return None


def check_visibility(
    v: Violations, field: str, value: int, *, allow_unspecified: bool
) -> Visibility:
    try:
        visibility = Visibility(value)
    except ValueError:
        v.add(field, f"unknown visibility {value}")
        return Visibility.UNSPECIFIED
    if visibility is Visibility.UNSPECIFIED and not allow_unspecified:
        v.add(field, "must be VISIBILITY_PRIVATE or VISIBILITY_PUBLIC")
    return visibility


def query_words(v: Violations, field: str, value: str) -> tuple[str, ...]:
    text = check_text(v, field, value, max_chars=MAX_QUERY_CHARS)
    words = tuple(dict.fromkeys(w.lower() for w in text.split()))
    if len(words) > MAX_QUERY_WORDS:
        v.add(field, f"must have at most {MAX_QUERY_WORDS} words")
    return words


def check_page_size(v: Violations, field: str, value: int) -> int:
    """0 means the default; larger than the maximum is coerced down (AIP-158); negative is wrong."""
    if value < 0:
        v.add(field, "must not be negative")
        return DEFAULT_PAGE_SIZE
    if value == 0:
        return DEFAULT_PAGE_SIZE
    return min(value, MAX_PAGE_SIZE)


class NewUpload(Struct, frozen=True):
    """A new upload's request fields, checked: the single-PUT and the multipart RPCs alike."""

    file_name: str
    content_type: str
    checksum_sha256: str


def check_new_upload(
    *,
    file_name: str,
    content_type: str,
    size_bytes: int,
    checksum_sha256: str,
    skip_if_duplicate: bool,
    allowed_types: Sequence[str],
    max_bytes: int,
) -> NewUpload:
    """Every field of CreateUploadUrl / CreateMultipartUpload; raises InvalidArgument naming
    each bad one."""
    v = Violations()
    name = check_file_name(v, "file_name", file_name)
    kind = check_content_type(v, "content_type", content_type, allowed_types)
    if size_bytes <= 0:
        v.add("size_bytes", "must be the exact size of the file in bytes (at least 1)")
    elif size_bytes > max_bytes:
        v.add("size_bytes", f"must be at most {max_bytes} bytes")
    checksum = check_checksum(v, "checksum_sha256", checksum_sha256)
    if skip_if_duplicate and not checksum_sha256:
        v.add("checksum_sha256", "is required with skip_if_duplicate: the duplicate's checksum")
    v.raise_if_any()
    return NewUpload(name, kind, checksum)
