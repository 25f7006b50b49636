"""Configuration classes, read from the environment when instantiated.

Defaults that depend on the Flask instance folder (database file, secret key, broker
folders) are left as ``None`` here and filled in by ``create_app`` once the instance
path is known, so importing this module has no side effects.
"""

from __future__ import annotations

import os
from datetime import timedelta

REMEMBER_DAYS_MAX = 30  # a remember-me cookie never outlives a month, whatever the environment says


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    value = _env(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:  # fail fast on a typo in deployment config
        raise RuntimeError(f"{name} must be an integer, got {value!r}") from exc


class Config:
    """Embedded defaults: SQLite, local media/, file-system Celery broker."""

    ENV_NAME = "default"
    TESTING = False
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    CELERY_TASK_ALWAYS_EAGER = False
    RATELIMIT_HEADERS_ENABLED = True
    BABEL_DEFAULT_LOCALE = "zh_CN"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    LANGUAGES = {"zh_CN": "中文", "en": "English"}
    WTF_CSRF_TIME_LIMIT = 8 * 3600
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = False
    PERMANENT_SESSION_LIFETIME = 12 * 3600
    BOOTSTRAP_SERVE_LOCAL = True
    PAGE_SIZE = 25
    DEFAULT_LOGIN_RATE_LIMIT = "5 per minute"
    DEFAULT_REQUIRE_2FA = "0"
    DEFAULT_WEBHOOK_ALLOW_PRIVATE = "1"

    def __init__(self) -> None:
        self.SECRET_KEY = _env("SECRET_KEY", getattr(self, "SECRET_KEY", None))
        self.SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL")
        self.CELERY_BROKER_URL = _env("CELERY_BROKER_URL")
        self.CELERY_RESULT_BACKEND = _env("CELERY_RESULT_BACKEND")
        self.STORAGE_BACKEND = _env("STORAGE_BACKEND", "local")
        self.MEDIA_ROOT = _env("MEDIA_ROOT")
        self.S3_BUCKET = _env("S3_BUCKET", "advisor-studio")
        self.S3_ENDPOINT_URL = _env("S3_ENDPOINT_URL")
        self.S3_REGION = _env("S3_REGION", "us-east-1")
        self.S3_CREATE_BUCKET = _env("S3_CREATE_BUCKET", "0").lower() in ("1", "true", "yes")
        self.PUBLIC_BASE_URL = _env("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
        self.CONVERSION_WEBHOOK_SECRET = _env("CONVERSION_WEBHOOK_SECRET")
        self.ATTRIBUTION_WINDOW_DAYS = _env_int("ATTRIBUTION_WINDOW_DAYS", 30)
        # Key of the HMAC under which customer references are stored; derived from SECRET_KEY when unset.
        self.CUSTOMER_REF_KEY = _env("CUSTOMER_REF_KEY")
        # Where package links created at submission send people (an account-opening page).
        self.REFERRAL_DEFAULT_DESTINATION = _env("REFERRAL_DEFAULT_DESTINATION", "https://kaihu.example.com/open")
        self.CONVERSION_MAX_BODY_BYTES = _env_int("CONVERSION_MAX_BODY_BYTES", 64 * 1024)
        # Hosts a referral link may send people to (the account-opening pages); anything else is refused.
        self.REFERRAL_ALLOWED_HOSTS = tuple(
            h.strip().lower().rstrip(".") for h in _env("REFERRAL_ALLOWED_HOSTS", "kaihu.example.com").split(",")
            if h.strip())
        self.APPROVAL_VALID_DAYS = _env_int("APPROVAL_VALID_DAYS", 90)
        # Referral redirect: clicks are spooled (files under instance/, or Redis when the broker is
        # Redis; "file" or "redis" forces one) and drained into the database every second.
        self.CLICK_SPOOL = _env("CLICK_SPOOL", "auto")
        self.CLICK_SPOOL_REDIS_KEY = _env("CLICK_SPOOL_REDIS_KEY")
        self.CLICK_SPOOL_ROTATE_SECONDS = float(_env("CLICK_SPOOL_ROTATE_SECONDS", "1.0"))
        self.CLICK_DRAIN_INTERVAL_SECONDS = float(_env("CLICK_DRAIN_INTERVAL_SECONDS", "1.0"))
        # How often celery beat folds new clicks and conversions into the analytics rollups.
        self.ANALYTICS_REFRESH_INTERVAL_SECONDS = float(_env("ANALYTICS_REFRESH_INTERVAL_SECONDS", "60"))
        # A link lookup is cached per process this long: a disabled or withdrawn link answers 410
        # within one second everywhere.
        self.REFERRAL_LINK_CACHE_SECONDS = min(float(_env("REFERRAL_LINK_CACHE_SECONDS", "0.5")), 1.0)
        self.DOWNLOAD_URL_TTL_SECONDS = _env_int("DOWNLOAD_URL_TTL_SECONDS", 900)
        # How long a partner has to take down every post of a withdrawn or expired asset.
        self.TAKEDOWN_DEADLINE_HOURS = _env_int("TAKEDOWN_DEADLINE_HOURS", 24)
        # Partner webhook URLs: with 0 (production) they must be https and resolve only to public
        # addresses, checked at save and again at every send (server-side request forgery).
        self.WEBHOOK_ALLOW_PRIVATE = _env("WEBHOOK_ALLOW_PRIVATE", self.DEFAULT_WEBHOOK_ALLOW_PRIVATE).lower() in (
            "1", "true", "yes")
        # Failed webhook deliveries are retried after a random wait (full jitter) up to
        # BASE * 2^(n-1) seconds, at most CAP seconds, for RETRY_HOURS after the run started; then failed.
        self.WEBHOOK_RETRY_BASE_SECONDS = _env_int("WEBHOOK_RETRY_BASE_SECONDS", 30)
        self.WEBHOOK_RETRY_CAP_SECONDS = _env_int("WEBHOOK_RETRY_CAP_SECONDS", 3600)
        self.WEBHOOK_RETRY_HOURS = _env_int("WEBHOOK_RETRY_HOURS", 24)
        self.WEBHOOK_TIMEOUT_SECONDS = _env_int("WEBHOOK_TIMEOUT_SECONDS", 10)  # connect and read, per attempt
        # How often every stored file of every live approval is re-hashed (celery beat), in seconds.
        self.INTEGRITY_VERIFY_INTERVAL_SECONDS = _env_int("INTEGRITY_VERIFY_INTERVAL_SECONDS", 86400)
        # A byte range is served only if the file was fully verified this recently and is unchanged since
        # (longer than the re-verification interval, so the scheduled run keeps ranges from re-hashing).
        self.INTEGRITY_RANGE_MAX_AGE_SECONDS = _env_int("INTEGRITY_RANGE_MAX_AGE_SECONDS", 2 * 86400)
        # Reconciliation uploads (the account-opening system's CSV): refused beyond this many rows or MB.
        self.RECONCILIATION_MAX_ROWS = _env_int("RECONCILIATION_MAX_ROWS", 200_000)
        self.RECONCILIATION_MAX_MB = _env_int("RECONCILIATION_MAX_MB", 64)
        self.MAX_UPLOAD_MB = _env_int("MAX_UPLOAD_MB", 2048)
        # Werkzeug answers 413 before reading a body larger than this.
        self.MAX_CONTENT_LENGTH = self.MAX_UPLOAD_MB * 1024 * 1024
        self.FORM_MAX_MB = _env_int("FORM_MAX_MB", 16)  # every request body except video uploads
        self.MAX_VIDEO_SECONDS = _env_int("MAX_VIDEO_SECONDS", 900)
        self.MAX_VIDEO_SIDE_PX = _env_int("MAX_VIDEO_SIDE_PX", 4096)  # larger source frames are refused at upload
        self.RENDER_PRESET = _env("RENDER_PRESET", "veryfast")
        self.FIRM_WATERMARK = _env("FIRM_WATERMARK", "某某证券")  # placeholder: operators set the firm's name
        self.REVIEW_CLAIM_MINUTES = _env_int("REVIEW_CLAIM_MINUTES", 30)
        self.REVIEW_SLA_HOURS = {"script": _env_int("REVIEW_SLA_HOURS_SCRIPT", 24),
                                 "package": _env_int("REVIEW_SLA_HOURS_PACKAGE", 48)}
        # Officers are notified once when an open review comes this close to its due time (0: never).
        self.REVIEW_DUE_SOON_HOURS = _env_int("REVIEW_DUE_SOON_HOURS", 4)
        # Notification e-mail (optional): sent by a worker after the event commits, only with MAIL_SERVER set.
        self.MAIL_SERVER = _env("MAIL_SERVER")
        self.MAIL_USE_TLS = (_env("MAIL_USE_TLS", "0") or "0").lower() in ("1", "true", "yes")  # STARTTLS
        self.MAIL_PORT = _env_int("MAIL_PORT", 587 if self.MAIL_USE_TLS else 25)
        self.MAIL_USERNAME = _env("MAIL_USERNAME")
        self.MAIL_PASSWORD = _env("MAIL_PASSWORD")
        self.MAIL_FROM = _env("MAIL_FROM", "advisor-studio@localhost")
        self.MAIL_TIMEOUT_SECONDS = _env_int("MAIL_TIMEOUT_SECONDS", 10)
        if self.MAIL_SERVER and not 0 < self.MAIL_PORT < 65536:
            raise RuntimeError(f"MAIL_PORT must be a TCP port, got {self.MAIL_PORT}")
        self.RATELIMIT_STORAGE_URI = _env("RATELIMIT_STORAGE_URI", "memory://")
        # Requests per partner API key (Flask-Limiter syntax); 429 in the contract's error shape beyond it.
        self.PARTNER_API_RATE_LIMIT = _env("PARTNER_API_RATE_LIMIT", "600 per minute")
        # Look-ups of customers by reference on the customer-link page, per user: typing refs one by one
        # is fine, guessing other advisors' customers in bulk is not.
        self.CUSTOMER_LINK_RATE_LIMIT = _env("CUSTOMER_LINK_RATE_LIMIT", "30 per minute")
        # Per (email, address): a guesser at one address is slowed without touching the user elsewhere.
        self.LOGIN_RATE_LIMIT = _env("LOGIN_RATE_LIMIT", self.DEFAULT_LOGIN_RATE_LIMIT)
        # Per address across all emails (credential stuffing); generous so a shared office NAT still works.
        self.LOGIN_ADDRESS_RATE_LIMIT = _env("LOGIN_ADDRESS_RATE_LIMIT", "60 per minute")
        # Per email from addresses the user never signed in from: exponential delay after this many
        # failures in an hour; the user's usual addresses are never delayed.
        self.LOGIN_BACKOFF_THRESHOLD = _env_int("LOGIN_BACKOFF_THRESHOLD", 20)
        self.LOGIN_BACKOFF_MAX_SECONDS = _env_int("LOGIN_BACKOFF_MAX_SECONDS", 900)
        self.REQUIRE_2FA = _env("REQUIRE_2FA", self.DEFAULT_REQUIRE_2FA).lower() in ("1", "true", "yes")
        # Optional dedicated key for TOTP secrets at rest; without it a key is derived from SECRET_KEY.
        self.TOTP_ENCRYPTION_KEY = _env("TOTP_ENCRYPTION_KEY")
        self.LOGIN_SECOND_STEP_MINUTES = _env_int("LOGIN_SECOND_STEP_MINUTES", 5)
        self.STEP_UP_MINUTES = _env_int("STEP_UP_MINUTES", 5)
        self.ADMIN_REVIEW_COOLDOWN_DAYS = _env_int("ADMIN_REVIEW_COOLDOWN_DAYS", 30)
        self.REMEMBER_DAYS = max(1, min(_env_int("REMEMBER_DAYS", 14), REMEMBER_DAYS_MAX))
        self.REMEMBER_COOKIE_DURATION = timedelta(days=self.REMEMBER_DAYS)
        # Audit checkpoints: the Ed25519 signing key (PEM or base64; generated into instance/ when
        # unset, except in production), where they go, how long S3 Object Lock keeps them, how often.
        self.AUDIT_SIGNING_KEY = _env("AUDIT_SIGNING_KEY")
        self.AUDIT_PUBLIC_KEY_FINGERPRINT = _env("AUDIT_PUBLIC_KEY_FINGERPRINT")
        self.AUDIT_CHECKPOINT_PATH = _env("AUDIT_CHECKPOINT_PATH")  # default instance/audit-checkpoints.jsonl
        self.AUDIT_CHECKPOINT_BUCKET = _env("AUDIT_CHECKPOINT_BUCKET")  # default "<S3_BUCKET>-audit"
        self.AUDIT_RETENTION_YEARS = _env_int("AUDIT_RETENTION_YEARS", 20)
        self.AUDIT_CHECKPOINT_INTERVAL_SECONDS = _env_int("AUDIT_CHECKPOINT_INTERVAL_SECONDS", 600)
        self.AUDIT_VERIFY_INTERVAL_SECONDS = _env_int("AUDIT_VERIFY_INTERVAL_SECONDS", 24 * 3600)
        # Refused actions audited per action and requester; more in that window are not written.
        self.AUDIT_REFUSAL_LIMIT = _env("AUDIT_REFUSAL_LIMIT", "30 per minute")
        # Fraud flags (analytics/fraud.py): what looks fake enough to put in front of a compliance officer.
        # A signup whose attributing click came less than this many seconds before it (a person needs longer).
        self.FRAUD_SHORT_LAG_SECONDS = _env_int("FRAUD_SHORT_LAG_SECONDS", 10)
        # This many clicks or more from one visitor on one link within 10 minutes.
        self.FRAUD_VISITOR_BURST_CLICKS = _env_int("FRAUD_VISITOR_BURST_CLICKS", 20)
        # This many clicks or more from one network (IPv4 /24, IPv6 /48) within 10 minutes, over all links.
        self.FRAUD_NETWORK_BURST_CLICKS = _env_int("FRAUD_NETWORK_BURST_CLICKS", 100)
        # This many signups or more within 5 minutes whose clicks came from one device class and one network.
        self.FRAUD_SIGNUP_BURST_SIGNUPS = _env_int("FRAUD_SIGNUP_BURST_SIGNUPS", 5)
        # The periodic detection (celery beat) runs this often over the last LOOKBACK minutes.
        self.FRAUD_DETECT_INTERVAL_SECONDS = _env_int("FRAUD_DETECT_INTERVAL_SECONDS", 300)
        self.FRAUD_DETECT_LOOKBACK_MINUTES = _env_int("FRAUD_DETECT_LOOKBACK_MINUTES", 120)
        # --- operations (advisor_studio/observability) ---
        # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are believed (ProxyFix).
        # 0: none, so a client cannot choose the address its rate limits and logs are keyed on.
        self.TRUSTED_PROXY_COUNT = _env_int("TRUSTED_PROXY_COUNT", 0)
        if not 0 <= self.TRUSTED_PROXY_COUNT <= 5:
            raise RuntimeError("TRUSTED_PROXY_COUNT must be between 0 and 5")
        self.LOG_FORMAT = (_env("LOG_FORMAT", "json") or "json").lower()  # json (one object a line) or text
        if self.LOG_FORMAT not in ("json", "text"):
            raise RuntimeError(f"LOG_FORMAT must be json or text, got {self.LOG_FORMAT!r}")
        self.LOG_LEVEL = (_env("LOG_LEVEL", "INFO") or "INFO").upper()
        # /metrics: a bearer token and/or an allow-list of client networks (comma-separated CIDRs);
        # with neither the endpoint answers 404, so metrics are never public by default.
        self.METRICS_TOKEN = _env("METRICS_TOKEN")
        if self.METRICS_TOKEN is not None and len(self.METRICS_TOKEN) < 24:
            raise RuntimeError("METRICS_TOKEN must be at least 24 characters")
        self.METRICS_ALLOW_NETS = tuple(n.strip() for n in (_env("METRICS_ALLOW_NETS", "") or "").split(",")
                                        if n.strip())
        self.SENTRY_DSN = _env("SENTRY_DSN")  # optional error reporting, scrubbed like the logs
        self.SENTRY_ENVIRONMENT = _env("SENTRY_ENVIRONMENT", self.ENV_NAME)
        # On a cold shutdown (SIGQUIT, or SIGTERM with REMAP_SIGTERM=SIGQUIT as the render unit sets) a worker
        # lets running tasks finish this long, then cancels them back onto the queue (0: Celery's default).
        self.WORKER_SOFT_SHUTDOWN_SECONDS = float(_env("WORKER_SOFT_SHUTDOWN_SECONDS", "0") or 0)
        # Records older than this are listed by `flask retention report` for a person to decide; never purged.
        self.RETENTION_YEARS = _env_int("RETENTION_YEARS", 20)
        if self.RETENTION_YEARS < 1:
            raise RuntimeError(f"RETENTION_YEARS must be at least 1, got {self.RETENTION_YEARS}")


class ProductionConfig(Config):
    """Production: secrets must come from the environment, cookies are Secure."""

    ENV_NAME = "production"
    DEFAULT_REQUIRE_2FA = "1"
    DEFAULT_WEBHOOK_ALLOW_PRIVATE = "0"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True

    def __init__(self) -> None:
        super().__init__()
        missing = [
            env
            for env, attr in (
                ("SECRET_KEY", "SECRET_KEY"),
                ("DATABASE_URL", "SQLALCHEMY_DATABASE_URI"),
                ("CONVERSION_WEBHOOK_SECRET", "CONVERSION_WEBHOOK_SECRET"),
                # A key in the instance folder could sit next to the database it vouches for.
                ("AUDIT_SIGNING_KEY", "AUDIT_SIGNING_KEY"),
            )
            if not getattr(self, attr)
        ]
        if missing:
            raise RuntimeError(f"production config is missing: {', '.join(missing)}")


class TestConfig(Config):
    """Tests: the embedded defaults, with a fixed key and a tight login limit."""

    ENV_NAME = "test"
    TESTING = True
    SECRET_KEY = "test-secret-key-not-for-production"  # noqa: S105 - tests only
    DEFAULT_LOGIN_RATE_LIMIT = "5 per minute"
    # Cheaper argon2id for speed; production uses the library's recommended parameters.
    PASSWORD_HASH_PARAMS = {"time_cost": 1, "memory_cost": 8192, "parallelism": 1}


CONFIGS = {"default": Config, "production": ProductionConfig, "test": TestConfig}


def config_from_env() -> Config:
    """Instantiate the config class named by APP_CONFIG (default, production or test)."""
    name = _env("APP_CONFIG", "default")
    if name not in CONFIGS:
        raise RuntimeError(f"APP_CONFIG must be one of {sorted(CONFIGS)}, got {name!r}")
    return CONFIGS[name]()
