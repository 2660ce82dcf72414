"""intunedd's own ``intuned_browser``: the browser helpers that Intuned projects import.

Written from Intuned's published documentation of each helper. The browser worker
(``intunedd.workers.child``) registers this package and its submodules under the name
``intuned_browser`` before any project code is imported (see ``top_level_modules``), so
``from intuned_browser import go_to_url`` and ``from intuned_browser.ai import ...`` resolve here
whether or not Intuned's package is installed. The AI helpers and the S3 uploads need Intuned's
hosted services; they raise ``NotProvidedError`` naming themselves.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from types import ModuleType

from intunedd.workers.shim.intuned_browser._unavailable import NotProvidedError
from intunedd.workers.shim.intuned_browser.helpers import (
    Attachment,
    S3Configs,
    ValidationError,
    click_until_exhausted,
    download_file,
    extract_markdown,
    filter_empty_values,
    go_to_url,
    process_date,
    resolve_url,
    sanitize_html,
    save_file_to_s3,
    scroll_to_load_content,
    upload_file_to_s3,
    validate_data_using_schema,
    wait_for_dom_settled,
    wait_for_network_settled,
)

__all__ = [
    "Attachment",
    "NotProvidedError",
    "S3Configs",
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

PUBLIC_NAME = "intuned_browser"


def top_level_modules() -> dict[str, ModuleType]:
    """This package and all its submodules, keyed by the names projects import them as.

    Registering every submodule (not only the package) keeps one copy of each: otherwise
    ``import intuned_browser.ai`` would load the file a second time, with its own classes.
    """
    for module in pkgutil.walk_packages(__path__, prefix=__name__ + "."):
        importlib.import_module(module.name)
    ours = {name: m for name, m in sys.modules.items() if name == __name__ or name.startswith(__name__ + ".")}
    return {PUBLIC_NAME + name.removeprefix(__name__): module for name, module in ours.items()}
