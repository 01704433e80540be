"""The exceptions ``storage`` raises, in one tree.

Every error here is a *known* error: it carries a message fit to show a user as one
line. Message content never raises (ingest degrades to a stored, flagged message);
these are for the profile, the database and the files a user hands us.

    StorageError
    ├── DatabaseUnavailable   the database can't be opened, is not one, or is locked
    ├── NotFound              an id or name that does not exist
    ├── MailboxFormatError    a file to import is not an mbox, Maildir or .eml folder
    ├── AccountExists         (accounts.py) an account of that name exists already
    ├── ActionError           (actions.py) a change that can't be made or undone
    ├── OutboxError           (outbox.py) an outgoing message that can't be changed
    ├── QueryError            (searchquery.py) a search query that can't be parsed
    └── SearchUnavailable     (search.py) the search index can't be read right now
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of storage's known errors; ``str(exc)`` is a one-line user message."""


class DatabaseUnavailable(StorageError):
    pass


class NotFound(StorageError, LookupError):
    pass


class MailboxFormatError(StorageError, ValueError):
    pass
