"""Per-project Python environments: what a project declares, which interpreter runs it, and the
uv-built virtualenv, shared by every project version whose dependencies resolve the same.

``declared`` reads the project's files (pure), ``interpreters`` finds the Pythons on this host,
``plan`` decides (pure), ``index`` names the package index, ``builder`` runs uv, and ``sweep``
removes environments nothing uses any more.
"""
