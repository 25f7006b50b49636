"""Sign-in, sign-out, own password, and admin user management."""

from __future__ import annotations

import time
from datetime import timedelta

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import format_datetime, ngettext
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from advisor_studio.access import (
    login_required,
    mark_reauthenticated,
    public,
    require,
    roles_required,
    step_up_required,
)
from advisor_studio.accounts import queries, services, totp
from advisor_studio.accounts.forms import (
    ConfirmIdentityForm,
    DeactivateForm,
    GrantDecisionForm,
    LoginForm,
    LogoutForm,
    PasswordForm,
    ProfileForm,
    ReactivateForm,
    ResetPasswordForm,
    SecondStepForm,
    TotpConfirmForm,
    TotpDisableForm,
    TotpStartForm,
    UserCreateForm,
    UserEditForm,
)
from advisor_studio.accounts.models import AdvisorProfile, RoleGrantRequest, User, UserRole
from advisor_studio.accounts.permissions import (
    can_decide_role_request,
    can_edit_own_profile,
    can_manage_users,
    can_view_avatar,
    second_factor_required,
)
from advisor_studio.errors import DomainError, error_response, wants_json
from advisor_studio.extensions import db, limiter, login_manager
from advisor_studio.web import query_page, safe_next, stream_object

bp = Blueprint("accounts", __name__)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Resolve the session cookie; a rotated token or an inactive user ends the session."""
    raw_id, _sep, token = (user_id or "").partition(":")
    if not raw_id.isdigit() or not token:
        return None
    user = db.session.get(User, int(raw_id))
    if user is None or not user.active or user.session_token != token:
        return None
    return user


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _address_limit() -> str:
    return current_app.config["LOGIN_ADDRESS_RATE_LIMIT"]


def _address() -> str:
    return request.remote_addr or ""


def _email_address_key() -> str:
    # Per (email, address): a guesser elsewhere never uses up the real user's attempts.
    return "login:" + (request.form.get("email") or "").strip().lower() + "|" + _address()


def _pending_key() -> str:
    pending = session.get(_PENDING) or {}
    return f"login2:{pending.get('uid')}|{_address()}"


# Endpoints a signed-in user may still reach while a password change or 2FA enrolment is owed.
_GATE_OPEN = {"static", "bootstrap.static", "accounts.logout", "core.set_language"}
_ENROLMENT_ENDPOINTS = {"accounts.two_factor", "accounts.two_factor_start", "accounts.two_factor_confirm"}


@bp.before_app_request
def enforce_account_gates():
    """A user owing a password change or a required second factor can do nothing else until done."""
    if request.endpoint in _GATE_OPEN or not current_user.is_authenticated:
        return None
    if current_user.must_change_password:
        if request.endpoint == "accounts.password":
            return None
        if wants_json():
            return error_response(403, _("Change your password first."), "password_change_required")
        flash(_("Your password was reset by an admin. Choose a new password to continue."), "warning")
        return redirect(url_for("accounts.password"))
    if second_factor_required(current_user) and not current_user.totp_enabled:
        if request.endpoint in _ENROLMENT_ENDPOINTS:
            return None
        if wants_json():
            return error_response(403, _("Set up your second factor first."), "second_factor_required")
        flash(_("Your role requires a second factor. Set it up to continue."), "warning")
        return redirect(url_for("accounts.two_factor"))
    return None


def _flash_domain_error(err: DomainError, form) -> None:
    for field, why in err.fields.items():
        if field in form:
            form[field].errors = list(form[field].errors) + [why]
    flash(err.message, "danger")


_PENDING = "login_pending"


def _complete_login(user: User, factor: str, remember: bool, next_url: str | None):
    """Both steps passed: sign in, count it as a confirmation, and tell the user about failed attempts."""
    session.pop(_PENDING, None)
    login_user(user, remember=remember, duration=timedelta(days=current_app.config["REMEMBER_DAYS"]))
    mark_reauthenticated(factor)
    report = services.record_login(user, address=_address(), factor=factor)
    db.session.commit()
    if report:
        flash(_("%(n)d failed sign-in attempts since your last sign-in, most recent at %(time)s from address "
                "%(address)s. If that was not you, tell your admin.", n=report["count"],
                time=format_datetime(report["last_at"]), address=report["last_address"]), "warning")
    return redirect(safe_next(next_url) or url_for("core.home"))


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(_address_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_email_address_key)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("core.home"))
    form = LoginForm()
    if form.validate_on_submit():
        wait = services.login_backoff_seconds(form.email.data, _address())
        if wait:
            services.record_failed_login(form.email.data, "backoff")
            db.session.commit()
            flash(_("Too many failed sign-ins to this account from other places. Try again in %(n)d seconds, "
                    "or sign in from a place you have used before.", n=wait), "danger")
            response = render_template("accounts/login.html", form=form), 429
            return response
        user = services.authenticate(form.email.data, form.password.data)
        if user is None or not user.active:
            services.record_failed_login(form.email.data, "bad_credentials" if user is None else "inactive",
                                         _address())
            db.session.commit()
            # One message for unknown email, wrong password and disabled account alike.
            flash(_("Incorrect email or password, or the account is disabled."), "danger")
            return render_template("accounts/login.html", form=form), 401
        if user.totp_enabled:
            # Half signed in: remembered in the session only, expires soon, grants nothing.
            session[_PENDING] = {"uid": user.id, "token": user.session_token, "at": time.time(),
                                 "remember": bool(form.remember.data), "next": request.args.get("next")}
            db.session.commit()  # a password rehash, if any
            return redirect(url_for("accounts.login_second_step"))
        return _complete_login(user, services.FACTOR_PASSWORD, form.remember.data, request.args.get("next"))
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/login.html", form=form), status


def _pending_user() -> User | None:
    pending = session.get(_PENDING)
    if not isinstance(pending, dict):
        return None
    age = time.time() - float(pending.get("at") or 0)
    user = db.session.get(User, int(pending.get("uid") or 0))
    if (age < 0 or age > current_app.config["LOGIN_SECOND_STEP_MINUTES"] * 60 or user is None or not user.active
            or user.session_token != pending.get("token") or not user.totp_enabled):
        session.pop(_PENDING, None)
        return None
    return user


@bp.route("/login/verify", methods=["GET", "POST"])
@public
@limiter.limit(_address_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_pending_key)
def login_second_step():
    if current_user.is_authenticated:
        return redirect(url_for("core.home"))
    user = _pending_user()
    if user is None:
        flash(_("Your sign-in expired. Enter your email and password again."), "warning")
        return redirect(url_for("accounts.login"))
    form = SecondStepForm()
    if form.validate_on_submit():
        factor = services.verify_second_factor(user, form.code.data)
        if factor is None:
            services.record_failed_login(user.email, "bad_second_factor", _address())
            db.session.commit()
            form.code.errors = [_("That code is not valid or was already used.")]
            return render_template("accounts/login_verify.html", form=form), 401
        pending = session.get(_PENDING) or {}
        return _complete_login(user, factor, bool(pending.get("remember")), pending.get("next"))
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/login_verify.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    form = LogoutForm()
    if form.validate_on_submit():
        services.record_logout(current_user)
        db.session.commit()
        logout_user()
        flash(_("You have been signed out."), "info")
    return redirect(url_for("accounts.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    form = PasswordForm()
    if form.validate_on_submit():
        if not current_user.check_password(form.current_password.data):
            form.current_password.errors = [_("Current password is incorrect.")]
        else:
            try:
                user = services.change_password(current_user._get_current_object(), form.new_password.data,
                                                actor=current_user)
            except DomainError as err:
                _flash_domain_error(err, form)
            else:
                db.session.commit()
                login_user(user, duration=timedelta(days=current_app.config["REMEMBER_DAYS"]))  # new token
                mark_reauthenticated(services.FACTOR_PASSWORD)
                flash(_("Password changed. Your other sessions have been signed out."), "success")
                return redirect(url_for("core.home"))
    return render_template("accounts/password.html", form=form)


@bp.route("/account/profile", methods=["GET", "POST"])
@roles_required("advisor")
def profile():
    require(can_edit_own_profile(current_user))
    form = ProfileForm(obj=current_user.advisor_profile)
    if form.validate_on_submit():
        upload = form.avatar.data if form.avatar.data and form.avatar.data.filename else None
        try:
            services.update_own_profile(current_user, bio=form.bio.data or "",
                                        avatar_stream=upload.stream if upload else None, actor=current_user)
        except DomainError as err:
            db.session.rollback()
            _flash_domain_error(err, form)
        else:
            db.session.commit()
            flash(_("Profile saved."), "success")
            return redirect(url_for("accounts.profile"))
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/profile.html", form=form, profile=current_user.advisor_profile), status


@bp.route("/advisors/<int:user_id>/avatar.jpg")
@login_required
def avatar(user_id: int):
    profile = db.get_or_404(AdvisorProfile, user_id)
    require(can_view_avatar(current_user, profile))
    if not profile.avatar_key:
        abort(404)
    return stream_object(profile.avatar_key, content_type="image/jpeg")


# --- admin: users ---------------------------------------------------------------------------


@bp.route("/admin/users")
@roles_required("admin")
def users():
    require(can_manage_users(current_user))
    q = (request.args.get("q") or "").strip()[:100]
    role = request.args.get("role") or ""
    status = request.args.get("status") or ""
    stmt = sa.select(User).order_by(User.created_at.desc(), User.id.desc())
    if q:
        stmt = stmt.where(sa.or_(User.email.icontains(q, autoescape=True), User.name.icontains(q, autoescape=True)))
    if role:
        stmt = stmt.where(User.id.in_(sa.select(UserRole.user_id).where(UserRole.role == role)))
    if status in ("active", "inactive"):
        stmt = stmt.where(User.active.is_(status == "active"))
    page = db.paginate(stmt, page=query_page(), per_page=current_app.config["PAGE_SIZE"], error_out=False)
    return render_template("accounts/users.html", page=page, q=q, role=role, status=status)


def _with_partner_choices(form):
    from advisor_studio.distribution.queries import partner_choices

    form.partner_id.choices = [("", _("— no partner —")), *partner_choices()]
    return form


def _show_problems(form, err: DomainError | None = None) -> None:
    """Put every problem the services found next to its field, in one answer; a field that already
    shows a problem of the form's own checks keeps that one. What no field shows goes to the top."""
    for one in (getattr(err, "errors", None) or [err]) if err is not None else []:
        named = [name for name in one.fields if name in form and name != "csrf_token"]
        for name in named:
            if not form[name].errors:
                form[name].errors = [one.message]
        if not named:
            flash(one.message, "danger")
    count = sum(1 for f in form if f.errors)
    if count:
        flash(ngettext("Correct the field marked below; nothing was saved.",
                       "Correct the %(num)d fields marked below; nothing was saved.", count), "danger")


def _advisor_values(form, roles) -> dict:
    """The advisor-profile fields count only for advisors: for anyone else they are ignored, and
    cleared on the page. None means "not sent" (the stored value stays when editing)."""
    names = [name for name in ("sac_number", "real_name", "bio") if name in form]
    if "advisor" not in roles:
        for name in names:
            form[name].data = ""
        return dict.fromkeys(names)
    values = {name: form[name].data for name in names}
    if "real_name" in values:
        values["real_name"] = values["real_name"] or None  # empty: the stored real name, or the user's name
    return values


@bp.route("/admin/users/new", methods=["GET", "POST"])
@roles_required("admin")
@step_up_required
def user_new():
    require(can_manage_users(current_user))
    form = _with_partner_choices(UserCreateForm())
    if not form.is_submitted():
        return render_template("accounts/user_form.html", form=form, user=None)
    # The form's own checks and every service check run, so the page names all problems at once.
    shape_ok = form.validate()
    roles = list(form.roles.data or [])
    values = {"email": form.email.data or "", "password": form.password.data or "", "roles": roles,
              "name": form.name.data or "", "partner_id": form.partner_id.data, **_advisor_values(form, roles)}
    try:
        if not shape_ok:
            services.check_new_user(**values)
        else:
            user = services.create_user(**values, actor=current_user)
    except DomainError as err:
        db.session.rollback()
        _show_problems(form, err)
    else:
        if shape_ok:
            db.session.commit()
            flash(_("User %(email)s created.", email=user.email), "success")
            return redirect(url_for("accounts.user_edit", user_id=user.id))
        _show_problems(form)
    return render_template("accounts/user_form.html", form=form, user=None), 400


def _render_user_form(user: User, form, status: int = 200, reset_form=None):
    _with_partner_choices(form)
    return render_template(
        "accounts/user_form.html", form=form, user=user,
        deactivate_form=DeactivateForm(), reactivate_form=ReactivateForm(),
        reset_form=reset_form or ResetPasswordForm(formdata=None), grant_form=GrantDecisionForm(),
        grant_requests=queries.pending_grant_requests(user.id), role_history=queries.role_history(user.id),
    ), status


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@roles_required("admin")
@step_up_required
def user_edit(user_id: int):
    user = db.get_or_404(User, user_id)
    require(can_manage_users(current_user))
    form = _with_partner_choices(UserEditForm(obj=user))
    if request.method == "GET":
        form.roles.data = sorted(user.roles)
        if user.advisor_profile:
            form.real_name.data = user.advisor_profile.real_name
            form.sac_number.data = user.advisor_profile.sac_number
            form.bio.data = user.advisor_profile.bio
        return _render_user_form(user, form)
    shape_ok = form.validate()
    roles = list(form.roles.data or [])
    # A partner_id not sent keeps the user's partner (the form was filled from the user).
    values = {"name": form.name.data or "", "roles": roles, "partner_id": form.partner_id.data,
              **_advisor_values(form, roles)}
    try:
        if not shape_ok:
            services.check_user_update(user, **values, actor=current_user)
        else:
            services.update_user(user, **values, actor=current_user)
    except DomainError as err:
        db.session.rollback()
        if err.code == "self_grant":
            # The change is refused; the attempt itself is kept in the audit trail.
            services.record_refused_role_change(user, actor=current_user, roles=roles, reason=err.code)
            db.session.commit()
        _show_problems(form, err)
        return _render_user_form(user, form, err.status)
    if not shape_ok:
        _show_problems(form)
        return _render_user_form(user, form, 400)
    db.session.commit()
    flash(_("Changes saved."), "success")
    if queries.pending_grant_requests(user.id):
        flash(_("Compliance and admin roles wait for a second admin's confirmation."), "info")
    return redirect(url_for("accounts.user_edit", user_id=user.id))


@bp.route("/admin/users/<int:user_id>/reset-password", methods=["POST"])
@roles_required("admin")
@step_up_required
def user_reset_password(user_id: int):
    user = db.get_or_404(User, user_id)
    require(can_manage_users(current_user))
    form = ResetPasswordForm()
    if not form.validate_on_submit():
        flash(_("Confirm to reset this user's password."), "danger")
        return _render_user_form(user, UserEditForm(obj=user), 400, reset_form=form)
    try:
        generated = services.reset_password(user, actor=current_user, password=form.password.data or None)
    except DomainError as err:
        db.session.rollback()
        _flash_domain_error(err, form)
        return _render_user_form(user, UserEditForm(obj=user), err.status, reset_form=form)
    db.session.commit()
    if generated:
        # Shown once in this response; only its hash is stored.
        return render_template("accounts/temporary_password.html", user=user, password=generated)
    flash(_("Password reset. %(email)s must choose a new one at next sign-in.", email=user.email), "success")
    return redirect(url_for("accounts.user_edit", user_id=user.id))


def _grant_action(request_id: int, action, message: str):
    grant = db.get_or_404(RoleGrantRequest, request_id)
    require(can_decide_role_request(current_user, grant))
    if GrantDecisionForm().validate_on_submit():
        try:
            action(grant, actor=current_user)
        except DomainError as err:
            db.session.rollback()
            flash(err.message, "danger")
        else:
            db.session.commit()
            flash(message, "success")
    return redirect(safe_next(request.form.get("next")) or url_for("accounts.user_edit", user_id=grant.user_id))


@bp.route("/admin/role-requests/<int:request_id>/confirm", methods=["POST"])
@roles_required("admin")
@step_up_required
def role_request_confirm(request_id: int):
    return _grant_action(request_id, services.confirm_role_grant, _("Role granted."))


@bp.route("/admin/role-requests/<int:request_id>/cancel", methods=["POST"])
@roles_required("admin")
@step_up_required
def role_request_cancel(request_id: int):
    return _grant_action(request_id, services.cancel_role_grant, _("Role request cancelled."))


@bp.route("/admin/users/<int:user_id>/deactivate", methods=["POST"])
@roles_required("admin")
def user_deactivate(user_id: int):
    user = db.get_or_404(User, user_id)
    require(can_manage_users(current_user))
    form = DeactivateForm()
    if not form.validate_on_submit():
        flash(_("Give a reason and confirm to deactivate this user."), "danger")
        return redirect(url_for("accounts.user_edit", user_id=user.id))
    try:
        services.set_active(user, False, actor=current_user, reason=form.reason.data)
    except DomainError as err:
        db.session.rollback()
        flash(err.message, "danger")
    else:
        db.session.commit()
        flash(_("User %(email)s deactivated and signed out.", email=user.email), "success")
    return redirect(url_for("accounts.user_edit", user_id=user.id))


@bp.route("/admin/users/<int:user_id>/reactivate", methods=["POST"])
@roles_required("admin")
def user_reactivate(user_id: int):
    user = db.get_or_404(User, user_id)
    require(can_manage_users(current_user))
    if ReactivateForm().validate_on_submit():
        services.set_active(user, True, actor=current_user)
        db.session.commit()
        flash(_("User %(email)s can sign in again.", email=user.email), "success")
    return redirect(url_for("accounts.user_edit", user_id=user.id))


# --- second factor ---------------------------------------------------------------------------


def _render_enrolment(secret: str, form: TotpConfirmForm, status: int = 200):
    uri = totp.provisioning_uri(secret, current_user.email)
    return render_template("accounts/two_factor_setup.html", form=form, secret=secret,
                           qr_svg=totp.qr_svg(uri)), status


@bp.route("/account/2fa")
@login_required
def two_factor():
    return render_template("accounts/two_factor.html", start_form=TotpStartForm(), disable_form=TotpDisableForm(),
                           required=second_factor_required(current_user),
                           remaining=services.remaining_recovery_codes(current_user))


@bp.route("/account/2fa/start", methods=["POST"])
@login_required
def two_factor_start():
    if not TotpStartForm().validate_on_submit():
        return redirect(url_for(".two_factor"))
    try:
        secret = services.begin_totp_enrolment(current_user)
    except DomainError as err:
        db.session.rollback()
        flash(err.message, "danger")
        return redirect(url_for(".two_factor"))
    db.session.commit()
    return _render_enrolment(secret, TotpConfirmForm(formdata=None))


@bp.route("/account/2fa/confirm", methods=["POST"])
@login_required
@limiter.limit(_login_limit, key_func=lambda: f"2fa-confirm:{current_user.get_id()}")
def two_factor_confirm():
    form = TotpConfirmForm()
    secret = services.totp_secret(current_user)
    if secret is None or current_user.totp_enabled:
        return redirect(url_for(".two_factor"))
    if not form.validate_on_submit():
        return _render_enrolment(secret, form, 400)
    try:
        codes = services.confirm_totp_enrolment(current_user, form.code.data)
    except DomainError as err:
        db.session.rollback()
        _flash_domain_error(err, form)
        return _render_enrolment(secret, form, err.status)
    mark_reauthenticated(services.FACTOR_TOTP)
    db.session.commit()
    # Shown once, in this response only: the database keeps just their hashes.
    return render_template("accounts/recovery_codes.html", codes=codes)


@bp.route("/account/2fa/disable", methods=["POST"])
@login_required
@limiter.limit(_login_limit, key_func=lambda: f"2fa-disable:{current_user.get_id()}")
def two_factor_disable():
    form = TotpDisableForm()
    if form.validate_on_submit():
        try:
            user = services.disable_totp(current_user._get_current_object(), password=form.password.data,
                                         code=form.code.data,
                                         required=second_factor_required(current_user))
        except DomainError as err:
            db.session.rollback()
            flash(err.message, "danger")
        else:
            db.session.commit()
            login_user(user)  # this session continues under the rotated token; the others end
            mark_reauthenticated(services.FACTOR_PASSWORD)
            flash(_("The second factor is off. Your other sessions have been signed out."), "success")
    else:
        flash(_("Enter your password and a code to turn the second factor off."), "danger")
    return redirect(url_for(".two_factor"))


# --- step-up confirmation --------------------------------------------------------------------


@bp.route("/account/confirm", methods=["GET", "POST"])
@login_required
@limiter.limit(_login_limit, methods=["POST"], key_func=lambda: f"confirm:{current_user.get_id()}")
def confirm():
    form = ConfirmIdentityForm()
    next_url = safe_next(request.args.get("next")) or url_for("core.home")
    status = 200
    if form.validate_on_submit():
        factor = None
        if form.code.data and current_user.totp_enabled:
            factor = services.FACTOR_TOTP if services.verify_totp(current_user, form.code.data) else None
        elif form.password.data:
            factor = services.FACTOR_PASSWORD if current_user.check_password(form.password.data) else None
        services.record_reauthentication(current_user, factor, ok=factor is not None)
        db.session.commit()
        if factor is not None:
            mark_reauthenticated(factor)
            flash(_("Identity confirmed. You can now repeat the action."), "success")
            return redirect(next_url)
        flash(_("The password or code is not correct."), "danger")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("accounts/confirm.html", form=form, next_url=next_url), status
