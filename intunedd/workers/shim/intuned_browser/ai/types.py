"""The types of Intuned's AI helpers, for projects that annotate with them."""

from __future__ import annotations

from typing import Literal, TypedDict

ImageType = Literal["png", "jpeg", "gif", "webp"]


class TextContentItem(TypedDict):
    type: Literal["text"]
    data: str


class ImageBufferContentItem(TypedDict):
    type: Literal["image-buffer"]
    image_type: ImageType
    data: bytes


class ImageUrlContentItem(TypedDict):
    type: Literal["image-url"]
    image_type: ImageType
    data: str


class ImageObject(TypedDict):
    image_type: ImageType
    data: bytes


ContentItem = TextContentItem | ImageBufferContentItem | ImageUrlContentItem


class DataExtractionError(Exception):
    """AI data extraction failed."""


__all__ = [
    "ContentItem",
    "DataExtractionError",
    "ImageBufferContentItem",
    "ImageObject",
    "ImageUrlContentItem",
    "TextContentItem",
]
