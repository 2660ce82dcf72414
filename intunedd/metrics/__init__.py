"""Prometheus metrics: counted from committed events (``events``), read from the actors'
statistics at scrape time (``statistics``), each in the daemon's own registry."""
