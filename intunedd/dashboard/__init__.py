"""The dashboard: server-rendered pages at ``/`` over the same typed reads and handles as the API."""
