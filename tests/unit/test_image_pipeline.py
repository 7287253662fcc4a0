"""The image pipeline on real image bytes made here with Pillow: orientation, metadata,
stripping, sizes, formats, and every hostile image ending in a variant or a stated reason."""

from __future__ import annotations

import base64
import io
import math
from datetime import UTC, datetime

import pillow_heif
import pytest
import thumbhash
from PIL import Image, ImageChops, ImageStat

from photovault_server.core.models import ProcessedImage, VariantSpec
from photovault_server.core.processing import UnprocessableImage
from photovault_server.imaging import ImagePipeline
from tests.support.images import (
    animated,
    camera_exif,
    encode,
    halves,
    jpeg,
    png_declaring,
)

SPECS = [VariantSpec("thumb", 32), VariantSpec("preview", 80)]
RED, BLUE = (220, 20, 20), (20, 20, 220)


def run(data: bytes, **options: object) -> ProcessedImage:
    return ImagePipeline(SPECS, **options).process(data)  # type: ignore[arg-type]


def decoded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def near(pixel: object, colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=True))


def test_sizes_are_the_longest_side_and_keep_the_aspect() -> None:
    result = run(jpeg((400, 300)))
    sizes = {v.name: (v.width, v.height) for v in result.variants}
    assert sizes == {"preview": (80, 60), "thumb": (32, 24)}
    for variant in result.variants:
        assert decoded(variant.data).size == (variant.width, variant.height)
        assert decoded(variant.data).format == "WEBP"
    assert (result.metadata.width, result.metadata.height) == (400, 300)


def test_a_small_image_is_never_upscaled() -> None:
    result = run(jpeg((50, 20)))
    sizes = {v.name: (v.width, v.height) for v in result.variants}
    assert sizes == {"preview": (50, 20), "thumb": (32, 13)}


def test_exif_orientation_is_applied_to_variants_and_dimensions() -> None:
    # Orientation 6: the stored image must be turned 90 degrees clockwise to be seen upright,
    # so its left half (red) ends on top.
    data = encode(halves((200, 100), RED, BLUE), "JPEG", exif=camera_exif(orientation=6))
    result = run(data)
    assert (result.metadata.width, result.metadata.height) == (100, 200)
    preview = decoded(next(v for v in result.variants if v.name == "preview").data)
    assert preview.size == (40, 80)
    assert near(preview.convert("RGB").getpixel((20, 5)), RED)
    assert near(preview.convert("RGB").getpixel((20, 75)), BLUE)


def test_metadata_is_read_and_every_block_removed_from_variants() -> None:
    exif = camera_exif(
        taken="2024:07:14 18:30:05",
        offset="+02:00",
        make="Canon",
        model="Canon EOS R5",
        gps=(48.8584, "N", 2.2945, "W"),
    )
    data = encode(
        Image.new("RGB", (120, 90), RED), "JPEG", exif=exif, comment=b"secret", xmp=b"<x>gps</x>"
    )
    result = run(data)
    meta = result.metadata
    assert meta.taken_time == datetime(2024, 7, 14, 16, 30, 5, tzinfo=UTC)
    assert meta.camera == "Canon EOS R5"
    assert meta.location is not None
    assert meta.location.latitude == pytest.approx(48.8584)
    assert meta.location.longitude == pytest.approx(-2.2945)
    for variant in result.variants:
        img = decoded(variant.data)
        assert not img.getexif()
        assert not {"exif", "xmp", "comment", "icc_profile"} & set(img.info)
        assert b"secret" not in variant.data
        assert b"gps" not in variant.data
        assert b"Canon" not in variant.data


def test_a_taken_time_without_offset_is_utc_and_a_bad_one_absent() -> None:
    plain = encode(
        Image.new("RGB", (10, 10)), "JPEG", exif=camera_exif(taken="2020:01:02 03:04:05")
    )
    assert run(plain).metadata.taken_time == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    bad = encode(Image.new("RGB", (10, 10)), "JPEG", exif=camera_exif(taken="0000:00:00 00:00:00"))
    assert run(bad).metadata.taken_time is None
    assert run(bad).metadata.location is None


def test_the_placeholder_is_a_thumbhash_of_the_image() -> None:
    result = run(jpeg((400, 200), RED))
    hashed = list(base64.b64decode(result.metadata.placeholder))
    assert thumbhash.thumb_hash_to_approximate_aspect_ratio(hashed) == pytest.approx(2, rel=0.2)
    r, g, b, _ = thumbhash.thumb_hash_to_average_rgba(hashed)
    assert r > 0.6
    assert g < 0.3
    assert b < 0.3


@pytest.mark.parametrize(
    ("content_type", "pillow_format"),
    [("image/webp", "WEBP"), ("image/jpeg", "JPEG"), ("image/avif", "AVIF")],
)
def test_variant_formats(content_type: str, pillow_format: str) -> None:
    result = run(jpeg((100, 100)), content_type=content_type)
    assert {v.content_type for v in result.variants} == {content_type}
    assert {decoded(v.data).format for v in result.variants} == {pillow_format}


def test_heic_and_avif_originals_get_browser_readable_variants() -> None:
    heif = pillow_heif.from_pillow(Image.new("RGB", (64, 48), BLUE))
    buffer = io.BytesIO()
    heif.save(buffer, format="HEIF", quality=90)
    for original in (buffer.getvalue(), encode(Image.new("RGB", (64, 48), BLUE), "AVIF")):
        result = run(original)
        thumb = decoded(next(v for v in result.variants if v.name == "thumb").data)
        assert thumb.format == "WEBP"
        assert thumb.size == (32, 24)
        assert near(thumb.convert("RGB").getpixel((16, 12)), BLUE)


def test_a_png_with_transparency_keeps_it_in_webp_and_is_flattened_in_jpeg() -> None:
    data = encode(Image.new("RGBA", (40, 40), (0, 0, 0, 0)), "PNG")
    webp = decoded(run(data).variants[0].data)
    assert webp.mode == "RGBA"
    assert webp.getchannel("A").getpixel((5, 5)) == 0
    flat = decoded(run(data, content_type="image/jpeg").variants[0].data)
    assert near(flat.getpixel((5, 5)), (255, 255, 255), tolerance=5)


# Hostile images: each ends in variants or in UnprocessableImage with a reason.


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(UnprocessableImage, match="pixels"):
        run(png_declaring(30_000, 30_000))


def test_the_pixel_limit_is_configurable() -> None:
    with pytest.raises(UnprocessableImage, match="limit of 5000 pixels"):
        run(jpeg((100, 100)), max_pixels=5000)
    assert run(jpeg((50, 100)), max_pixels=5000).variants


def test_a_truncated_jpeg_fails() -> None:
    whole = encode(Image.effect_noise((300, 300), 60).convert("RGB"), "JPEG")
    with pytest.raises(UnprocessableImage, match="corrupt"):
        run(whole[: len(whole) // 2])


def test_magic_bytes_with_a_garbage_body_fail() -> None:
    with pytest.raises(UnprocessableImage):
        run(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 20)
    with pytest.raises(UnprocessableImage):
        run(b"\x89PNG\r\n\x1a\n" + b"garbage" * 100)


def test_a_cmyk_jpeg_becomes_rgb() -> None:
    data = encode(Image.new("CMYK", (60, 40), (0, 255, 255, 0)), "JPEG")
    thumb = decoded(run(data).variants[-1].data).convert("RGB")
    assert near(thumb.getpixel((10, 10)), (255, 0, 0), tolerance=60)


def test_a_16_bit_png_keeps_its_tones() -> None:
    data = encode(Image.new("I;16", (40, 40), 32768), "PNG")
    thumb = decoded(run(data).variants[-1].data).convert("RGB")
    assert near(thumb.getpixel((10, 10)), (128, 128, 128), tolerance=10)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_an_animated_image_gives_its_first_frame(fmt: str) -> None:
    result = run(animated(fmt, [RED, BLUE, BLUE]))
    thumb = decoded(result.variants[-1].data)
    assert getattr(thumb, "n_frames", 1) == 1
    assert near(thumb.convert("RGB").getpixel((10, 10)), RED)


def test_a_10_mb_exif_block_is_read_and_dropped() -> None:
    exif = camera_exif(make="Nikon", model="Z6")
    exif.get_ifd(0x8769)[0x927C] = b"\x00" * (10 * 1024 * 1024)  # MakerNote
    data = encode(Image.new("RGB", (64, 64), RED), "PNG", exif=exif)
    assert len(data) > 10 * 1024 * 1024
    result = run(data)
    assert result.metadata.camera == "Nikon Z6"
    assert all(len(v.data) < 10_000 for v in result.variants)


# Large sources are resized in bands (bounded memory): the result must be the whole-image one.


def _detailed(mode: str, size: tuple[int, int]) -> Image.Image:
    """Noise over a gradient: every band boundary falls on detail."""
    base = Image.linear_gradient("L").resize(size).convert("RGB")
    img = Image.blend(base, Image.effect_noise(size, 64).convert("RGB"), 0.5)
    if mode == "RGBA":
        img.putalpha(Image.linear_gradient("L").resize(size))
    return img


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
@pytest.mark.parametrize("target", [(1600, 1200), (900, 700), (320, 240)])
def test_a_banded_resize_equals_the_whole_image_resize(mode: str, target: tuple[int, int]) -> None:
    from photovault_server.imaging.pipeline import _resize

    source = _detailed(mode, (2000, 1500))
    whole = source.resize(target, Image.Resampling.BICUBIC, reducing_gap=2.0)
    banded = _resize(source, target, Image.Resampling.BICUBIC)
    assert banded.mode == mode
    assert banded.size == target
    # Pillow's filter windows are placed a little differently inside a band (a few levels on
    # pure noise): far closer than bicubic is to Lanczos (~37-45 dB here). A band shifted by one
    # row or left blank scores under 25 dB.
    if mode == "RGBA":  # colour under little alpha is invisible: compare what is seen
        whole, banded = whole.convert("RGBa"), banded.convert("RGBa")
    rms = ImageStat.Stat(ImageChops.difference(whole, banded)).rms
    mse = sum(r * r for r in rms) / len(rms)
    assert mse == 0 or 20 * math.log10(255 / math.sqrt(mse)) >= 45


def test_an_opaque_variant_has_no_alpha_and_a_large_transparent_one_keeps_it() -> None:
    opaque = run(encode(_detailed("RGB", (2400, 1800)), "JPEG"))
    assert all(decoded(v.data).mode == "RGB" for v in opaque.variants)
    clear = Image.new("RGBA", (2400, 1800), (0, 0, 0, 0))
    webp = decoded(run(encode(clear, "PNG")).variants[0].data)
    assert webp.mode == "RGBA"
    assert webp.getchannel("A").getextrema() == (0, 0)
