"""The file types Intuned projects pass around: ``Attachment`` and its S3 settings.

intunedd stores no files, so these are plain records: a project can build, validate and return
them, but signed URLs (which need the file in Intuned's or the user's storage) are not provided.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any, ClassVar

from intunedd.workers.shim.intuned_browser._unavailable import needs_hosted_storage


class AttachmentType(StrEnum):
    DOCUMENT = "document"


@dataclass(kw_only=True)
class S3Configs:
    access_key: str | None = None
    secret_key: str | None = None
    bucket_name: str | None = None
    region: str | None = None
    endpoint: str | None = None


@dataclass(kw_only=True)
class Attachment:
    """A stored file: where it is (``key`` in ``bucket``) and the name to offer for it."""

    file_name: str
    key: str
    suggested_file_name: str
    file_type: AttachmentType = AttachmentType.DOCUMENT
    bucket: str | None = None
    region: str | None = None
    endpoint: str | None = None

    REQUIRED_FIELDS: ClassVar[tuple[str, ...]] = ("file_name", "key", "suggested_file_name")

    def to_dict(self) -> dict[str, str]:
        """The fields that are set, as JSON-ready strings."""
        return {
            field.name: str(value.value if isinstance(value, Enum) else value)
            for field in dataclasses.fields(self)
            if (value := getattr(self, field.name)) is not None
        }

    def model_dump(self, **_options: Any) -> dict[str, str]:
        """Pydantic's name for ``to_dict``; Intuned's Attachment is a pydantic model."""
        return self.to_dict()

    def __json__(self) -> dict[str, str]:
        return self.to_dict()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attachment:
        names = {field.name for field in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in names}
        if "file_type" in values:
            values["file_type"] = AttachmentType(values["file_type"])
        return cls(**values)

    def get_s3_key(self) -> str:
        """The file's URL in its bucket (``https://bucket.s3.region.amazonaws.com/key`` on AWS)."""
        if self.endpoint:
            return f"{self.endpoint.rstrip('/')}/{self.bucket}/{self.key}"
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{self.key}"

    async def get_signed_url(self, expiration: int = 432000) -> str:
        raise needs_hosted_storage("Attachment.get_signed_url")


@dataclass(kw_only=True)
class SignedUrlAttachment(Attachment):
    """A file in Intuned's storage, reachable through a pre-signed URL."""

    signed_url: str

    async def get_signed_url(self, expiration: int = 604800) -> str:
        return self.signed_url

    def get_s3_key(self) -> str:
        return self.signed_url


@dataclass(kw_only=True)
class UploadedFile:
    """The older name Intuned used for an uploaded file's location."""

    file_name: str
    bucket: str
    region: str
    endpoint: str | None = None
    suggested_file_name: str
