"""The PyPI distributions ``intuned_browser`` imports at run time, for per-project environments.

Playwright is not listed: the worker itself needs it, so every environment that runs a worker has it.
"""

from __future__ import annotations

RUNTIME_REQUIREMENTS: tuple[str, ...] = ("beautifulsoup4", "jsonschema", "markdownify", "python-dateutil")
