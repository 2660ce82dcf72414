"""What the store refuses, in the store's own terms; the HTTP layer maps these to answers.

    StoreError (message, details)
     ├── RecordMissing     the job, JobRun or run named does not exist
     ├── RecordExists      a create that would overwrite
     ├── CodeOwned         a job defined by the project's code, changed through the API
     └── RecordUnreadable  a stored record that no longer decodes or unseals
"""

from __future__ import annotations

from typing import Any


class StoreError(Exception):
    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class RecordMissing(StoreError):
    pass


class RecordExists(StoreError):
    pass


class CodeOwned(StoreError):
    pass


class RecordUnreadable(StoreError):
    pass
