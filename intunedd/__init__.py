"""intunedd: a self-hosted daemon that runs Playwright automations, Intuned-compatible."""

__version__ = "0.1.0"
__all__ = ["__version__"]
