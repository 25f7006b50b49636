"""The audit log reads in the reader's language: every action and every detail key the code can write has
a label (found by reading the code), the system's actors and coded values (statuses, platforms, roles,
events, reasons, yes/no) are worded, identifiers and hashes are shown as code, and a key or action added
later without a label still shows, as its code."""

from __future__ import annotations

import ast
import re

import sqlalchemy as sa
from flask_babel import force_locale

from advisor_studio import audit
from advisor_studio.analytics import fraud
from advisor_studio.compliance.models import DECISIONS
from advisor_studio.core import audit_view
from advisor_studio.distribution.services import ASSIGNMENT_TRANSITIONS
from advisor_studio.errors import REFUSALS_AUDITED
from advisor_studio.extensions import db
from advisor_studio.studio.states import PACKAGE_TRANSITIONS, SCRIPT_TRANSITIONS
from tests.conftest import ROOT, signed_in

PACKAGE = ROOT / "advisor_studio"


def _written_by_the_code() -> tuple[set[str], set[str], set[str]]:
    """Actions and object types (first and second arguments of audit.record / record_refusal) and detail
    keys (dict literals passed as ``details=``, to a state machine's ``transition_*`` or assigned to
    ``details`` / ``info``) written anywhere in the package."""
    actions, types, keys = set(), {"request"}, set()  # "request": record_refusal's default object type
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
                    "record", "record_refusal"):
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    actions.add(first.value)
                elif isinstance(first, ast.JoinedStr):
                    actions.add(ast.unparse(first))
                second = node.args[1] if len(node.args) > 1 else None
                if isinstance(second, ast.Constant) and isinstance(second.value, str):
                    types.add(second.value)
                for keyword in node.keywords:
                    if keyword.arg == "details":
                        keys |= _dict_keys(keyword.value)
            elif isinstance(node, ast.Call) and str(getattr(node.func, "attr", getattr(node.func, "id", ""))
                                                    ).startswith("transition_"):
                for arg in [*node.args, *(k.value for k in node.keywords)]:  # the state machines' details
                    if isinstance(arg, ast.Dict):
                        keys |= _dict_keys(arg)
            elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in ("details", "info")
                                                      for t in node.targets):
                keys |= _dict_keys(node.value)
    return actions, types, keys


def _dict_keys(node) -> set[str]:
    return {k.value for d in ast.walk(node) if isinstance(d, ast.Dict) for k in d.keys
            if isinstance(k, ast.Constant) and isinstance(k.value, str)}


def test_every_action_the_code_can_write_has_a_label():
    literal, _types, _keys = _written_by_the_code()
    assert "f'review.{decision}'" in literal  # the one computed action: a decision's code
    actions = {a for a in literal if "{" not in a} | {f"review.{d}" for d in DECISIONS}
    for table in (SCRIPT_TRANSITIONS, PACKAGE_TRANSITIONS, ASSIGNMENT_TRANSITIONS):
        actions |= {action for moves in table.values() for action in moves.values()}
    actions |= set(fraud.DECISIONS.values()) | set(REFUSALS_AUDITED.values())
    actions |= {"partner.member_linked", "partner.member_unlinked"}  # distribution.services.set_user_partner
    assert sorted(actions - set(audit_view.ACTION_LABELS)) == []


def test_every_object_type_the_code_writes_has_a_label():
    _actions, types, _keys = _written_by_the_code()
    assert {"package", "fraud_flag", "assignment"} <= types
    assert sorted(types - set(audit_view.OBJECT_LABELS)) == []


def test_every_detail_key_the_code_writes_has_a_label():
    _actions, _types, keys = _written_by_the_code()
    assert len(keys) > 100  # the scan found the details
    # Keys written through ** (contacts, signatures, the state machines' extras) and by record_refusal.
    keys |= {"contact_name", "contact_email", "contact_phone", "signed_factor", "signed_at", "review_id",
             "integrity_alert_id", "endpoint", "method", "path"}
    assert sorted(keys - set(audit_view.DETAIL_LABELS)) == []


def test_coded_values_read_in_chinese_and_identifiers_stay_code(app):
    details = {"from": "ready", "to": "withdrawn", "reason": "changed after approval: caption", "is_employee": False,
               "platform": "kuaishou", "roles": ["advisor", "mcn"], "event": "account_opened", "factor": "totp",
               "storage_key": "renditions/ab.mp4", "amount": None,
               "takedown_due_at": "2026-12-01T10:35:10.329141+00:00", "future_key": "x"}
    with app.test_request_context(), force_locale("zh_CN"):
        items = audit_view.detail_items(details, "assignment")
        actor = audit_view.actor_label("fraud-detector")
        partners = [audit_view.actor_label(a) for a in ("partner:3", "partner:3/key:as_live_ab12", "user:7",
                                                        "li.jing@example.com")]
    assert [(i.label, i.value) for i in items] == [
        ("原状态", "待发布"), ("新状态", "已撤回"), ("原因", "批准后修改了文案"), ("员工", "否"), ("平台", "快手"),
        ("角色", "投顾和MCN机构"), ("事件", "开户"), ("验证方式", "身份验证器验证码"),
        ("存储键", "renditions/ab.mp4"), ("金额", "—"), ("下架截止时间", "2026-12-01 18:35"), ("future_key", "x")]
    assert [i.label for i in items if i.value_is_code] == ["存储键", "future_key"]
    assert [i.label for i in items if i.label_is_code] == ["future_key"]  # a key added later shows as its code
    assert actor == "异常流量检测"
    assert partners == ["合作机构 #3", "合作机构 #3（API 密钥 as_live_ab12…）", "用户 #7", "li.jing@example.com"]


def test_nested_details_read_as_labelled_values_not_json(app):
    """A group's before/after and a lexicon rule's from/to: keys worded, coded values labelled, lists joined."""
    group = {"before": {"name": "老客户群", "member_count": 120, "tags": ["高净值", "沪深"]},
             "after": {"name": "老客户一群", "platform": "wecom", "active": False}}
    lexicon = {"changed": {"from": {"phrase": "保本", "kind": "forbidden", "severity": "block"}, "to": {}}}
    with app.test_request_context(), force_locale("zh_CN"):
        group_items = audit_view.detail_items(group, "community_group")
        lexicon_items = audit_view.detail_items(lexicon, "lexicon_version")
    assert [(i.label, i.value) for i in group_items] == [
        ("修改前", "名称: 老客户群; 成员: 120; 标签: 高净值, 沪深"),
        ("修改后", "名称: 老客户一群; 平台: 企业微信; 已启用: 否")]
    [(label, value)] = [(i.label, i.value) for i in lexicon_items]
    assert value == "原状态: 词语: 保本; 类型: 禁用; 级别: 阻断; 新状态: —", value


def test_the_audit_log_page_shows_no_english_for_the_systems_own_entries(app, users):
    with app.app_context():
        audit.record("fraud_flag.raised", "fraud_flag", 1, actor=fraud.DETECTOR,
                     details={"kind": "short_lag", "clicks": 1, "conversions": 2, "subject": "conversion:1"})
        audit.record("assignment.withdrawn", "assignment", 2, actor="system",
                     details={"from": "ready", "to": "withdrawn", "reason": "changed after approval"})
        db.session.commit()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(audit.AuditEntry)) >= 2
    body = signed_in(app, users["compliance"]).get("/audit").get_data(as_text=True)
    timeline = body.split('data-testid="audit-timeline"', 1)[1]
    visible = re.sub(r"<details.*?</details>|<code[^>]*>.*?</code>|<[^>]+>", " ", timeline, flags=re.S)
    assert "异常流量检测" in visible and "注册过快" in visible and "已撤回" in visible and "批准后被修改" in visible
    english = [w for token in visible.split() if "@" not in token for w in re.findall(r"[A-Za-z]{4,}", token)]
    assert english == [], english
