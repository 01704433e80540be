"""Ingest: dedupe, locations, flags, threads, contacts, malformed mail, content stage."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage import accounts as acc
from storage import queries
from storage.ingest import Incoming, extract_pending, ingest_batch
from storage.models import Attachment, Contact, Message, MessageUid, Thread
from tests.mailmaker import mail


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_ingest_makes_a_listable_message(session: Session, account_id: int, folder_id: int) -> None:
    raw = mail("m1@x", "=?utf-8?q?Gr=C3=BC=C3=9Fe?=", sender="=?utf-8?q?Zo=C3=AB?= <zoe@x.org>")
    [r] = ingest_batch(session, account_id, folder_id, [Incoming(raw, flags=frozenset({"seen"}))])
    assert r.new_message
    assert r.new_location
    assert not r.malformed
    [s] = queries.summaries(session, [r.message_id])
    assert s.subject == "Grüße"
    assert (s.sender.name, s.sender.email) == ("Zoë", "zoe@x.org")
    assert s.folders == ("INBOX",)
    assert s.flags == ("seen",)
    assert s.date is not None
    assert s.date.isoformat() == "2026-11-02T10:00:00+00:00"
    assert queries.raw_message(session, r.message_id) == raw


def test_same_bytes_twice_is_one_message(session: Session, account_id: int, folder_id: int) -> None:
    raw = mail("dup@x")
    first = ingest_batch(session, account_id, folder_id, [Incoming(raw, uid=1)])
    again = ingest_batch(session, account_id, folder_id, [Incoming(raw, uid=1)])
    assert first[0].new_location
    assert not again[0].new_location
    assert again[0].message_id == first[0].message_id
    assert _count(session, Message) == 1
    assert _count(session, MessageUid) == 1


def test_same_message_in_two_folders_is_one_message_two_locations(
    session: Session, account_id: int, folder_id: int
) -> None:
    other = acc.ensure_folder(session, account_id, "Archive")
    raw = mail("two@x")
    [a] = ingest_batch(session, account_id, folder_id, [Incoming(raw, uid=7)])
    [b] = ingest_batch(session, account_id, other, [Incoming(raw, uid=3)])
    assert a.message_id == b.message_id
    assert b.new_location
    assert not b.new_message
    assert _count(session, Message) == 1
    [s] = queries.summaries(session, [a.message_id])
    assert set(s.folders) == {"INBOX", "Archive"}


def test_duplicate_inside_one_batch_gets_two_locations(
    session: Session, account_id: int, folder_id: int
) -> None:
    raw = mail("twice@x")
    res = ingest_batch(
        session,
        account_id,
        folder_id,
        [Incoming(raw, source_key="k#1"), Incoming(raw, source_key="k#2")],
    )
    assert res[0].message_id == res[1].message_id
    assert [r.new_message for r in res] == [True, False]
    assert _count(session, MessageUid) == 2
    uids = sorted(session.scalars(select(MessageUid.uid)))
    assert uids == [1, 2]  # local folders hand out UIDs


def test_flags_and_keywords(session: Session, account_id: int, folder_id: int) -> None:
    [r] = ingest_batch(
        session,
        account_id,
        folder_id,
        [Incoming(mail(), flags=frozenset({"flagged", "answered"}), keywords=("$Label1",), uid=5)],
    )
    [s] = queries.summaries(session, [r.message_id])
    assert s.flags == ("flagged", "answered", "$label1")


def test_thread_by_references_parent_after_child(
    session: Session, account_id: int, folder_id: int
) -> None:
    reply = mail("r1@x", "Re: Plan", refs="<root@x>", in_reply_to="<root@x>")
    reply2 = mail(
        "r2@x", "Re: Plan", refs="<root@x> <r1@x>", date="Tue, 03 Nov 2026 10:00:00 +0000"
    )
    root = mail("root@x", "Plan", date="Sun, 01 Nov 2026 10:00:00 +0000")
    unrelated = mail("u@x", "Plan")  # same subject, no reply prefix: its own thread
    ids = [
        r.message_id
        for r in ingest_batch(session, account_id, folder_id, [Incoming(reply), Incoming(reply2)])
    ]
    ids += [
        r.message_id
        for r in ingest_batch(session, account_id, folder_id, [Incoming(root), Incoming(unrelated)])
    ]
    threads = {s.id: s.thread_id for s in queries.summaries(session, ids)}
    assert threads[ids[0]] == threads[ids[1]] == threads[ids[2]]
    assert threads[ids[3]] != threads[ids[0]]
    t = session.get_one(Thread, threads[ids[0]])
    assert t.message_count == 3
    assert t.subject == "plan"


def test_thread_merge_when_a_message_links_two_threads(
    session: Session, account_id: int, folder_id: int
) -> None:
    a = mail("a@x", "A")
    b = mail("b@x", "B")
    [ra] = ingest_batch(session, account_id, folder_id, [Incoming(a)])
    [rb] = ingest_batch(session, account_id, folder_id, [Incoming(b)])
    bridge = mail("c@x", "Re: A", refs="<a@x> <b@x>")
    [rc] = ingest_batch(session, account_id, folder_id, [Incoming(bridge)])
    got = {
        s.id: s.thread_id
        for s in queries.summaries(session, [ra.message_id, rb.message_id, rc.message_id])
    }
    assert len(set(got.values())) == 1
    assert _count(session, Thread) == 1
    assert session.scalar(select(Thread.message_count)) == 3


def test_thread_merge_within_one_batch(session: Session, account_id: int, folder_id: int) -> None:
    msgs = [mail("a@x", "A"), mail("b@x", "B"), mail("c@x", "Re: A", refs="<a@x> <b@x>")]
    res = ingest_batch(session, account_id, folder_id, [Incoming(m) for m in msgs])
    got = {s.thread_id for s in queries.summaries(session, [r.message_id for r in res])}
    assert len(got) == 1
    assert session.scalar(select(Thread.message_count)) == 3


def test_subject_fallback_only_for_replies_within_window(
    session: Session, account_id: int, folder_id: int
) -> None:
    root = mail("s1@x", "Budget 2027", date="Mon, 02 Nov 2026 10:00:00 +0000")
    near = mail("s2@x", "RE: Budget 2027", date="Wed, 04 Nov 2026 10:00:00 +0000")
    far = mail("s3@x", "Re: Budget 2027", date="Mon, 02 Nov 2020 10:00:00 +0000")
    res = ingest_batch(session, account_id, folder_id, [Incoming(root)])
    res += ingest_batch(session, account_id, folder_id, [Incoming(near)])
    res += ingest_batch(session, account_id, folder_id, [Incoming(far)])
    t = [s.thread_id for s in queries.summaries(session, [r.message_id for r in res])]
    assert t[0] == t[1]
    assert t[2] != t[0]


def test_malformed_message_is_stored_and_listed(
    session: Session, account_id: int, folder_id: int
) -> None:
    garbage = b"\x00\xff\xfe not a message at all \r\n\x00"
    [r] = ingest_batch(session, account_id, folder_id, [Incoming(garbage)])
    assert r.new_message
    assert queries.raw_message(session, r.message_id) == garbage
    [s] = queries.summaries(session, [r.message_id])
    assert s.date is not None  # falls back to ingest time so it sorts somewhere


def test_no_message_id_and_no_date(session: Session, account_id: int, folder_id: int) -> None:
    raw = b"Subject: bare\r\n\r\nbody\r\n"
    [r] = ingest_batch(session, account_id, folder_id, [Incoming(raw)])
    [s] = queries.summaries(session, [r.message_id])
    assert s.subject == "bare"
    assert s.thread_id is not None


def test_contacts_count_senders_and_my_recipients(
    session: Session, account_id: int, folder_id: int
) -> None:
    msgs = [
        mail("c1@x", sender="Alice <Alice@Example.com>"),
        mail("c2@x", sender="alice@example.com"),
        mail(
            "c3@x",
            sender="Me <me@example.com>",
            to="Carol <carol@example.com>",
            cc="dave@example.com",
        ),
    ]
    ingest_batch(session, account_id, folder_id, [Incoming(m) for m in msgs])
    rows = {c.email: c for c in session.scalars(select(Contact))}
    assert rows["alice@example.com"].seen_count == 2
    assert rows["alice@example.com"].name == "Alice"  # an empty name does not erase it
    assert rows["carol@example.com"].sent_count == 1
    assert rows["dave@example.com"].sent_count == 1
    assert "me@example.com" not in rows


def test_extract_pending_newest_first_fills_snippet_and_attachments(
    session: Session, account_id: int, folder_id: int
) -> None:
    boundary = "b0undary"
    with_att = (
        "From: a@x\r\nSubject: files\r\nDate: Tue, 03 Nov 2026 10:00:00 +0000\r\n"
        "Message-ID: <att@x>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nSee the report attached.\r\n"
        f"--{boundary}\r\nContent-Type: application/pdf\r\n"
        'Content-Disposition: attachment; filename="../../report.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    older = mail("old@x", "old", date="Sun, 01 Nov 2026 10:00:00 +0000", body="Older text.\n")
    res = ingest_batch(session, account_id, folder_id, [Incoming(older), Incoming(with_att)])
    first = extract_pending(session, limit=1)
    assert [e.message_id for e in first] == [res[1].message_id]  # newest first
    assert "See the report attached." in first[0].content.text
    rest = extract_pending(session, limit=10)
    assert [e.message_id for e in rest] == [res[0].message_id]
    assert extract_pending(session) == []
    [s_old, s_att] = queries.summaries(session, [res[0].message_id, res[1].message_id])
    assert s_old.snippet.startswith("Older text.")
    assert s_att.has_attachments
    assert not s_old.has_attachments
    [att] = session.scalars(select(Attachment))
    assert att.filename.endswith("report.pdf")
    assert "/" not in att.filename
    assert att.content_type == "application/pdf"
    assert att.size == 9


def test_list_by_folder_newest_first_with_keyset_paging(
    session: Session, account_id: int, folder_id: int
) -> None:
    msgs = [
        Incoming(
            mail(f"p{i}@x", f"n{i}", date=f"Mon, {i + 1:02d} Nov 2026 10:00:00 +0000"), uid=i + 1
        )
        for i in range(9)
    ]
    ingest_batch(session, account_id, folder_id, msgs)
    page1 = queries.list_messages(session, queries.ListQuery(folder_ids=[folder_id], limit=4))
    assert [m.subject for m in page1] == ["n8", "n7", "n6", "n5"]
    last = page1[-1]
    assert last.date is not None
    loc_id = session.scalar(select(MessageUid.id).where(MessageUid.message_id == last.id))
    assert loc_id is not None
    page2 = queries.list_messages(
        session, queries.ListQuery(folder_ids=[folder_id], limit=4, before=(last.date, loc_id))
    )
    assert [m.subject for m in page2] == ["n4", "n3", "n2", "n1"]


def test_subject_fallback_and_merges_inside_one_batch(
    session: Session, account_id: int, folder_id: int
) -> None:
    msgs = [
        mail("x1@x", "Offsite", date="Mon, 02 Nov 2026 10:00:00 +0000"),
        mail("x2@x", "AW: Offsite", date="Tue, 03 Nov 2026 10:00:00 +0000"),
        mail("y1@x", "Other", refs="<ghost@x>"),  # references a message never seen
        mail("y2@x", "Re: Other", refs="<ghost@x>"),
    ]
    res = ingest_batch(session, account_id, folder_id, [Incoming(m) for m in msgs])
    t = [s.thread_id for s in queries.summaries(session, [r.message_id for r in res])]
    assert t[0] == t[1]
    assert t[2] == t[3]
    assert t[0] != t[2]
    assert _count(session, Thread) == 2
    assert sorted(session.scalars(select(Thread.message_count))) == [2, 2]


def test_all_mail_leaves_out_junk_and_trash_only_messages(
    session: Session, account_id: int, folder_id: int
) -> None:
    junk = acc.ensure_folder(session, account_id, "Junk")
    trash = acc.ensure_folder(session, account_id, "Trash")
    [keep] = ingest_batch(session, account_id, folder_id, [Incoming(mail("k@x", "keep"))])
    [spam] = ingest_batch(session, account_id, junk, [Incoming(mail("s@x", "spam"))])
    both = mail("b@x", "both")
    [b1] = ingest_batch(session, account_id, folder_id, [Incoming(both)])
    ingest_batch(session, account_id, trash, [Incoming(both)])
    ingest_batch(session, account_id, trash, [Incoming(mail("t@x", "gone"))])
    listed = {m.subject for m in queries.list_messages(session, queries.ListQuery())}
    assert listed == {"keep", "both"}
    in_junk = queries.list_messages(session, queries.ListQuery(folder_ids=[junk]))
    assert [m.id for m in in_junk] == [spam.message_id]
    assert keep.message_id != b1.message_id
