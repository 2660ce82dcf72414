"""Every non-AI helper, under the module path Intuned's own examples import them from."""

from __future__ import annotations

from intunedd.workers.shim.intuned_browser._attachments import Attachment, AttachmentType, S3Configs, UploadedFile
from intunedd.workers.shim.intuned_browser._clicking import click_until_exhausted
from intunedd.workers.shim.intuned_browser._dates import process_date
from intunedd.workers.shim.intuned_browser._dom import wait_for_dom_settled
from intunedd.workers.shim.intuned_browser._downloads import Trigger, download_file
from intunedd.workers.shim.intuned_browser._filtering import filter_empty_values
from intunedd.workers.shim.intuned_browser._markdown import extract_markdown
from intunedd.workers.shim.intuned_browser._navigation import go_to_url
from intunedd.workers.shim.intuned_browser._network import wait_for_network_settled
from intunedd.workers.shim.intuned_browser._sanitize import sanitize_html
from intunedd.workers.shim.intuned_browser._scrolling import scroll_to_load_content
from intunedd.workers.shim.intuned_browser._storage import FileType, save_file_to_s3, upload_file_to_s3
from intunedd.workers.shim.intuned_browser._urls import resolve_url
from intunedd.workers.shim.intuned_browser._validation import ValidationError, validate_data_using_schema

__all__ = [
    "Attachment",
    "AttachmentType",
    "FileType",
    "S3Configs",
    "Trigger",
    "UploadedFile",
    "ValidationError",
    "click_until_exhausted",
    "download_file",
    "extract_markdown",
    "filter_empty_values",
    "go_to_url",
    "process_date",
    "resolve_url",
    "sanitize_html",
    "save_file_to_s3",
    "scroll_to_load_content",
    "upload_file_to_s3",
    "validate_data_using_schema",
    "wait_for_dom_settled",
    "wait_for_network_settled",
]
