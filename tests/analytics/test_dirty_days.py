from datetime import date

from advisor_studio.analytics.services import dirty_days, mark_days_dirty
from advisor_studio.extensions import db


def test_marking_days_is_idempotent_and_ordered(app):
    with app.app_context():
        mark_days_dirty([date(2026, 11, 3), date(2026, 11, 1)])
        mark_days_dirty([date(2026, 11, 1), date(2026, 11, 1)])
        mark_days_dirty([])
        db.session.commit()
        assert dirty_days() == [date(2026, 11, 1), date(2026, 11, 3)]
