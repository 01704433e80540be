"""HTML to plain text for snippets, the search index and the plain-text fallback view.

Why it is shaped this way:

* Mail HTML is big (marketing mail easily runs to hundreds of kilobytes), badly formed and
  arrives by the thousand during a sync, so the conversion must be fast. lexbor (through
  selectolax) parses real-world HTML in C an order of magnitude faster than ``html.parser``;
  walking every DOM node from Python would throw that away. So we let lexbor do all the
  walking: we drop ``script``/``style``/``head``, put private-use *marker* characters as
  text nodes around block elements (after parsing, so the HTML tree builder cannot move
  them), take the whole text in one C call, and turn markers into line breaks with two
  regex passes. Python code then runs once per block boundary, never once per node or
  word.
* Whitespace follows HTML rules (runs collapse to one space), except inside ``<pre>``.
  Block elements end a line, paragraphs, headings, lists and tables leave a blank line,
  ``<br>`` is a hard line break, table cells are separated by a space, list items get a
  ``- `` bullet and ``<blockquote>`` content is prefixed with ``>`` so that the snippet
  code can skip quoted text the same way for HTML and plain text mail.
* Zero-width and soft-hyphen characters that newsletters use to pad their preheaders are
  removed, non-breaking spaces become spaces.
* It never raises: should lexbor ever fail, a crude regex tag stripper takes over.
"""

from __future__ import annotations

import html as _html
import re

from selectolax.lexbor import LexborHTMLParser

__all__ = ["html_to_text"]

# Private-use characters used as in-band markers. Mail text never legitimately carries
# them; any that do arrive in the input are removed first.
_LINE = "\ue001"  # end of a block: at least one line break
_PARA = "\ue002"  # end of a paragraph-like block: a blank line
_BR = "\ue003"  # <br> or a newline inside <pre>: exactly one line break each
_QOPEN = "\ue004"  # start of <blockquote>
_QCLOSE = "\ue005"  # end of <blockquote>
_SP = "\ue010"  # a space inside <pre> that must survive whitespace collapsing

_DROP_TAGS = ["head", "script", "style", "title", "noscript", "template", "object", "iframe"]
_LINE_TAGS = (
    "address,article,aside,center,dd,details,div,dl,dt,fieldset,figcaption,figure,"
    "footer,form,header,main,nav,section,summary,tr,caption,legend"
)
_PARA_TAGS = "p,h1,h2,h3,h4,h5,h6,table,ul,ol,hr"

_MARKERS_IN_INPUT = re.compile("[\ue000-\ue0ff]")
_INVISIBLE = re.compile("[\u00ad\u034f\u200b\u200c\u200d\u2060\ufeff]")
_WS = re.compile(r"\s+")
_MARK_RUN = re.compile(" ?[\ue001-\ue005][ \ue001-\ue005]*")
_TRAILING_SPACE = re.compile(" +\n")

_TAG_RE = re.compile(r"<[^>]*>")
_DROP_RE = re.compile(r"<(script|style|head|title)\b.*?</\1\s*>", re.I | re.S)
_BLOCK_RE = re.compile(r"<(?:br|/?p|/?div|/?tr|/?li|/?h[1-6]|/?table|/?blockquote)\b[^>]*>", re.I)


def html_to_text(html: str) -> str:
    """Return the readable text of an HTML document or fragment; never raises."""
    if not html:
        return ""
    try:
        return _convert(html)
    except Exception:  # last-resort fallback, the input is untrusted
        return _fallback(html)


def _convert(html: str) -> str:
    if _MARKERS_IN_INPUT.search(html):
        html = _MARKERS_IN_INPUT.sub("", html)
    tree = LexborHTMLParser(html)
    tree.strip_tags(_DROP_TAGS, recursive=True)
    for node in tree.css("pre"):
        # Keep the layout of preformatted text through the whitespace collapsing below.
        text = node.text(separator="")
        text = text.replace("\r\n", "\n").replace(" ", _SP).replace("\t", _SP * 4)
        node.replace_with(_PARA + text.replace("\n", _BR) + _PARA)
    for node in tree.css(_LINE_TAGS):
        node.insert_before(_LINE)
        node.insert_after(_LINE)
    for node in tree.css(_PARA_TAGS):
        node.insert_before(_PARA)
        node.insert_after(_PARA)
    for node in tree.css("li"):
        node.insert_before(_LINE + "- ")
        node.insert_after(_LINE)
    for node in tree.css("blockquote"):
        node.insert_before(_PARA + _QOPEN)
        node.insert_after(_QCLOSE + _PARA)
    for node in tree.css("br"):
        node.insert_after(_BR)
    for node in tree.css("td,th"):
        node.insert_after(" ")
    root = tree.body or tree.root
    if root is None:
        return ""
    text = root.text(separator="")
    return _layout(text)


def _layout(text: str) -> str:
    text = _INVISIBLE.sub("", text)
    text = _WS.sub(" ", text)
    depth = 0

    def breaks(match: re.Match[str]) -> str:
        nonlocal depth
        run = match.group()
        before = depth
        depth = max(depth + run.count(_QOPEN) - run.count(_QCLOSE), 0)
        count = run.count(_BR)
        if _PARA in run:
            count = max(count, 2)
        elif _LINE in run or _QOPEN in run or _QCLOSE in run:
            count = max(count, 1)
        count = min(count, 3)
        if not count:
            return " "
        # Blank separator lines belong to the shallower side, the last break to the new depth.
        blank = "\n" + ">" * min(before, depth)
        return blank * (count - 1) + "\n" + (">" * depth + " " if depth else "")

    text = _MARK_RUN.sub(breaks, text)
    text = text.replace(_SP, " ")
    text = _TRAILING_SPACE.sub("\n", text)
    return text.strip()


def _fallback(html: str) -> str:
    try:
        text = _DROP_RE.sub(" ", html)
        text = _BLOCK_RE.sub("\n", text)
        text = _html.unescape(_TAG_RE.sub("", text))
        lines = (_WS.sub(" ", line).strip() for line in text.splitlines())
        return "\n".join(line for line in lines if line)
    except Exception:  # never raise on message content
        return ""
