"""``upload_file_to_s3`` and ``save_file_to_s3``: present so projects import, but not provided."""

from __future__ import annotations

from playwright.async_api import Download, Page

from intunedd.workers.shim.intuned_browser._attachments import Attachment, S3Configs
from intunedd.workers.shim.intuned_browser._downloads import Trigger
from intunedd.workers.shim.intuned_browser._unavailable import needs_hosted_storage

FileType = Download | bytes


async def upload_file_to_s3(
    file: FileType,
    *,
    configs: S3Configs | None = None,
    file_name_override: str | None = None,
    content_type: str | None = None,
) -> Attachment:
    raise needs_hosted_storage("upload_file_to_s3")


async def save_file_to_s3(
    page: Page,
    trigger: Trigger,
    *,
    timeout_s: int = 5,
    configs: S3Configs | None = None,
    file_name_override: str | None = None,
    content_type: str | None = None,
) -> Attachment:
    raise needs_hosted_storage("save_file_to_s3")
