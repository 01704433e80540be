"""Tiny raw-message builder for tests (bytes exactly as a server would hand them)."""

from __future__ import annotations


def mail(
    msgid: str | None = "a@example.com",
    subject: str = "Hello",
    *,
    sender: str = "Alice <alice@example.com>",
    to: str = "Bob <bob@example.com>",
    cc: str | None = None,
    date: str = "Mon, 02 Nov 2026 10:00:00 +0000",
    refs: str | None = None,
    in_reply_to: str | None = None,
    body: str = "Hi there.\n",
    extra: str = "",
) -> bytes:
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", f"Date: {date}"]
    if cc:
        lines.append(f"Cc: {cc}")
    if msgid:
        lines.append(f"Message-ID: <{msgid}>")
    if refs:
        lines.append(f"References: {refs}")
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    lines.append("MIME-Version: 1.0")
    lines.append("Content-Type: text/plain; charset=utf-8")
    if extra:
        lines.append(extra.rstrip("\n"))
    return ("\r\n".join(lines) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode()
