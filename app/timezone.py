"""The user's time zone, with its daylight-saving rules.

Why a module of its own: search reads ``before:2026-03-30`` as midnight in the user's
zone and invitations are shown in it; both need the zone with its rules (a date in
winter gets winter's offset in summer), not today's fixed offset, and both must
agree. Only the standard library: ``tidings search`` imports it on its fast path.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, tzinfo

__all__ = ["user_zone"]


def user_zone() -> tzinfo:
    """``$TZ``; else the zone ``/etc/localtime`` names (a link into the zoneinfo
    tree: its name, e.g. "Europe/Berlin", labels times well), else the file itself;
    else the system's current offset."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        target = ""
    marker = "zoneinfo/"
    if marker in target:
        try:
            return ZoneInfo(target.split(marker, 1)[1])
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    try:
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        pass
    local = datetime.now().astimezone().tzinfo
    return local if local is not None else UTC
