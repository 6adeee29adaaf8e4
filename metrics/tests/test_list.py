import datetime

import pytest
from django.db import connection
from django.utils import timezone

from healthtrack.models import AuditEvent
from metrics.models import HealthMetric
from metrics.serializers import HealthMetricSerializer
from metrics.tests.factories import BloodPressureFactory, HealthMetricFactory
from metrics.tests.helpers import list_url
from users.tests.factories import ClinicianFactory, UserFactory

pytestmark = pytest.mark.django_db

BASE = datetime.datetime(2026, 3, 10, 12, 0, tzinfo=datetime.UTC)


def at(hours: float) -> datetime.datetime:
    return BASE + datetime.timedelta(hours=hours)


@pytest.fixture
def samples(user, other_user):
    HealthMetricFactory(user=other_user, recorded_at=at(0))  # never listed for user
    return [
        HealthMetricFactory(user=user, metric_type="steps", value=100, recorded_at=at(-48)),
        HealthMetricFactory(user=user, metric_type="heart_rate", value=70, recorded_at=at(-24)),
        HealthMetricFactory(user=user, metric_type="steps", value=300, recorded_at=at(0)),
        BloodPressureFactory(user=user, value=125, recorded_at=at(1), source="withings", external_id="w-1"),
    ]


def ids(response):
    return [row["id"] for row in response.json()["results"]]


def test_lists_own_samples_newest_first(auth_client, user, samples):
    response = auth_client.get(list_url(user.pk))
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert ids(response) == [m.pk for m in reversed(samples)]
    event = AuditEvent.objects.get()
    assert (event.action, event.subject_id) == ("read", user.pk)
    assert event.object_ids == [str(m.pk) for m in reversed(samples)]


def test_rows_match_documented_serializer_exactly(auth_client, user, samples):
    rows = auth_client.get(list_url(user.pk)).json()["results"]
    expected = [
        HealthMetricSerializer(m).data
        for m in HealthMetric.objects.filter(user=user).order_by("-recorded_at")
    ]
    assert rows == expected
    assert rows[0]["secondary_value"] == 80.0 and rows[0]["external_id"] == "w-1"


def test_filter_by_metric_type(auth_client, user, samples):
    response = auth_client.get(list_url(user.pk), {"metric_type": "steps"})
    assert ids(response) == [samples[2].pk, samples[0].pk]


def test_since_and_until_are_inclusive(auth_client, user, samples):
    response = auth_client.get(list_url(user.pk), {"since": at(-24).isoformat(), "until": at(0).isoformat()})
    assert ids(response) == [samples[2].pk, samples[1].pk]


def test_since_with_offset_and_unencoded_plus(auth_client, user, samples):
    # 13:00+01:00 is 12:00Z; a raw '+' in a query string arrives as a space.
    response = auth_client.get(f"{list_url(user.pk)}?since=2026-03-10T13:00:00+01:00")
    assert response.status_code == 200
    assert ids(response) == [samples[3].pk, samples[2].pk]


def test_plain_date_is_taken_as_utc(auth_client, user, samples):
    response = auth_client.get(list_url(user.pk), {"since": "2026-03-09", "until": "2026-03-10"})
    assert ids(response) == [samples[1].pk]


@pytest.mark.parametrize(
    ("query", "field", "fragment"),
    [
        ({"metric_type": "mood"}, "metric_type", "choose one of: heart_rate"),
        ({"metric_type": ""}, "metric_type", "'' is not a metric type"),
        ({"until": ""}, "until", "not an ISO 8601"),
        ({"until": "9999-12-31T23:59:59-01:00"}, "until", "Out of the supported range"),
        ({"since": "last week"}, "since", "not an ISO 8601"),
        ({"until": "2026-13-01"}, "until", "not an ISO 8601"),
        (
            {"since": "2026-03-10T00:00:00Z", "until": "2026-03-09T00:00:00Z"},
            "since",
            "Must not be after until.",
        ),
        ({"limit": "0"}, "limit", "between 1 and 500"),
        ({"skip": "-1"}, "skip", "between 0 and"),
        ({"skip": str(2**64)}, "skip", "between 0 and 1000000000"),
    ],
)
def test_bad_filters_are_400_naming_the_parameter(auth_client, user, query, field, fragment):
    response = auth_client.get(list_url(user.pk), query)
    assert response.status_code == 400
    assert fragment in response.json()["errors"][field][0]


def test_pagination_with_limit_and_skip(auth_client, user, samples):
    first = auth_client.get(list_url(user.pk), {"limit": 2}).json()
    second = auth_client.get(list_url(user.pk), {"limit": 2, "skip": 2}).json()
    assert first["count"] == second["count"] == 4
    assert [r["id"] for r in first["results"] + second["results"]] == [m.pk for m in reversed(samples)]
    assert first["next"] and first["previous"] is None


# The count and the page (one statement on PostgreSQL, two elsewhere), then the audit row.
LIST_QUERIES = 2 if connection.vendor == "postgresql" else 3


def test_query_count_is_fixed_whatever_the_page_size(auth_client, user, django_assert_num_queries):
    HealthMetricFactory.create_batch(60, user=user)
    auth_client.get("/api/v1/users/me")  # warm the authentication snapshot
    for limit in (1, 50, 500):
        with django_assert_num_queries(LIST_QUERIES):
            response = auth_client.get(list_url(user.pk), {"limit": limit})
        assert len(response.json()["results"]) == min(limit, 60)


def test_filtered_query_count(auth_client, user, samples, django_assert_num_queries):
    auth_client.get("/api/v1/users/me")
    with django_assert_num_queries(LIST_QUERIES):
        auth_client.get(
            list_url(user.pk), {"metric_type": "steps", "since": "2026-01-01", "until": "2026-12-31"}
        )


def test_another_users_list_is_404(auth_client, user, other_user, samples):
    response = auth_client.get(list_url(other_user.pk))
    assert response.status_code == 404
    event = AuditEvent.objects.get()
    assert (event.action, event.actor_id, event.subject_id) == ("denied", user.pk, other_user.pk)


@pytest.mark.parametrize("user_id", ["0", str(2**70), "999999"])
def test_bad_or_unknown_user_id_is_404(auth_client, user_id):
    assert auth_client.get(list_url(user_id)).status_code == 404


def test_care_team_clinician_lists_patient(clinician_client, user, samples, django_assert_num_queries):
    clinician_client.get("/api/v1/users/me")
    # care-team check, then the list's own
    with django_assert_num_queries(1 + LIST_QUERIES):
        response = clinician_client.get(list_url(user.pk))
    assert response.status_code == 200
    assert response.json()["count"] == 4


def test_clinician_without_care_team_gets_404(make_client, user, samples):
    assert make_client(ClinicianFactory()).get(list_url(user.pk)).status_code == 404


def test_superuser_lists_anyone_but_404_for_no_one(admin_client, user, samples):
    assert admin_client.get(list_url(user.pk)).json()["count"] == 4
    assert admin_client.get(list_url(999999)).status_code == 404


def test_empty_list(make_client):
    person = UserFactory()
    body = make_client(person).get(list_url(person.pk)).json()
    assert body["count"] == 0 and body["results"] == []


def test_recent_sample_round_trips_microseconds(auth_client, user):
    moment = timezone.now().replace(microsecond=123456)
    HealthMetricFactory(user=user, recorded_at=moment)
    row = auth_client.get(list_url(user.pk)).json()["results"][0]
    assert row["recorded_at"] == moment.isoformat().replace("+00:00", "Z")


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="query plans are PostgreSQL's (CI runs PostgreSQL)"
)
def test_a_page_is_read_off_the_index_not_sorted(auth_client, user):
    """With many samples, the newest page must come from the (user, -recorded_at, -id)
    index: sorting all of a heavy Apple Health importer's rows took milliseconds."""
    from metrics.selectors import _metric_rows_sql, metric_list

    start = timezone.now() - datetime.timedelta(days=400)
    HealthMetric.objects.bulk_create(
        HealthMetric(
            user=user,
            metric_type="steps",
            value=i,
            unit="count",
            recorded_at=start + datetime.timedelta(hours=i),
        )
        for i in range(5000)
    )
    orm_sql, orm_params = metric_list(user_id=user.pk)[:50].query.sql_with_params()
    route_sql = _metric_rows_sql(connection, (False, False, False), count=False)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE metrics_healthmetric")
        for sql, params in ((orm_sql, orm_params), (route_sql, [user.pk, 50, 0])):
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Index" in plan and "Sort" not in plan, plan
    assert "Sort" not in plan, plan
    # The count-and-page statement: the page reads the index; the one sort is of the page
    # (how to count is the planner's choice: here every row is this user's).
    combined_sql = _metric_rows_sql(connection, (False, False, False), count=None)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {combined_sql}", [user.pk, user.pk, 50, 0])
        lines = [row[0] for row in cursor.fetchall()]
    plan = "\n".join(lines)
    assert "Index Scan using metric_user_time" in plan, plan
    assert [line for line in lines if "Sort  (" in line] == [lines[0]], plan
    assert "rows=50 " in lines[0], plan


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"metric_type": "steps"},
        {"since": BASE - datetime.timedelta(hours=30)},
        {"until": BASE},
        {"metric_type": "steps", "since": BASE - datetime.timedelta(days=3), "until": BASE},
    ],
)
def test_page_rows_are_what_the_orm_and_the_serializer_give(user, other_user, filters):
    """The list route's precompiled statements (PostgreSQL) against the ORM query and
    ``metric_row_as_dict``: same rows, same order, same text for every timestamp."""
    from metrics.selectors import MetricRows, metric_list
    from metrics.serializers import metric_row_as_dict

    moments = [
        BASE,  # no fraction: no ".000000"
        BASE + datetime.timedelta(microseconds=120_000),
        BASE - datetime.timedelta(hours=5, microseconds=5),
        BASE - datetime.timedelta(days=2, microseconds=999_999),
        datetime.datetime(2001, 1, 1, tzinfo=datetime.UTC),
    ]
    for index, moment in enumerate(moments):
        HealthMetricFactory(user=user, metric_type="steps", value=1000 + index, recorded_at=moment)
        HealthMetricFactory(user=user, metric_type="heart_rate", value=60 + index, recorded_at=moment)
    BloodPressureFactory(user=user, value=120, recorded_at=BASE, notes="après le café ☕")
    HealthMetricFactory(user=other_user, recorded_at=BASE)
    rows = MetricRows(user_id=user.pk, **filters)
    expected = [metric_row_as_dict(row) for row in metric_list(user_id=user.pk, **filters)]
    assert rows.count() == len(expected) > 0
    assert rows[0:50] == expected
    assert rows[2:5] == expected[2:5]
    assert rows[len(expected) : len(expected) + 10] == []
    for offset, limit in ((0, 50), (0, 1), (2, 3), (len(expected) - 1, 5), (len(expected), 10), (10**9, 50)):
        assert rows.count_and_page(offset=offset, limit=limit) == (
            len(expected),
            expected[offset : offset + limit],
        )
