"""The partner API's bodies as pydantic models, and the OpenAPI document built from them and the views.

One definition per shape: the request models validate what partners send, the response models build
what the API answers, and both are what /api/v1/openapi.json publishes, so the document cannot drift
from the code (schemathesis checks the answers against it).

Why apispec (+ apispec-webframeworks' FlaskPlugin) with pydantic models, rather than flask-openapi3,
APIFlask, spectree or flask-smorest: flask-openapi3 and APIFlask want their own application class in
place of this app factory's Flask; spectree and flask-smorest take over request validation (422 and
their own error bodies, English messages) and register their own doc routes, which here would have
to be fought to keep the contract's 400 error shape, the declared access rule of every endpoint and
pages served without a CDN. apispec only assembles the document: paths come from the Flask URL map of
the real views, schemas from the pydantic models the views use, and nothing changes how a request is
handled. pydantic was already in the environment; apispec is maintained by the marshmallow team.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from advisor_studio.distribution.models import ASSET_STATUSES, CHANNEL_PLATFORMS

DateTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Platform = Literal[CHANNEL_PLATFORMS]  # type: ignore[valid-type]
AssetStatus = Literal[ASSET_STATUSES]  # type: ignore[valid-type]
TEXT_MAX = 1000
TIME_MAX = 64


class _Out(BaseModel):
    # Responses may gain fields (contract.md: add compatibly), so the schema does not forbid extra ones.
    model_config = ConfigDict(extra="ignore")


class ChannelOut(_Out):
    """The partner's platform account an asset is assigned to."""

    id: int
    platform: Platform
    handle: str


class AdvisorOut(_Out):
    """Who speaks in the video: the advisor's real name and SAC registration number (S + 13 digits)."""

    name: str
    sac_number: str = Field(description="The letter S followed by 13 digits.")


class TakedownOut(_Out):
    """A confirmed removal of one reported post."""

    id: int
    removed_at: DateTime
    confirmed_at: DateTime


class PublicationOut(_Out):
    """A post the partner reported for this asset, with its removal once confirmed."""

    id: int
    platform: Platform
    post_url: str
    published_at: DateTime
    reported_at: DateTime
    takedown: TakedownOut | None = Field(description="Null until the post's removal is confirmed.")


class Asset(_Out):
    """ASSET: an approved package assigned to one of the partner's channels (contract.md)."""

    id: int = Field(description="Stable id of the asset (one approval on one channel).")
    title: str
    caption: str
    hashtags: list[str]
    platform: Platform
    channel: ChannelOut
    advisor: AdvisorOut
    disclaimer: str = Field(description="The risk disclosure burned into the approved video.")
    duration_s: float | None
    width: int | None
    height: int | None
    size_bytes: int | None
    sha256: str | None = Field(description="SHA-256 of the approved video file (the approval manifest's).")
    video_url: str | None = Field(description="Expiring download link of this application, bound to the partner "
                                              "and key; null once the asset is withdrawn or expired.")
    cover_url: str | None = Field(description="Expiring link to the cover image; null when there is none or the "
                                              "asset is withdrawn or expired.")
    referral_url: str = Field(description="The referral link for this package on this channel, as pinned by "
                                          "the approval manifest (what is posted was approved); empty for "
                                          "approvals made before package links existed.")
    approved_at: DateTime
    approval_expires_at: DateTime | None
    status: AssetStatus
    takedown_due_at: DateTime | None = Field(description="Extra field: for a withdrawn or expired asset, when every "
                                                         "reported post must be confirmed removed.")
    publications: list[PublicationOut] = Field(description="Extra field: the posts reported for this asset.")


class AssetPage(_Out):
    """One page of assets, newest first."""

    items: list[Asset]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


class _In(BaseModel):
    # Strict: a number is not a string, a string is not a date; unknown fields are ignored (forward compatible).
    model_config = ConfigDict(strict=True, extra="ignore")


class PublicationIn(_In):
    """Report where and when the asset was posted."""

    platform: Platform = Field(description="Must be the platform of the asset's channel.")
    post_url: str = Field(min_length=1, max_length=TEXT_MAX,
                          description="http(s) address of the post, on a host of the channel's platform.")
    published_at: DateTime = Field(max_length=TIME_MAX, description="RFC 3339 with a time zone offset; not in "
                                                                    "the future, not before the approval.")


class TakedownIn(_In):
    """Confirm that a post reported earlier was removed."""

    post_url: str = Field(min_length=1, max_length=TEXT_MAX, description="The address reported earlier.")
    removed_at: DateTime = Field(max_length=TIME_MAX, description="RFC 3339 with a time zone offset.")


class PublicationCreated(_Out):
    """The recorded publication."""

    id: int
    asset_id: int
    platform: Platform
    post_url: str
    published_at: DateTime
    reported_at: DateTime
    asset_status: AssetStatus


class TakedownCreated(_Out):
    """The recorded take-down confirmation."""

    id: int
    asset_id: int
    publication_id: int
    post_url: str
    removed_at: DateTime
    confirmed_at: DateTime
    late: bool = Field(description="Removed after the take-down deadline.")
    takedown_complete: bool = Field(description="Every reported post of the asset is now confirmed removed.")
    asset_status: AssetStatus


# Counters every JSON reader keeps exactly (2**53 - 1).
Counter = Annotated[int, Field(ge=0, le=2**53 - 1)]


class MetricsIn(_In):
    """A post's counters as the platform showed them at ``observed_at`` (they only grow)."""

    observed_at: DateTime = Field(max_length=TIME_MAX, description="RFC 3339 with a time zone offset; not in the "
                                                                   "future (5 minutes of clock skew allowed), not "
                                                                   "before the post was published.")
    views: Counter
    likes: Counter
    comments: Counter
    shares: Counter


class MetricsOut(_Out):
    """A stored metrics report."""

    id: int
    publication_id: int
    asset_id: int
    observed_at: DateTime
    views: int
    likes: int
    comments: int
    shares: int
    reported_at: DateTime = Field(description="When the report was first stored.")


class ErrorDetail(_Out):
    code: str = Field(description="Stable machine-readable code.")
    message: str = Field(description="What went wrong, for a person.")
    fields: dict[str, str] = Field(description="Field name -> why it was refused (may be empty).")


class Error(_Out):
    """The error shape of every /api/v1 response that is not a success."""

    error: ErrorDetail


# --- the conversion webhook (contract.md "Conversion webhook"): documented before it exists --------

class ConversionIn(BaseModel):
    """A conversion event from the account-opening system."""

    event: Literal["signup", "account_opened", "funded", "first_trade", "account_rejected", "withdrawal"]
    customer_ref: str = Field(min_length=1, max_length=128,
                              description="Opaque id from the account-opening system; stored only as a keyed hash.")
    click_id: str | None = Field(None, description="The id from the referral redirect; required on a customer's "
                                                   "first event unless referral_code is given.")
    referral_code: str | None = Field(None, description="A link code, when no click id survived.")
    occurred_at: DateTime
    amount: str | None = Field(None, pattern=r"^[0-9]+(\.[0-9]{1,2})?$",
                               description="Decimal string > 0, at most 2 decimals; required for funded and "
                                           "withdrawal, optional for first_trade.")
    currency: str = Field("CNY", pattern="^[A-Z]{3}$", description="ISO 4217.")
    is_employee: bool = False


class Attribution(BaseModel):
    advisor_id: int | None
    link_code: str | None
    content_id: int | None
    group_id: int | None
    channel_id: int | None
    campaign: str | None


class ConversionCreated(BaseModel):
    """The stored conversion and whom it was attributed to."""

    id: int
    event: str
    attributed: Attribution | None


COMPONENT_MODELS = (Asset, AssetPage, PublicationIn, PublicationCreated, TakedownIn, TakedownCreated, Error,
                    ConversionIn, ConversionCreated, MetricsIn, MetricsOut)


def component_schemas() -> dict[str, dict]:
    """Every model's JSON schema in OpenAPI 3.0 form, keyed by component name."""
    modes = [(m, "validation" if m.__name__.endswith("In") else "serialization") for m in COMPONENT_MODELS]
    _, top = models_json_schema(modes, ref_template="#/components/schemas/{model}")
    return {name: to_openapi30(schema) for name, schema in top.get("$defs", {}).items()}


def to_openapi30(node: Any) -> Any:
    """pydantic writes JSON Schema 2020-12; OpenAPI 3.0 (what the bundled Swagger UI reads) says
    ``nullable`` instead of a null type, ``enum`` instead of ``const`` and one ``example``."""
    if isinstance(node, list):
        return [to_openapi30(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: to_openapi30(value) for key, value in node.items()}
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        del node["anyOf"]
        if len(rest) == 1 and "$ref" in rest[0]:
            node["allOf"] = rest  # a $ref takes no sibling keywords in 3.0
        elif len(rest) == 1:
            node.update(rest[0])
        else:
            node["anyOf"] = rest
        node["nullable"] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "examples" in node:
        examples = node.pop("examples")
        if examples:
            node["example"] = examples[0]
    return node
