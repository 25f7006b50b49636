"""WSGI entry point (gunicorn wsgi:app) and Celery app (celery -A wsgi:celery_app worker)."""

from advisor_studio import create_app

app = create_app()
celery_app = app.extensions["celery"]
