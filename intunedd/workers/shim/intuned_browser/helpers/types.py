"""The record types of Intuned's helpers."""

from __future__ import annotations

from intunedd.workers.shim.intuned_browser._attachments import (
    Attachment,
    AttachmentType,
    S3Configs,
    SignedUrlAttachment,
    UploadedFile,
)
from intunedd.workers.shim.intuned_browser._validation import ValidationError

__all__ = ["Attachment", "AttachmentType", "S3Configs", "SignedUrlAttachment", "UploadedFile", "ValidationError"]
