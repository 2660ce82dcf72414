"""The error for Intuned helpers that need Intuned's hosted services."""

from __future__ import annotations


class NotProvidedError(NotImplementedError):
    """The helper exists so projects import cleanly, but intunedd cannot run it."""


def needs_hosted_ai(name: str) -> NotProvidedError:
    return NotProvidedError(f"{name} needs Intuned's hosted AI services, which intunedd does not provide")


def needs_hosted_storage(name: str) -> NotProvidedError:
    return NotProvidedError(
        f"{name} needs Intuned's hosted file storage, which intunedd does not provide: "
        "get the file with download_file and store it yourself (for example with boto3)"
    )
