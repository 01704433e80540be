"""The ``tidings`` command line.

The contract (other parts of Tidings and users' scripts rely on it):

- ``--home DIR`` (or ``$TIDINGS_HOME``) picks the profile; ``--debug`` shows
  tracebacks. Exit codes: 0 success, 2 usage error, 1 failure with one line on stderr.
- ``--json`` output is one JSON object per line, keys as documented per command.

Only ``argparse`` is imported at start-up; each command imports what it needs, so
``tidings --help`` answers in a few tens of milliseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from app.errors import SecretError, TidingsError, UsageError
from storage.errors import StorageError
from sync.errors import SyncError

if TYPE_CHECKING:
    from datetime import datetime

    from app.searchserver import Answer
    from app.services import Services
    from storage.dto import FolderInfo, MessageDetail, MessageSummary

PROG = "tidings"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: usage error: {message}\n(see '{self.prog} --help')\n")


class _Unbuilt:
    """Stands in for the parser of a command that is not being run: it takes any
    ``add_argument``-like call and drops it (see :class:`_OneCommand`)."""

    def __getattr__(self, name: str) -> Callable[..., _Unbuilt]:
        return lambda *args, **kwargs: self


class _OneCommand(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Builds only the parser of the command being run. Every argparse parser costs
    ~1 ms to make (argparse looks up translations for its help texts each time), and
    ``tidings search`` has a latency budget that includes the process start."""

    only: str | None = None

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if self.only is not None and name != self.only:
            return _Unbuilt()
        return super().add_parser(name, **kwargs)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or (``only``) the top level and one command."""
    p = _Parser(prog=PROG, description="Tidings: local-first mail from the command line.")
    p.register("action", "parsers", _OneCommand)
    p.add_argument("--home", metavar="DIR", help="profile folder (default: $TIDINGS_HOME)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    assert isinstance(sub, _OneCommand)
    sub.only = only

    a = sub.add_parser("account", help="add, list or remove accounts")
    asub = a.add_subparsers(dest="account_command", metavar="ACTION", parser_class=_Parser)
    asub.required = True
    add = asub.add_parser("add", help="add an account")
    add.add_argument("name")
    add.add_argument("--email", required=True, metavar="ADDR")
    add.add_argument("--display-name", default="", metavar="NAME")
    add.add_argument("--imap-host", metavar="H")
    add.add_argument("--imap-port", type=_port, metavar="P")
    add.add_argument("--imap-security", choices=("ssl", "starttls", "none"))
    add.add_argument("--username", metavar="U")
    add.add_argument("--smtp-host", metavar="H")
    add.add_argument("--smtp-port", type=_port, metavar="P")
    add.add_argument("--smtp-security", choices=("ssl", "starttls", "none"))
    add.add_argument("--ca-file", metavar="PEM", help="trust this CA (private servers)")
    add.add_argument(
        "--server-files-sent",
        action="store_true",
        help="the server files sent mail itself (do not append to Sent)",
    )
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--password-env", metavar="VAR", help="read the password from $VAR")
    secret.add_argument("--password-cmd", metavar="CMD", help="run CMD to get the password")
    secret.add_argument(
        "--oauth2-token-cmd", metavar="CMD", help="run CMD to get an OAuth2 token (XOAUTH2)"
    )
    al = asub.add_parser("list", help="list accounts")
    al.add_argument("--json", action="store_true")
    ar = asub.add_parser("remove", help="remove an account and its local mail")
    ar.add_argument("name")

    f = sub.add_parser("folders", help="list folders with counts")
    f.add_argument("--account", metavar="NAME")
    f.add_argument("--json", action="store_true")

    ls = sub.add_parser("list", help="list messages, newest first")
    ls.add_argument("--account", metavar="NAME")
    ls.add_argument("--folder", metavar="NAME")
    ls.add_argument("--limit", type=_positive, default=50, metavar="N")
    ls.add_argument("--unread", action="store_true", help="only unread messages")
    ls.add_argument("--json", action="store_true")

    sh = sub.add_parser("show", help="show one message")
    sh.add_argument("id", type=_positive, metavar="ID")
    how = sh.add_mutually_exclusive_group()
    how.add_argument("--json", action="store_true")
    how.add_argument("--raw", action="store_true", help="the exact stored bytes")
    how.add_argument("--text", action="store_true", help="the text body only")
    sh.add_argument("--invite", action="store_true", help="the calendar invitation in it")
    sh.add_argument("--save-ics", metavar="PATH", help="with --invite: export it as a .ics file")

    im = sub.add_parser("import", help="import an mbox file, a Maildir or .eml files")
    im.add_argument("path", metavar="PATH")
    im.add_argument("--account", metavar="NAME")
    im.add_argument("--folder", metavar="NAME")

    sy = sub.add_parser("sync", help="sync IMAP accounts (once, or --watch to stay up)")
    sy.add_argument("--account", metavar="NAME")
    sy.add_argument("--folder", metavar="NAME", help="only this folder (with --once)")
    mode = sy.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="sync and exit (the default)")
    mode.add_argument("--watch", action="store_true", help="stay up: IDLE, poll, reconnect")
    sy.add_argument("--events", action="store_true", help="print one JSON event per line")
    sy.add_argument(
        "--poll",
        type=_seconds,
        default=300.0,
        metavar="SECONDS",
        help="with --watch: seconds between syncs of every folder (default 300)",
    )

    mk = sub.add_parser("mark", help="mark messages read, unread, starred or not")
    mk.add_argument("ids", nargs="+", type=_positive, metavar="ID")
    what = mk.add_mutually_exclusive_group(required=True)
    for flag in ("read", "unread", "flag", "unflag"):
        what.add_argument(f"--{flag}", action="store_true")
    mv = sub.add_parser("move", help="move messages to a folder")
    mv.add_argument("ids", nargs="+", type=_positive, metavar="ID")
    mv.add_argument("folder", metavar="FOLDER")
    mv.add_argument("--account", metavar="NAME", help="when the folder name is ambiguous")
    for name, text in (("archive", "archive messages"), ("delete", "delete (to Trash)")):
        one = sub.add_parser(name, help=text)
        one.add_argument("ids", nargs="+", type=_positive, metavar="ID")
    sub.add_parser("undo", help="undo the last change")
    ac = sub.add_parser("actions", help="changes waiting for the server, and failed ones")
    ac.add_argument("verb", nargs="?", choices=("retry", "discard"))
    ac.add_argument("id", nargs="?", type=_positive, metavar="ID")
    ac.add_argument("--all", action="store_true", help="with retry: every waiting or failed one")
    ac.add_argument("--json", action="store_true")

    se = sub.add_parser("send", help="compose a message into the outbox (and send it)")
    se.add_argument("--account", required=True, metavar="NAME")
    se.add_argument("--to", nargs="+", default=[], metavar="ADDR")
    se.add_argument("--cc", nargs="+", default=[], metavar="ADDR")
    se.add_argument("--bcc", nargs="+", default=[], metavar="ADDR")
    se.add_argument("--subject", metavar="S")
    body = se.add_mutually_exclusive_group()
    body.add_argument("--body", metavar="TEXT")
    body.add_argument("--body-file", metavar="F")
    body.add_argument("--html-file", metavar="F")
    se.add_argument("--attach", nargs="+", default=[], metavar="F")
    ref = se.add_mutually_exclusive_group()
    ref.add_argument("--reply-to-id", type=_positive, metavar="ID")
    ref.add_argument("--reply-all-to-id", type=_positive, metavar="ID")
    ref.add_argument("--forward-id", type=_positive, metavar="ID")
    ref.add_argument("--forward-as-attachment-id", type=_positive, metavar="ID")
    when = se.add_mutually_exclusive_group()
    when.add_argument(
        "--at", metavar="ISO8601", help="send later (local time unless a zone is given)"
    )
    when.add_argument("--now", action="store_true", help="skip the undo window and try at once")

    ob = sub.add_parser("outbox", help="outgoing mail: list, cancel, retry")
    ob.add_argument("verb", nargs="?", choices=("cancel", "retry"))
    ob.add_argument("id", nargs="?", type=_positive, metavar="ID")
    ob.add_argument("--all", action="store_true", help="with retry: every waiting or failed one")
    ob.add_argument("--json", action="store_true")

    sub.add_parser("demo", help="create (or refresh) the demo profile")

    sr = sub.add_parser(
        "search",
        help="search all mail offline (Gmail's operators: from: is:unread after: ...)",
        description='Search all mail offline, newest first. Operators: words, "phrases", '
        "from: to: cc: subject: filename:, in:FOLDER (inbox, sent, drafts, trash, spam, "
        "archive, anywhere), is:read|unread|starred|unstarred|answered|draft, "
        "has:attachment, after:/before:YYYY-MM-DD, newer_than:/older_than:7d|2w|6m|1y, "
        "larger:/smaller:5M, account:NAME, OR, -negation, (parentheses).",
    )
    sr.add_argument("query", nargs="+", metavar="QUERY")
    sr.add_argument("--account", metavar="NAME")
    sr.add_argument("--limit", type=_positive, default=50, metavar="N")
    sr.add_argument("--sort", choices=("date", "relevance"), default="date")
    sr.add_argument("--json", action="store_true")
    sr.add_argument("--save", metavar="NAME", help="save the query as a smart folder")
    sub.add_parser("reindex", help="rebuild the search index from the local mail")
    _add_rich_commands(sub)
    return p


def _seconds(value: str) -> float:
    try:
        n = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0.1 <= n <= 86400:
        raise argparse.ArgumentTypeError(f"out of range (0.1 to 86400): {value}")
    return n


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {value}")
    return n


def _port(value: str) -> int:
    n = _positive(value)
    if n > 65535:
        raise argparse.ArgumentTypeError(f"not a port: {value}")
    return n


# -- output -------------------------------------------------------------------------------


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _json_line(obj: dict[str, Any]) -> None:
    _out(json.dumps(obj, ensure_ascii=False))


def summary_json(m: MessageSummary) -> dict[str, Any]:
    return {
        "id": m.id,
        "account": m.account,
        "date": m.date.isoformat() if m.date else None,
        "from": m.sender.display(),
        "from_email": m.sender.email,
        "to": [a.display() for a in m.to],
        "subject": m.subject,
        "folders": list(m.folders),
        "flags": list(m.flags),
        "has_attachments": m.has_attachments,
        "snippet": m.snippet,
        "thread_id": m.thread_id,
        "size": m.size,
        "malformed": m.malformed,
    }


def _folder_json(f: FolderInfo) -> dict[str, Any]:
    return {
        "id": f.id,
        "account": f.account,
        "name": f.name,
        "role": f.role,
        "total": f.total,
        "unread": f.unread,
        "sync_state": f.sync_state,
        "last_error": f.last_error,
        "next_retry": f.next_retry.isoformat() if f.next_retry else None,
    }


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _local_date(m: MessageSummary) -> str:
    return m.date.astimezone().strftime("%Y-%m-%d %H:%M") if m.date else "(no date)".ljust(16)


# -- commands ----------------------------------------------------------------------------


def cmd_account(args: argparse.Namespace, svc: Services) -> int:
    from app import secrets
    from storage.accounts import NewAccount

    if args.account_command == "list":
        for a in svc.accounts():
            if args.json:
                _json_line(
                    {
                        "name": a.name,
                        "email": a.email,
                        "display_name": a.display_name,
                        "kind": a.kind,
                        "imap": f"{a.imap_host}:{a.imap_port}" if a.imap_host else None,
                        "imap_security": a.imap_security,
                        "smtp": f"{a.smtp_host}:{a.smtp_port}" if a.smtp_host else None,
                        "smtp_security": a.smtp_security,
                        "username": a.username,
                        "secret": a.secret_source,
                    }
                )
            else:
                where = f"  imap {a.imap_host}:{a.imap_port}" if a.imap_host else "  (local)"
                _out(f"{a.name}  <{a.email}>{where}")
        return 0
    if args.account_command == "remove":
        info = svc.remove_account(args.name)
        secrets.forget(info)
        _out(f"removed account {info.name}")
        return 0

    if "@" not in args.email or args.email.startswith("@") or args.email.endswith("@"):
        raise UsageError(f"not an email address: {args.email!r}")
    imap_security = args.imap_security or ("ssl" if args.imap_host else None)
    imap_port = args.imap_port or (
        {"ssl": 993, "starttls": 143, "none": 143}.get(imap_security or "")
    )
    smtp_security = args.smtp_security or ("ssl" if args.smtp_host else None)
    smtp_port = args.smtp_port or (
        {"ssl": 465, "starttls": 587, "none": 25}.get(smtp_security or "")
    )
    server = bool(args.imap_host or args.smtp_host)
    source: str = "none"
    ref: str | None = None
    typed: str | None = None
    if args.password_env:
        source, ref = "env", args.password_env
    elif args.password_cmd:
        source, ref = "command", args.password_cmd
    elif args.oauth2_token_cmd:
        source, ref = "command", args.oauth2_token_cmd
    elif server:
        if not secrets.keyring_usable():
            raise SecretError(
                "no system keyring is available to store the password; "
                "use --password-cmd 'pass show ...' or --password-env VAR instead"
            )
        if not sys.stdin.isatty():
            raise UsageError(
                "no terminal to ask for the password: use --password-env or --password-cmd"
            )
        import getpass

        typed = getpass.getpass(f"Password for {args.username or args.email}: ")
        source, ref = "keyring", f"{args.name}:{args.username or args.email}"
    new = NewAccount(
        name=args.name,
        email=args.email,
        display_name=args.display_name,
        imap_host=args.imap_host,
        imap_port=imap_port if args.imap_host else None,
        imap_security=imap_security,
        smtp_host=args.smtp_host,
        smtp_port=smtp_port if args.smtp_host else None,
        smtp_security=smtp_security,
        username=args.username or (args.email if server else None),
        auth="oauth2" if args.oauth2_token_cmd else "password",
        secret_source=source,
        secret_ref=ref,
        ca_file=args.ca_file,
        server_files_sent=args.server_files_sent,
    )
    # Check the name before the keyring is written, so a failure leaves nothing behind.
    if any(a.name == args.name for a in svc.accounts()):
        from storage.accounts import AccountExists

        raise AccountExists(f"an account named {args.name!r} exists already")
    if typed is not None and ref is not None:
        secrets.store_in_keyring(ref, typed)
    info = svc.add_account(new)
    _out(f"added account {info.name} <{info.email}>")
    return 0


def cmd_folders(args: argparse.Namespace, svc: Services) -> int:
    for f in svc.folders(args.account):
        if args.json:
            _json_line(_folder_json(f))
        else:
            role = f" [{f.role}]" if f.role else ""
            state = f"  ({f.sync_state}: {f.last_error})" if f.last_error else ""
            _out(f"{f.account}  {f.name}{role}  {f.unread} unread / {f.total}{state}")
    for saved in svc.saved_searches():  # smart folders
        if args.json:
            _json_line({"kind": "saved_search", "name": saved.name, "query": saved.query})
        else:
            _out(f"saved search  {saved.name}  ({saved.query})")
    return 0


def cmd_list(args: argparse.Namespace, svc: Services) -> int:
    rows = svc.list_messages(
        account=args.account, folder=args.folder, limit=args.limit, unread_only=args.unread
    )
    _print_messages(rows, args.json)
    return 0


def cmd_show(args: argparse.Namespace, svc: Services) -> int:
    if args.invite or args.save_ics:
        return cmd_show_invite(args, svc)
    if args.raw:
        data = svc.raw(args.id)
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return 0
    if args.text:
        svc.message(args.id)  # a clear error for an unknown id
        _out(svc.text(args.id))
        return 0
    d = svc.message(args.id)
    text = svc.text(args.id)
    if args.json:
        obj = summary_json(d.summary)
        obj.update(_detail_json(d))
        obj["text"] = text
        _json_line(obj)
        return 0
    m = d.summary
    _out(f"From:    {m.sender.display()}")
    _out(f"To:      {', '.join(a.display() for a in m.to)}")
    if d.cc:
        _out(f"Cc:      {', '.join(a.display() for a in d.cc)}")
    _out(f"Date:    {_local_date(m)}")
    _out(f"Subject: {m.subject}")
    _out(f"Folders: {', '.join(m.folders)}    Flags: {' '.join(m.flags) or '-'}")
    for att in d.attachments:
        if att.filename:
            _out(f"Attach:  {att.filename} ({att.content_type}, {_size(att.size)})")
    if d.defects:
        _out(f"Note:    malformed message ({'; '.join(d.defects)})")
    _out()
    _out(text)
    return 0


def _detail_json(d: MessageDetail) -> dict[str, Any]:
    return {
        "cc": [a.display() for a in d.cc],
        "reply_to": [a.display() for a in d.reply_to],
        "message_id": d.message_id,
        "in_reply_to": list(d.in_reply_to),
        "references": list(d.references),
        "list_id": d.list_id,
        "list_unsubscribe": d.list_unsubscribe,
        "content_type": d.content_type,
        "attachments": [
            {
                "part": a.part_id,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "inline": a.inline,
            }
            for a in d.attachments
        ],
        "defects": list(d.defects),
    }


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n} {unit}" if unit == "B" else f"{n:.0f} {unit}"
        n //= 1024
    return f"{n} GB"


def _progress_bar() -> Callable[[str, int, int | None], None]:
    """A tqdm bar per stage on a terminal; nothing when stderr is not one."""
    if not sys.stderr.isatty():
        return lambda stage, done, total: None
    from tqdm import tqdm

    bars: dict[str, Any] = {}
    labels = {"import": ("reading", "B"), "content": ("parsing", " msg")}

    def update(stage: str, done: int, total: int | None) -> None:
        bar = bars.get(stage)
        if bar is None:
            desc, unit = labels.get(stage, (stage, " msg"))
            for other in bars.values():
                other.close()
            bar = bars[stage] = tqdm(
                total=total,
                desc=desc,
                unit=unit.strip() or "it",
                unit_scale=unit == "B",
                leave=False,
                file=sys.stderr,
            )
        bar.update(done - bar.n)

    return update


def cmd_import(args: argparse.Namespace, svc: Services) -> int:
    from pathlib import Path

    from app.importer import import_path

    s = import_path(
        svc, Path(args.path), account=args.account, folder=args.folder, progress=_progress_bar()
    )
    _out(
        f"imported {s.imported}, skipped {s.skipped} (already there), "
        f"flagged as malformed {s.malformed} — into {s.account}: {', '.join(s.folders) or '-'}"
    )
    return 0


def format_messages(rows: Sequence[MessageSummary], as_json: bool) -> str:
    """Messages as ``list`` and ``search`` print them (lines, or JSON lines)."""
    lines = []
    for m in rows:
        if as_json:
            lines.append(json.dumps(summary_json(m), ensure_ascii=False))
        else:
            mark = ("*" if "flagged" in m.flags else " ") + (" " if "seen" in m.flags else "N")
            att = "@" if m.has_attachments else " "
            sender = _clip(m.sender.name or m.sender.email or "(unknown)", 24).ljust(24)
            lines.append(
                f"{m.id:>7} {mark}{att} {_local_date(m)}  {sender}  {_clip(m.subject, 60)}"
            )
    return "".join(line + "\n" for line in lines)


def _print_messages(rows: Sequence[MessageSummary], as_json: bool) -> None:
    sys.stdout.write(format_messages(rows, as_json))


def cmd_search(args: argparse.Namespace, svc: Services) -> int:
    from app import search

    query = " ".join(args.query)
    if args.save:
        if args.account:
            query = f'account:"{args.account}" ({query})'
        saved = svc.save_search(args.save, query)
        _out(f"saved search {saved.name}: {saved.query}")
        return 0
    bar = _progress_bar()
    search.catch_up(
        svc,
        progress=lambda done, total: bar("indexing", done, total),
        notice=lambda text: print(f"{PROG}: {text}", file=sys.stderr),
    )
    from storage.search import SearchUnavailable

    def run() -> list[MessageSummary]:
        return svc.search(query, account=args.account, limit=args.limit, sort=args.sort)

    try:
        rows = run()
    except SearchUnavailable:  # found damaged while reading: rebuild, then answer
        search.catch_up(svc, notice=lambda text: print(f"{PROG}: {text}", file=sys.stderr))
        rows = run()
    _print_messages(rows, args.json)
    return 0


def _quick_search(args: argparse.Namespace, home: Path) -> bool:
    """``tidings search`` without SQLAlchemy (app/search.py); False: take the full path."""
    from app.search import quick_search

    rows = quick_search(
        home, " ".join(args.query), account=args.account, limit=args.limit, sort=args.sort
    )
    if rows is None:
        return False
    _print_messages(rows, args.json)
    return True


def _ask_search_server(args: argparse.Namespace, home: Path) -> Answer | None:
    """The profile's search server's answer (app/searchserver.py), or None."""
    from app import searchserver

    return searchserver.ask(
        home,
        " ".join(args.query),
        account=args.account,
        limit=args.limit,
        sort=args.sort,
        as_json=args.json,
    )


def _start_search_server(home: Path) -> None:
    """After answering: start the profile's search server for the searches to come."""
    from app import searchserver

    sys.stdout.flush()
    searchserver.start(home)


def cmd_reindex(args: argparse.Namespace, svc: Services) -> int:
    import time

    from app import search

    bar = _progress_bar()
    started = time.monotonic()
    run = search.reindex(svc, progress=lambda done, total: bar("indexing", done, total))
    _out(f"indexed {run.indexed} messages in {time.monotonic() - started:.1f} s")
    return 0


def cmd_demo(args: argparse.Namespace, svc: Services) -> int:
    from app.demo import build_demo

    s = build_demo(svc, _progress_bar())
    _out(f"demo profile ready at {svc.profile.home}: {s.messages} messages in {s.folders} folders")
    return 0


def _event_printer(args: argparse.Namespace) -> Callable[[dict[str, Any]], None]:
    import threading

    lock = threading.Lock()
    bar = _progress_bar() if not args.events else None

    def emit(event: dict[str, Any]) -> None:
        with lock:
            if args.events:
                sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
                sys.stdout.flush()
            elif event["event"] == "progress" and bar is not None:
                bar(f"{event['account']}/{event['folder']}", event["done"], event["total"])
            elif event["event"] == "error" and args.watch:
                sys.stderr.write(f"{PROG}: {event['account']}: {event['message']}\n")

    return emit


def _quick_sync(args: argparse.Namespace, db_path: Path) -> bool:
    """The no-change fast path (app/quicksync.py): True when nothing had to be done."""
    from app.quicksync import nothing_changed

    emit = _event_printer(args)
    summaries: list[dict[str, Any]] = []

    def collect(event: dict[str, Any]) -> None:
        if event["event"] == "summary":
            summaries.append(event)
        else:
            emit(event)

    if not nothing_changed(db_path, args.account, args.folder, collect):
        return False
    if not args.events:
        for ev in summaries:
            _out(
                f"{ev['account']}: 0 new, 0 found again, 0 removed, 0 flag changes "
                f"in {ev['folders']} folders"
            )
    return True


def cmd_sync(args: argparse.Namespace, svc: Services) -> int:
    from app import syncing

    emit = _event_printer(args)

    if args.watch:
        import contextlib
        import os
        import signal

        watcher = syncing.Watcher(
            svc, syncing.imap_accounts(svc, args.account), emit=emit, poll_interval=args.poll
        )

        def on_signal(signum: int, frame: object) -> None:
            del signum, frame
            watcher.stop()

        def on_nudge(signum: int, frame: object) -> None:
            del signum, frame
            watcher.nudge()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGUSR1, on_nudge)
        from app.services import WORKER_PID

        pidfile = svc.profile.home / WORKER_PID
        pidfile.write_text(f"{os.getpid()}\n")
        try:
            watcher.run()
        finally:
            with contextlib.suppress(OSError):
                if pidfile.read_text().strip() == str(os.getpid()):
                    pidfile.unlink()
        return 0

    summary = syncing.sync_once(svc, account=args.account, folder=args.folder, emit=emit)
    if not args.events:
        for r in summary.results:
            removed = sum(f.removed for f in r.folders)
            flags = sum(f.flags_changed for f in r.folders)
            matched = sum(f.matched for f in r.folders)
            _out(
                f"{r.account}: {r.added} new, {matched} found again, {removed} removed, "
                f"{flags} flag changes in {len(r.folders)} folders"
            )
    for err in summary.errors:
        sys.stderr.write(f"{PROG}: error: {err}\n")
    return 1 if summary.errors else 0


def cmd_mark(args: argparse.Namespace, svc: Services) -> int:
    flag, value = {
        "read": ("seen", True),
        "unread": ("seen", False),
        "flag": ("flagged", True),
        "unflag": ("flagged", False),
    }[next(k for k in ("read", "unread", "flag", "unflag") if getattr(args, k))]
    n = svc.mark(args.ids, flag, value)
    _out(f"changed {n} location(s); queued for the server")
    return 0


def cmd_move(args: argparse.Namespace, svc: Services) -> int:
    n = svc.move(args.ids, args.folder, args.account)
    _out(f"moved {n} message(s) to {args.folder}")
    return 0


def cmd_archive(args: argparse.Namespace, svc: Services) -> int:
    _out(f"archived {svc.archive(args.ids)} message(s)")
    return 0


def cmd_delete(args: argparse.Namespace, svc: Services) -> int:
    _out(f"deleted {svc.delete(args.ids)} message(s)")
    return 0


def cmd_undo(args: argparse.Namespace, svc: Services) -> int:
    _out(f"undone: {svc.undo()}")
    return 0


def cmd_actions(args: argparse.Namespace, svc: Services) -> int:
    if args.verb == "retry":
        if args.id is None and not args.all:
            raise UsageError("actions retry needs an ID or --all")
        n = svc.retry_action(None if args.all else args.id)
        _out(f"{n} action(s) will be tried now")
        return 0
    if args.verb == "discard":
        if args.id is None:
            raise UsageError("actions discard needs an ID")
        svc.discard_action(args.id)
        _out(f"discarded action {args.id}")
        return 0
    for a in svc.actions():
        if args.json:
            _json_line(
                {
                    "id": a.id,
                    "account": a.account,
                    "message_id": a.message_id,
                    "folder": a.folder,
                    "kind": a.kind,
                    "change": a.summary,
                    "state": a.state,
                    "attempts": a.attempts,
                    "next_attempt": a.next_attempt.isoformat() if a.next_attempt else None,
                    "last_error": a.last_error,
                }
            )
        else:
            err = f"  ({a.last_error})" if a.last_error else ""
            where = f"msg {a.message_id} in {a.folder}"
            _out(f"{a.id:>6} {a.state:<8} {a.kind:<7} {where}: {a.summary}{err}")
    return 0


def _read_file(path: str, what: str) -> bytes:
    from pathlib import Path

    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def _send_time(value: str | None, now: bool) -> datetime | None:
    from datetime import UTC, datetime

    if now:
        return datetime.now(UTC)
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"not an ISO 8601 time: {value!r} (e.g. 2026-12-01T09:00)") from None
    return when if when.tzinfo else when.astimezone()


def cmd_send(args: argparse.Namespace, svc: Services) -> int:
    from dataclasses import replace

    from app import compose

    account = svc.account(args.account)
    identity = compose.Identity(account.email, account.display_name)
    text: str | None = args.body
    html: str | None = None
    if args.body_file:
        text = _read_file(args.body_file, "body file").decode("utf-8", "replace")
    if args.html_file:
        html = _read_file(args.html_file, "HTML file").decode("utf-8", "replace")
    attachments = tuple(compose.load_attachment(p) for p in args.attach)
    original_id = (
        args.reply_to_id or args.reply_all_to_id or args.forward_id or args.forward_as_attachment_id
    )
    if original_id:
        original = svc.raw(original_id)
        if args.reply_to_id or args.reply_all_to_id:
            draft = compose.reply(
                identity, original, reply_all=bool(args.reply_all_to_id), text=text or "", html=html
            )
        else:
            draft = compose.forward(
                identity,
                original,
                as_attachment=bool(args.forward_as_attachment_id),
                text=text or "",
            )
    else:
        draft = compose.Draft(text=text if text is not None or html else "", html=html)
    draft = replace(
        draft,
        to=compose.parse_recipients(args.to) if args.to else draft.to,
        cc=compose.parse_recipients(args.cc) if args.cc else draft.cc,
        bcc=compose.parse_recipients(args.bcc),
        subject=args.subject if args.subject is not None else draft.subject,
        attachments=draft.attachments + attachments,
    )
    built = compose.build(identity, draft)
    send_at = _send_time(args.at, args.now)
    from app.smtpcheck import check_size

    check_size(account, len(built.raw))
    item = svc.queue_mail(
        account.name,
        raw=built.raw,
        message_id=built.message_id,
        sender=built.sender,
        recipients=built.recipients,
        subject=draft.subject,
        send_at=send_at,
        reply_to_message=original_id if (args.reply_to_id or args.reply_all_to_id) else None,
    )
    to = ", ".join(built.recipients)
    if args.now:
        from app.syncing import send_outbox

        sending = send_outbox(svc, account, lambda event: None)
        [info] = [o for o in svc.outbox() if o.id == item]
        if info.state == "sent":
            refused = f" (refused: {', '.join(info.refused)})" if info.refused else ""
            _out(f"sent message {item} to {to}{refused}")
            return 0
        why = info.last_error or (sending.error if sending is not None else None)
        reason = f": {why}" if why else ""
        _out(f"message {item} is {info.state}{reason}; it stays in the outbox")
        return 0 if info.state != "failed" else 1
    when = "after the undo window" if send_at is None else f"at {send_at.isoformat()}"
    _out(f"queued message {item} to {to}: leaves {when} (undo: tidings outbox cancel {item})")
    return 0


def cmd_outbox(args: argparse.Namespace, svc: Services) -> int:
    if args.verb == "cancel":
        if args.id is None:
            raise UsageError("outbox cancel needs an ID")
        svc.cancel_outgoing(args.id)
        _out(f"cancelled message {args.id}")
        return 0
    if args.verb == "retry":
        if args.id is None and not args.all:
            raise UsageError("outbox retry needs an ID or --all")
        _out(f"{svc.retry_outgoing(None if args.all else args.id)} message(s) due now")
        return 0
    for o in svc.outbox():
        if args.json:
            _json_line(
                {
                    "id": o.id,
                    "account": o.account,
                    "state": o.state,
                    "attempts": o.attempts,
                    "next_attempt": o.next_attempt.isoformat() if o.next_attempt else None,
                    "send_at": o.send_at.isoformat() if o.send_at else None,
                    "last_error": o.last_error,
                    "last_reply": o.last_reply,
                    "message_id": o.message_id,
                    "to": list(o.to),
                    "subject": o.subject,
                    "refused": o.refused,
                    "sent_at": o.sent_at.isoformat() if o.sent_at else None,
                }
            )
        else:
            err = f"  ({o.last_error})" if o.last_error else ""
            _out(f"{o.id:>6} {o.state:<9} {_clip(o.subject, 40):<40} {', '.join(o.to)}{err}")
    return 0


# -- rich messages: invitations, unsubscribe, attachments (app/invites.py, ...) ----------


def _add_rich_commands(sub: Any) -> None:
    rv = sub.add_parser("rsvp", help="answer a calendar invitation")
    rv.add_argument("id", type=_positive, metavar="ID")
    rv.add_argument("answer", choices=("accept", "tentative", "decline"))
    rv.add_argument("--comment", metavar="TEXT", help="a note for the organiser")
    rv.add_argument("--now", action="store_true", help="skip the undo window and send at once")

    un = sub.add_parser("unsubscribe", help="leave the mailing list a message came from")
    un.add_argument("id", type=_positive, metavar="ID")
    un.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    at = sub.add_parser("attachments", help="list or save a message's attachments")
    at.add_argument("id", type=_positive, metavar="ID")
    at.add_argument("--save", metavar="DIR", help="save them into DIR (created if need be)")
    at.add_argument(
        "--part", nargs="+", metavar="PART", help="only these parts (as listed); default: all"
    )
    at.add_argument("--json", action="store_true")


def _when_json(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _participant_json(p: Any) -> dict[str, Any]:
    return {
        "name": p.name,
        "email": p.email,
        "partstat": p.partstat or None,
        "role": p.role,
        "kind": p.kind,
        "rsvp": p.rsvp,
        "is_me": p.is_me,
    }


_PARTSTAT_WORDS = {
    "NEEDS-ACTION": "needs action",
    "ACCEPTED": "accepted",
    "TENTATIVE": "tentative",
    "DECLINED": "declined",
    "DELEGATED": "delegated",
}


def cmd_show_invite(args: argparse.Namespace, svc: Services) -> int:
    from app.errors import InviteError

    if args.raw or args.text:
        raise UsageError("--invite cannot be combined with --raw or --text")
    invite = svc.invite(args.id)
    if invite is None:
        raise InviteError(f"message {args.id} has no calendar invitation")
    saved = svc.save_ics(args.id, Path(args.save_ics)) if args.save_ics else None
    r = invite.response
    if args.json:
        _json_line(
            {
                "id": args.id,
                "method": invite.method,
                "kind": invite.kind,
                "uid": invite.uid,
                "sequence": invite.sequence,
                "recurrence_id": invite.recurrence_id,
                "title": invite.title,
                "start": _when_json(invite.start),
                "end": _when_json(invite.end),
                "all_day": invite.all_day,
                "when": invite.when,
                "organizer_zone": invite.organizer_zone,
                "organizer_start": _when_json(invite.organizer_start),
                "organizer_end": _when_json(invite.organizer_end),
                "recurrence": invite.recurrence,
                "location": invite.location,
                "url": invite.url,
                "organizer": _participant_json(invite.organizer) if invite.organizer else None,
                "attendees": [_participant_json(a) for a in invite.attendees],
                "status": invite.status or None,
                "description": invite.description,
                "can_reply": invite.can_reply,
                "reply_blocker": invite.reply_blocker,
                "superseded_by": invite.superseded_by,
                "response": None
                if r is None
                else {
                    "partstat": r.partstat,
                    "comment": r.comment,
                    "sequence": r.sequence,
                    "answered_at": r.answered_at.isoformat(),
                    "outbox_id": r.outbox_id,
                    "outbox_state": r.outbox_state,
                },
                "saved_ics": str(saved) if saved else None,
            }
        )
        return 0
    label = {
        "request": "Invitation",
        "update": "Updated invitation",
        "cancel": "Cancelled",
        "reply": "Answer",
        "publish": "Event",
    }.get(invite.kind, f"Calendar ({invite.method})")
    _out(f"{label + ':':<12} {invite.title}")
    _out(f"{'When:':<12} {invite.when}")
    if invite.recurrence:
        _out(f"{'Repeats:':<12} {invite.recurrence}")
    if invite.recurrence_id:
        _out(f"{'':<12} (this occurrence only)")
    if invite.changed_occurrences:
        _out(f"{'':<12} ({invite.changed_occurrences} occurrence(s) changed)")
    if invite.location:
        _out(f"{'Where:':<12} {invite.location}")
    if invite.url:
        _out(f"{'Link:':<12} {invite.url}")
    if invite.organizer:
        _out(f"{'Organiser:':<12} {invite.organizer.display()}")
    for n, a in enumerate(invite.attendees):
        you = " (you)" if a.is_me else ""
        state = _PARTSTAT_WORDS.get(a.partstat, a.partstat.lower())
        optional = ", optional" if a.role == "OPT-PARTICIPANT" else ""
        _out(f"{'Attendees:' if n == 0 else '':<12} {a.display()}{you}: {state}{optional}")
    if r is not None:
        answer = _PARTSTAT_WORDS.get(r.partstat, r.partstat.lower())
        when = r.answered_at.astimezone().strftime("%Y-%m-%d %H:%M")
        sent = f", {r.outbox_state}" if r.outbox_state else ""
        earlier = " to an earlier version" if invite.response_outdated else ""
        _out(f"{'You:':<12} {answer}{earlier} ({when}{sent})")
    if invite.superseded_by is not None:
        _out(f"{'Note:':<12} a newer version is message {invite.superseded_by}")
    if invite.can_reply:
        _out(f"{'Answer:':<12} tidings rsvp {args.id} accept|tentative|decline")
    elif invite.kind in ("request", "update"):
        _out(f"{'Answer:':<12} cannot answer: {invite.reply_blocker}")
    if saved is not None:
        _out(f"{'Saved:':<12} {saved}")
    if invite.description:
        _out()
        _out(invite.description)
    return 0


def _send_queued_now(svc: Services, account_name: str, item: int) -> tuple[str, str | None]:
    """Send what is due for the account now; the item's state and its last error."""
    from app.syncing import send_outbox

    account = svc.account(account_name)
    sending = send_outbox(svc, account, lambda event: None)
    [info] = [o for o in svc.outbox() if o.id == item]
    why = info.last_error or (getattr(sending, "error", None) if sending is not None else None)
    return info.state, why


def cmd_rsvp(args: argparse.Namespace, svc: Services) -> int:
    from datetime import UTC, datetime

    account = svc.message(args.id).summary.account
    item = svc.rsvp(
        args.id,
        args.answer,
        comment=args.comment,
        send_at=datetime.now(UTC) if args.now else None,
    )
    [info] = [o for o in svc.outbox() if o.id == item]
    to = ", ".join(info.to)
    word = {"accept": "accepted", "tentative": "tentatively accepted", "decline": "declined"}
    done = f"{word[args.answer]}: {info.subject.split(': ', 1)[-1]}"
    if args.now:
        state, why = _send_queued_now(svc, account, item)
        if state in ("sent", "delivered"):  # delivered: the server has it, Sent copy to come
            _out(f"{done}; the answer was sent to {to}")
            return 0
        reason = f": {why}" if why else ""
        _out(f"{done}; the answer to {to} is {state}{reason}; it stays in the outbox")
        return 0 if state != "failed" else 1
    _out(
        f"{done}; the answer to {to} is queued as message {item}: leaves after the undo "
        f"window (undo: tidings outbox cancel {item})"
    )
    return 0


def cmd_unsubscribe(args: argparse.Namespace, svc: Services) -> int:
    d = svc.message(args.id)
    plan = svc.unsubscribe_plan(args.id)
    listed = f" from {d.list_id}" if d.list_id else ""
    if plan.method != "browser" and not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"unsubscribing{listed} needs confirmation: add --yes")
        answer = input(f"Unsubscribe{listed}: {plan.description}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            _out("nothing done")
            return 0
    result = svc.unsubscribe(args.id)
    if result.method == "one-click":
        from urllib.parse import urlsplit

        host = urlsplit(result.target).hostname or result.target
        _out(f"unsubscribed{listed}: {host} answered {result.detail}")
    elif result.method == "mailto":
        to = ", ".join(plan.mailto.to) if plan.mailto else result.target
        _out(
            f"unsubscribe message{listed} queued ({result.detail}) to {to}; "
            "it leaves with the next sync"
        )
    else:
        _out(f"to unsubscribe{listed}, open this link in your browser: {result.target}")
    return 0


def cmd_attachments(args: argparse.Namespace, svc: Services) -> int:
    views = svc.attachments(args.id)
    saved: dict[str, Path] = {}
    if args.save:
        saved = {
            f.attachment.part_id: f.path
            for f in svc.save_attachments(args.id, Path(args.save), args.part)
        }
    elif args.part:
        raise UsageError("--part goes with --save")
    if not views and not args.json:
        _out(f"message {args.id} has no attachments")
    for v in views:
        if args.save and v.part_id not in saved:
            continue
        path = saved.get(v.part_id)
        if args.json:
            _json_line(
                {
                    "part": v.part_id,
                    "filename": v.filename,
                    "content_type": v.content_type,
                    "size": v.size,
                    "inline": v.inline,
                    "content_id": v.content_id,
                    "extension": v.extension,
                    "risky": v.risky,
                    "warning": v.warning,
                    "path": str(path) if path else None,
                }
            )
            continue
        flags = " (inline)" if v.inline else ""
        line = f"{v.part_id:>6}  {v.filename}  {v.content_type}, {_size(v.size)}{flags}"
        if path is not None:
            line += f"  -> {path}"
        _out(line)
        if v.warning:
            _out(f"{'':>8}warning: {v.warning}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, Services], int]] = {
    "send": cmd_send,
    "outbox": cmd_outbox,
    "mark": cmd_mark,
    "move": cmd_move,
    "archive": cmd_archive,
    "delete": cmd_delete,
    "undo": cmd_undo,
    "actions": cmd_actions,
    "sync": cmd_sync,
    "account": cmd_account,
    "folders": cmd_folders,
    "list": cmd_list,
    "show": cmd_show,
    "import": cmd_import,
    "demo": cmd_demo,
    "search": cmd_search,
    "reindex": cmd_reindex,
    "rsvp": cmd_rsvp,
    "unsubscribe": cmd_unsubscribe,
    "attachments": cmd_attachments,
}


_SEARCH_VALUED = frozenset({"--account", "--limit", "--sort", "--save"})
_SEARCH_FLAGS = frozenset({"--json", "--help", "-h"})


def _command_at(argv: list[str]) -> int:
    """Where the command's name is in ``argv`` (after the global options)."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] == "--home" else 1
    return i


def _search_argv(argv: list[str]) -> list[str]:
    """``tidings search`` takes Gmail-style queries, where ``-word`` negates: every
    argument after ``search`` that is not one of its options is part of the query,
    wherever it stands (``search report -from:bob --json`` works)."""
    i = _command_at(argv)
    if i >= len(argv) or argv[i] != "search":
        return argv
    options: list[str] = []
    query: list[str] = []
    rest = iter(argv[i + 1 :])
    for arg in rest:
        name = arg.split("=", 1)[0]
        if arg == "--":
            query.extend(rest)
        elif name in _SEARCH_VALUED:
            options.append(arg)
            if "=" not in arg:
                options.append(next(rest, ""))
        elif arg in _SEARCH_FLAGS:
            options.append(arg)
        else:
            query.append(arg)
    return [*argv[: i + 1], *options, *(["--", *query] if query else [])]


def run(argv: Sequence[str] | None = None) -> int:
    words = _search_argv(list(sys.argv[1:] if argv is None else argv))
    i = _command_at(words)
    command = words[i] if i < len(words) and words[i] in COMMANDS else None
    args = build_parser(only=command).parse_args(words)  # the whole tree for --help, typos
    debug = bool(args.debug)
    try:
        from app.profile import Profile, demo_home, resolve_home

        home = args.home
        if args.command == "demo" and home is None:
            import os

            home = os.environ.get("TIDINGS_HOME") or demo_home()
        searching = args.command == "search" and not args.save
        if searching and (answer := _ask_search_server(args, resolve_home(home))) is not None:
            sys.stdout.write(answer.out)
            sys.stderr.write(answer.err)
            return answer.code
        profile = Profile.open(home)
        if args.command == "sync" and not args.watch and _quick_sync(args, profile.db_path):
            return 0
        if searching and _quick_search(args, profile.home):
            _start_search_server(profile.home)
            return 0
        from app.services import Services

        svc = Services(profile)
        try:
            code = COMMANDS[args.command](args, svc)
        finally:
            svc.close()
        if searching and code == 0:
            _start_search_server(profile.home)
        return code
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except (TidingsError, StorageError, SyncError) as exc:
        if debug:
            raise
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return getattr(exc, "exit_code", 1)
    except Exception as exc:
        if debug:
            raise
        sys.stderr.write(
            f"{PROG}: internal error: {type(exc).__name__}: {exc} (run with --debug for details)\n"
        )
        return 1


def main() -> NoReturn:
    code = run()
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    sys.exit(code)
