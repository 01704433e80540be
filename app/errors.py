"""The application's known errors, in one tree.

A *known* error is one a user can act on: it has a one-line message and the CLI
prints it (``tidings: error: ...``, exit 1) without a traceback. Anything else is a
bug: the CLI says so in one line and shows the traceback only with ``--debug``.
Storage's own known errors (``storage.errors.StorageError``) count as known too.

    TidingsError
    ├── UsageError         a command line that cannot be carried out (exit 2)
    ├── ProfileError       the profile folder can't be used
    ├── SecretError        no keyring, a password command that failed, a missing variable
    ├── ImportError_       a mailbox that can't be read part way through
    ├── ComposeError       (app/compose.py) a bad address, no recipients, an unreadable file
    ├── InviteError        no invitation in the message, a malformed one, one that can't be answered
    ├── UnsubscribeError   no usable unsubscribe method, a server that refused or can't be reached
    ├── AttachmentError    no such attachment, a folder that can't be written
    └── IndexBusy          (app/search.py) another process is rebuilding the search index
"""

from __future__ import annotations


class TidingsError(Exception):
    """Base of the app's known errors; ``str(exc)`` is a one-line user message."""

    exit_code = 1


class UsageError(TidingsError):
    exit_code = 2


class ProfileError(TidingsError):
    pass


class SecretError(TidingsError):
    pass


class ImportError_(TidingsError):  # not the builtin ImportError
    pass


class InviteError(TidingsError):
    pass


class UnsubscribeError(TidingsError):
    pass


class AttachmentError(TidingsError):
    pass
