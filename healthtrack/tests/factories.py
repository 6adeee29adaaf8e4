from __future__ import annotations

import factory

from healthtrack.models import AuditEvent


class AuditEventFactory(factory.django.DjangoModelFactory):
    """An audit row as the middleware writes it (a metric read by default); set actor and subject."""

    class Meta:
        model = AuditEvent

    action = "read"
    resource_type = "metric"
    method = "GET"
    path = "/api/v1/health-metrics/user/1"
    status = 200
    ip = "203.0.113.7"
    user_agent = "Tests/1.0"
    request_id = factory.Sequence(lambda n: f"req-{n}")
