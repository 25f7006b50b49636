"""What a finding means to its reader: rule and category labels, the reason with the PRC rule it
rests on, and a compliant rewording where one exists.

The scanner stores a reason code and its parameters with each finding (``code``, ``params``);
the sentences live here and are rendered through Flask-Babel when a page is drawn, so a stored
finding reads in the reader's language and follows a switch of language. Findings stored before
codes existed have only a plain ``note``: it is shown as it is (fallback).

The rules cited are those of the firm's regulatory notes: 《证券投资顾问业务暂行规定》, 银发〔2019〕316号
《关于进一步规范金融营销宣传行为的通知》, 《广告法》第九条和第二十五条, the Shenzhen CSRC bureau's 2024
self-media notice and the platforms' rules. Lexicon notes are the firm's own text and are shown
as written (the bundled lexicon is in Chinese).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

RULE_LABELS = {
    "forbidden_phrase": _l("Forbidden phrase"),
    "disclosure_missing": _l("Required disclosure missing"),
    "sac_missing": _l("SAC registration no. missing"),
    "sac_mismatch": _l("SAC registration no. is not yours"),
    "sac_malformed": _l("SAC registration no. malformed"),
    "advisor_name_missing": _l("Advisor's real name missing"),
    "stock_call": _l("Call to buy or sell a security"),
    "return_percentage": _l("Return figure"),
}

CATEGORY_LABELS = {
    "return_promise": _l("Return promise"),
    "superlative": _l("Absolute terms"),
    "commission": _l("Commission comparison"),
    "trade_call": _l("Call to trade"),
    "stock_tip": _l("Stock tip"),
    "insider_info": _l("Inside information"),
    "market_manipulation": _l("Market manipulation"),
    "traffic_diversion": _l("Traffic diversion"),
    "group_solicitation": _l("Private group solicitation"),
    "disparagement": _l("Disparaging competitors"),
    "english_promise": _l("Return promise (English wording)"),
    "disclosure": _l("Required disclosure"),
    "identification": _l("Advisor identification"),
    "general": _l("General"),
}

# Why a lexicon phrase of a category is a problem, with its rule: shown when the entry has no note.
CATEGORY_REASONS = {
    "return_promise": _l("Promising or guaranteeing returns, capital or no risk is forbidden "
                         "(《证券投资顾问业务暂行规定》: no promise or guarantee of investment returns; "
                         "316号文: no express or implied capital protection, no risk or guaranteed returns; "
                         "《广告法》第二十五条)."),
    "english_promise": _l("Promising or guaranteeing returns, capital or no risk is forbidden "
                          "(《证券投资顾问业务暂行规定》: no promise or guarantee of investment returns; "
                          "316号文: no express or implied capital protection, no risk or guaranteed returns; "
                          "《广告法》第二十五条)."),
    "superlative": _l("Absolute terms are forbidden in advertising (《广告法》第九条(三): "
                      "no \"national-level\", \"highest-level\", \"best\" or similar)."),
    "commission": _l("Comparing commissions in absolute terms is misleading marketing "
                     "(《证券投资顾问业务暂行规定》: no false or misleading marketing; 《广告法》第九条(三))."),
    "trade_call": _l("Urging viewers to trade now is a buy call in public media "
                     "(《证券投资顾问业务暂行规定》: no buy, sell or hold advice on specific securities through "
                     "public media; 深圳证监局 2024: 严禁直播荐股)."),
    "stock_tip": _l("Recommending securities in public media is forbidden "
                    "(《证券投资顾问业务暂行规定》: no buy, sell or hold advice on specific securities through "
                    "public media; 深圳证监局 2024: 严禁直播荐股)."),
    "insider_info": _l("Claims of inside information are false or misleading marketing "
                       "(《证券投资顾问业务暂行规定》: no false or misleading marketing)."),
    "market_manipulation": _l("Manipulation wording may only appear in investor education "
                              "(《证券投资顾问业务暂行规定》: no false or misleading marketing)."),
    "traffic_diversion": _l("Steering viewers to private channels is not allowed in the video "
                            "(platform rules, e.g. 快手: no steering to QQ or WeChat groups; "
                            "深圳证监局 2024: no private advisory through self-media)."),
    "group_solicitation": _l("Soliciting viewers into private groups is not allowed "
                             "(platform rules, e.g. 快手: no steering to QQ or WeChat groups; "
                             "深圳证监局 2024: no private advisory through self-media)."),
    "disparagement": _l("Disparaging other firms is not allowed (《广告法》第十三条)."),
    "disclosure": _l("A required disclosure is missing (《广告法》第二十五条: investment ads must "
                     "warn of risk)."),
}


def _text(value) -> str:
    """A stored value as text: findings are JSON a person with database access could have bent."""
    return value if isinstance(value, str) else ""


def _params(finding: Mapping) -> Mapping:
    params = finding.get("params")
    return params if isinstance(params, Mapping) else {}


def _param(params: Mapping, name: str) -> str:
    value = params.get(name, "")
    if isinstance(value, (list, tuple)):
        return "、".join(str(v) for v in value)
    return str(value)


def rule_label(rule: str) -> str:
    """The reader's name of a scanner rule (the code itself only for an unknown rule)."""
    rule = _text(rule)
    label = RULE_LABELS.get(rule)
    return str(label) if label is not None else rule


def category_label(category: str) -> str:
    """The reader's name of a category; a firm's own category is shown as the firm named it."""
    category = _text(category)
    label = CATEGORY_LABELS.get(category)
    return str(label) if label is not None else category


def reason(finding: Mapping) -> str:
    """Why ``finding`` was raised, with the rule it rests on, in the current language."""
    code, params, note = _text(finding.get("code")), _params(finding), _text(finding.get("note"))
    category_reason = str(CATEGORY_REASONS.get(_text(finding.get("category")), ""))
    if code == "lexicon_note":
        return note or category_reason
    if code == "required_missing":
        text = _("Required wording missing; include one of: %(wordings)s.", wordings=_param(params, "wordings"))
        basis = _param(params, "basis") or CATEGORY_REASONS.get("disclosure", "")
        return f"{text} {basis}" if basis else text
    if code == "sac_missing":
        return _("Your SAC registration no. %(expected)s does not appear. The adviser's name and "
                 "registration no. must be disclosed (《证券投资顾问业务暂行规定》; media appearances must "
                 "show the 执业证书号码).", expected=_param(params, "expected"))
    if code == "sac_mismatch":
        return _("%(found)s is not your SAC registration no. (%(expected)s): content may show only the "
                 "presenting adviser's own number (《证券投资顾问业务暂行规定》第七条).",
                 found=_param(params, "found"), expected=_param(params, "expected"))
    if code == "sac_malformed":
        return _("Looks like a SAC registration no. but is not S followed by 13 digits; the number must "
                 "be disclosed exactly as registered (《证券投资顾问业务暂行规定》).")
    if code == "advisor_name_missing":
        return _("Your registered name %(name)s does not appear; the adviser's name must be disclosed "
                 "(《证券投资顾问业务暂行规定》).", name=_param(params, "name"))
    if code == "stock_call":
        return _("%(securities)s next to \"%(verb)s\": a call to trade a specific security in public "
                 "media (《证券投资顾问业务暂行规定》: no buy, sell or hold advice on specific securities "
                 "through public media; 深圳证监局 2024: 严禁直播荐股).",
                 securities=_param(params, "securities"), verb=_param(params, "verb"))
    if code == "return_figure_promise":
        return _("A return figure with the promise word \"%(promise)s\": promising or guaranteeing returns "
                 "is forbidden (《证券投资顾问业务暂行规定》; 316号文; 《广告法》第二十五条).",
                 promise=_param(params, "promise"))
    if code == "return_figure":
        return _("A return figure: check it is not a promise, and give its period and source with a risk "
                 "warning (316号文: no implied guaranteed returns; 《广告法》第二十五条).")
    # A finding stored before reason codes: its plain note, else what its category means.
    return note or category_reason


def suggestion(finding: Mapping) -> str:
    """A compliant rewording for ``finding``, or "" when there is none to offer."""
    if _text(finding.get("suggestion")):
        return finding["suggestion"]
    code, params = _text(finding.get("code")), _params(finding)
    if code in ("sac_missing", "sac_mismatch"):
        return _("Show your number, e.g. \"执业编号：%(expected)s\".", expected=_param(params, "expected"))
    if code == "sac_malformed":
        return _("Write the number as registered: S followed by 13 digits.")
    if code == "advisor_name_missing":
        return _("Introduce yourself, e.g. \"我是投资顾问%(name)s\".", name=_param(params, "name"))
    if code == "stock_call":
        return _("Talk about the sector, the method or the risks instead, e.g. "
                 "\"关注行业基本面变化，注意控制仓位与风险\".")
    if code in ("return_figure", "return_figure_promise"):
        return _("State past figures with their period and source, e.g. "
                 "\"过往业绩不代表未来表现，投资有风险\".")
    return ""


def title(finding: Mapping) -> str:
    """One line for a hover title: rule and category names and the reason, no internal codes."""
    head = rule_label(finding.get("rule"))
    category = _text(finding.get("category"))
    if category:
        head = _("%(rule)s (%(category)s)", rule=head, category=category_label(category))
    why = reason(finding)
    return _("%(head)s: %(why)s", head=head, why=why) if why else head


def view(finding: Mapping) -> dict:
    """Everything a page shows about ``finding`` in the current language."""
    return {"rule_label": rule_label(finding.get("rule")),
            "category_label": category_label(finding.get("category")),
            "reason": reason(finding), "suggestion": suggestion(finding), "title": title(finding)}


def with_titles(findings: Iterable[Mapping] | None) -> list[dict]:
    """Copies of ``findings`` carrying their localized hover ``title`` (for the highlighters)."""
    return [{**f, "title": title(f)} for f in findings or [] if isinstance(f, Mapping)]
