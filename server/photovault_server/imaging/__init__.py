"""Image decoding and encoding (Pillow, pillow-heif): the worker's pure part."""

from .pipeline import VARIANT_FORMATS, ImagePipeline, variant_extension

__all__ = ["VARIANT_FORMATS", "ImagePipeline", "variant_extension"]
