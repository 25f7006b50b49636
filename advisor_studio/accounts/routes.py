"""Sign-in, sign-out, own password, and admin user management."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from advisor_studio.access import login_required, public, require, roles_required
from advisor_studio.accounts import services
from advisor_studio.accounts.forms import (
    DeactivateForm,
    LoginForm,
    LogoutForm,
    PasswordForm,
    ProfileForm,
    ReactivateForm,
    UserCreateForm,
    UserEditForm,
)
from advisor_studio.accounts.models import AdvisorProfile, User, UserRole
from advisor_studio.accounts.permissions import can_edit_own_profile, can_manage_users, can_view_avatar
from advisor_studio.errors import DomainError
from advisor_studio.extensions import db, limiter, login_manager
from advisor_studio.web import safe_next, stream_object

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


def _email_key() -> str:
    return "login-email:" + (request.form.get("email") or "").strip().lower()


def _flash_domain_error(err: DomainError, form) -> None:
    for field, why in err.fields.items():
        if field in form:
            form[field].errors = list(form[field].errors) + [why]
    flash(err.message, "danger")


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_email_key)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("core.home"))
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data)
        if user is None or not user.active:
            services.record_failed_login(form.email.data, "bad_credentials" if user is None else "inactive")
            db.session.commit()
            # One message for unknown email, wrong password and disabled account alike.
            flash(_("Incorrect email or password, or the account is disabled."), "danger")
            return render_template("accounts/login.html", form=form), 401
        login_user(user, remember=form.remember.data)
        services.record_login(user)
        db.session.commit()
        return redirect(safe_next(request.args.get("next")) or url_for("core.home"))
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/login.html", form=form), status


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
                user = services.change_password(current_user, form.new_password.data, actor=current_user)
            except DomainError as err:
                _flash_domain_error(err, form)
            else:
                db.session.commit()
                login_user(user)  # keep this session alive under the new token
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
        like = f"%{q.lower()}%"
        stmt = stmt.where(sa.or_(sa.func.lower(User.email).like(like), sa.func.lower(User.name).like(like)))
    if role:
        stmt = stmt.where(User.id.in_(sa.select(UserRole.user_id).where(UserRole.role == role)))
    if status in ("active", "inactive"):
        stmt = stmt.where(User.active.is_(status == "active"))
    page = db.paginate(stmt, per_page=current_app.config["PAGE_SIZE"], error_out=False)
    return render_template("accounts/users.html", page=page, q=q, role=role, status=status)


@bp.route("/admin/users/new", methods=["GET", "POST"])
@roles_required("admin")
def user_new():
    require(can_manage_users(current_user))
    form = UserCreateForm()
    if form.validate_on_submit():
        try:
            user = services.create_user(
                email=form.email.data, password=form.password.data, roles=form.roles.data,
                name=form.name.data, sac_number=form.sac_number.data or None, bio=form.bio.data or "",
                actor=current_user,
            )
        except DomainError as err:
            db.session.rollback()
            _flash_domain_error(err, form)
        else:
            db.session.commit()
            flash(_("User %(email)s created.", email=user.email), "success")
            return redirect(url_for("accounts.user_edit", user_id=user.id))
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/user_form.html", form=form, user=None), status


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@roles_required("admin")
def user_edit(user_id: int):
    user = db.get_or_404(User, user_id)
    require(can_manage_users(current_user))
    form = UserEditForm(obj=user)
    if request.method == "GET":
        form.roles.data = sorted(user.roles)
        if user.advisor_profile:
            form.real_name.data = user.advisor_profile.real_name
            form.sac_number.data = user.advisor_profile.sac_number
            form.bio.data = user.advisor_profile.bio
    if form.validate_on_submit():
        try:
            services.update_user(
                user, name=form.name.data, roles=form.roles.data,
                sac_number=form.sac_number.data or None, real_name=form.real_name.data or None,
                bio=form.bio.data, actor=current_user,
            )
        except DomainError as err:
            db.session.rollback()
            _flash_domain_error(err, form)
        else:
            db.session.commit()
            flash(_("Changes saved."), "success")
            return redirect(url_for("accounts.user_edit", user_id=user.id))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "accounts/user_form.html", form=form, user=user,
        deactivate_form=DeactivateForm(), reactivate_form=ReactivateForm(),
    ), status


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
