"""The short-video platforms content targets and partners' channels run on: the one list.

Scripts and packages target ``PLATFORMS``; the lexicon's platform-specific rules name them; a partner's
channel may also be on a platform not listed (``PLATFORM_OTHER``), which content never targets by name.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

PLATFORMS = ("douyin", "kuaishou", "bilibili", "wechat_channels", "xiaohongshu")
PLATFORM_OTHER = "other"
CHANNEL_PLATFORMS = (*PLATFORMS, PLATFORM_OTHER)
PLATFORM_LABELS = {
    "douyin": _l("Douyin"),
    "kuaishou": _l("Kuaishou"),
    "bilibili": _l("Bilibili"),
    "wechat_channels": _l("WeChat Channels"),
    "xiaohongshu": _l("Xiaohongshu"),
    "other": _l("Other platform"),
}
