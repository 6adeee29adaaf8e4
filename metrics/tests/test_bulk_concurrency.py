"""Two bulk ingests of overlapping sync ids at once, in opposite orders, on PostgreSQL."""

import threading

import pytest
from django.db import connection
from django.utils import timezone

from healthtrack.tests.live import needs_postgresql
from metrics.models import HealthMetric
from metrics.services import metric_bulk_ingest
from users.tests.factories import UserFactory

pytestmark = [needs_postgresql, pytest.mark.django_db(transaction=True)]


def _samples(ids):
    now = timezone.now().isoformat()
    return [
        {
            "metric_type": "steps",
            "value": 100,
            "recorded_at": now,
            "source": "apple_health",
            "external_id": f"s-{i}",
        }
        for i in ids
    ]


def test_opposite_orders_neither_deadlock_nor_duplicate():
    user = UserFactory()
    ids = list(range(1000))
    for round_number in range(10):
        HealthMetric.objects.filter(user=user).delete()
        barrier = threading.Barrier(2)
        outcomes: list[object] = []

        def ingest(order, barrier=barrier, outcomes=outcomes):
            try:
                barrier.wait()
                outcomes.append(metric_bulk_ingest(user_id=user.pk, samples=_samples(order)))
            except Exception as error:  # the failure under test: a deadlock
                outcomes.append(error)
            finally:
                connection.close()

        threads = [
            threading.Thread(target=ingest, args=(ids,)),
            threading.Thread(target=ingest, args=(list(reversed(ids)),)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        errors = [o for o in outcomes if isinstance(o, Exception)]
        assert not errors, f"round {round_number}: {errors}"
        assert sum(len(o.created_ids) for o in outcomes) == len(ids)
        assert HealthMetric.objects.filter(user=user).count() == len(ids)
