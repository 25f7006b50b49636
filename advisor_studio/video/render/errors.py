"""Errors of the render package: every refusal and failure carries a reason code (see ``render()``)."""

from __future__ import annotations

from advisor_studio.video.probe import VideoError


class RenderError(VideoError):
    """Rendering failed or was refused (reason codes: see render())."""


class IdentityError(RenderError):
    """The advisor's real name or SAC registration number is missing or malformed."""
