"""``intunedd`` command line: run the daemon, create API keys, and drive the HTTP API.

The client commands mirror ``intuned platform …`` (spec §9) so scripts and habits carry over: the
same nouns and verbs, the same ``-l/-o/-f`` flags, ``--json`` for machine output and the same
default file names for attempt logs and traces.

Every request goes through one ``httpx.Client`` built by ``CliContext.client_factory``; tests pass
a ``CliContext`` whose factory adds an ``httpx.MockTransport``, so nothing is patched. Failures are
printed as ``error: <message> (<code>)`` on stderr with exit status 1; usage errors keep click's
own format and exit status 2.
"""

from .context import CliContext
from .main import cli, main

__all__ = ["CliContext", "cli", "main"]
