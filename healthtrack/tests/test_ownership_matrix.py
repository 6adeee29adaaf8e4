"""The ownership matrix: every route that names a person or an object, every method, every role.

The tables below are checked against the URL resolver and the OpenAPI schema, so a route
added later that takes an id (in its path, as ``?user_id=`` or as ``user_id`` in its
body), or a new list route, fails ``test_the_matrix_covers_every_route`` until it has a
row here, and with it the checks:

* another person (A) using B's ids gets a JSON 404 (never a 403 that would confirm the
  object exists), a ``denied`` row on the audit trail, and B's rows are exactly as they
  were (a snapshot of everything stored about B, before and after);
* the very same request made by B succeeds, so A's 404 is the ownership check and not a
  bad request;
* each role (B's care-team clinician, a clinician not on it, support staff, a superuser)
  gets what DESIGN.md says: clinicians read and never write (except insights, which
  they may add), support staff see no health data, a superuser sees and changes all;
* every list, summary and export A reads for themselves holds none of B's rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone

from goals.models import HealthGoal
from goals.tests.factories import HealthGoalFactory
from healthtrack.models import AuditEvent
from insights.models import HealthInsight
from metrics.models import HealthMetric
from metrics.tests.factories import HealthMetricFactory
from nutrition.models import NutritionLog
from nutrition.tests.factories import NutritionLogFactory
from users.models import CareTeamMembership, Profile, RevokedSession, User
from users.tests.factories import (
    AdminFactory,
    CareTeamMembershipFactory,
    ClinicianFactory,
    SupportFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")
ROLES = ("owner", "other", "clinician", "stranger_clinician", "support", "superuser")


# --- The world: B (the owner of everything) and the people around them ---------------------


@dataclass
class World:
    owner: User
    other: User
    clinician: User  # on the owner's care team
    stranger_clinician: User  # a clinician, not on it
    support: User
    superuser: User
    ids: dict[str, int] = field(default_factory=dict)  # the owner's objects
    other_ids: dict[str, list[int]] = field(default_factory=dict)  # A's own objects

    def actor(self, role: str) -> User:
        return getattr(self, role)


def _insight(user: User, **fields) -> HealthInsight:
    values = {
        "code": "low_steps",
        "title": "Walk more",
        "severity": "medium",
        "rank": 1,
        "insight_date": timezone.localdate(),
        **fields,
    }
    return HealthInsight.objects.create(user=user, **values)


OWNER_WEIGHT = 123.4  # kg: a value nobody else has, to look for in what A reads


def _data_for(user: User, *, metric_type: str) -> dict[str, int]:
    metric = HealthMetricFactory(
        user=user, metric_type=metric_type, value=OWNER_WEIGHT if metric_type == "weight" else 4200
    )
    return {
        "metric": metric.pk,
        "nutrition_log": NutritionLogFactory(user=user).pk,
        "goal": HealthGoalFactory(user=user).pk,
        "insight": _insight(user).pk,
    }


@pytest.fixture
def world() -> World:
    owner = UserFactory(username="owner-b")
    other = UserFactory(username="other-a")
    clinician = ClinicianFactory(username="clinician-c")
    membership = CareTeamMembershipFactory(patient=owner, clinician=clinician)
    world = World(
        owner=owner,
        other=other,
        clinician=clinician,
        stranger_clinician=ClinicianFactory(username="stranger-c"),
        support=SupportFactory(username="support-s"),
        superuser=AdminFactory(username="root-r"),
    )
    # The owner weighs themselves; A only walks: a summary of A's that mentions weight
    # would be B's data.
    world.ids = {**_data_for(owner, metric_type="weight"), "membership": membership.pk}
    own = _data_for(other, metric_type="steps")
    other_membership = CareTeamMembershipFactory(patient=other, clinician=world.stranger_clinician)
    world.other_ids = {**{kind: [pk] for kind, pk in own.items()}, "membership": [other_membership.pk]}
    return world


def snapshot(user_id: int) -> dict[str, list[dict]]:
    """Everything stored about a person, row by row."""

    def rows(queryset):
        return list(queryset.order_by("pk").values())

    return {
        "user": rows(User.objects.filter(pk=user_id)),
        "profile": rows(Profile.objects.filter(user_id=user_id)),
        "metrics": rows(HealthMetric.objects.filter(user_id=user_id)),
        "nutrition": rows(NutritionLog.objects.filter(user_id=user_id)),
        "goals": rows(HealthGoal.objects.filter(user_id=user_id)),
        "insights": rows(HealthInsight.objects.filter(user_id=user_id)),
        "care_team": rows(CareTeamMembership.objects.filter(patient_id=user_id)),
        "sessions_ended": rows(RevokedSession.objects.filter(user_id=user_id)),
    }


def table_sizes() -> dict[str, int]:
    models = (User, HealthMetric, NutritionLog, HealthGoal, HealthInsight, CareTeamMembership)
    return {model.__name__: model.objects.count() for model in models}


# --- The matrix ---------------------------------------------------------------------------

# What a route is about, which decides what each role gets:
#   health   a person's health data: owner and superuser all; care-team clinician reads
#   account  a person's profile: as health, and support staff read it (without PHI) and
#            deactivate it
#   own      the caller's own things (their care team): the owner only
#   annotate writing an insight: clinicians on the care team and superusers
HEALTH, ACCOUNT, OWN, ANNOTATE = "health", "account", "own", "annotate"


@dataclass(frozen=True)
class Case:
    """One request that names the owner B, by the ids of B's rows or B's user id."""

    name: str  # URL name
    method: str
    kind: str
    kwargs: Callable[[World], dict] = lambda w: {}
    query: Callable[[World], dict] = lambda w: {}
    body: Callable[[World], dict] | None = None
    # A refusal that cannot disclose anything (403 "only clinicians may"), per role.
    refusals: dict[str, int] = field(default_factory=dict)
    multipart: bool = False  # the body is a file upload

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.name}"


def _user(w: World) -> dict:
    return {"user_id": w.owner.pk}


def _obj(kind: str, kwarg: str) -> Callable[[World], dict]:
    return lambda w: {kwarg: w.ids[kind]}


_METRIC, _LOG, _GOAL, _INSIGHT = (
    _obj("metric", "metric_id"),
    _obj("nutrition_log", "log_id"),
    _obj("goal", "goal_id"),
    _obj("insight", "insight_id"),
)

# Routes with an id in the path: every method each supports.
PATH_CASES = [
    Case("user-detail", "get", ACCOUNT, _user),
    Case(
        "user-detail",
        "put",
        ACCOUNT,
        _user,
        body=lambda w: {"email": "mallory@example.com", "first_name": "M"},
    ),
    Case("user-detail", "patch", ACCOUNT, _user, body=lambda w: {"medical_history": "Overwritten."}),
    Case("user-detail", "delete", ACCOUNT, _user),
    Case("user-by-username", "get", ACCOUNT, lambda w: {"username": w.owner.username}),
    Case("user-export-fhir", "get", HEALTH, _user),
    Case("care-team-member", "delete", OWN, lambda w: {"membership_id": w.ids["membership"]}),
    Case("metric-user-list", "get", HEALTH, _user),
    Case("metric-detail", "get", HEALTH, _METRIC),
    Case("metric-detail", "put", HEALTH, _METRIC, body=lambda w: {"metric_type": "weight", "value": 99.0}),
    Case("metric-detail", "patch", HEALTH, _METRIC, body=lambda w: {"value": 98.0}),
    Case("metric-detail", "delete", HEALTH, _METRIC),
    Case("nutrition-log-user-list", "get", HEALTH, _user),
    Case("nutrition-log-detail", "get", HEALTH, _LOG),
    Case("nutrition-log-detail", "put", HEALTH, _LOG, body=lambda w: {"meal_type": "snack", "calories": 90}),
    Case("nutrition-log-detail", "patch", HEALTH, _LOG, body=lambda w: {"calories": 10}),
    Case("nutrition-log-detail", "delete", HEALTH, _LOG),
    Case("health-goal-user-list", "get", HEALTH, _user),
    Case("health-goal-detail", "get", HEALTH, _GOAL),
    Case("health-goal-detail", "put", HEALTH, _GOAL, body=lambda w: {"title": "Mine now", "target_value": 3}),
    Case("health-goal-detail", "patch", HEALTH, _GOAL, body=lambda w: {"status": "abandoned"}),
    Case("health-goal-detail", "delete", HEALTH, _GOAL),
    Case("recommendations", "get", HEALTH, _user, query=lambda w: {"use_cache": "false"}),
    Case("insight-user-list", "get", HEALTH, _user),
    Case("insight-detail", "get", HEALTH, _INSIGHT),
    # Marking read is the person's own act (insights/views.py): whoever may read the
    # insight but is not that person (their clinician, a superuser) is told no (403).
    Case(
        "insight-detail",
        "patch",
        HEALTH,
        _INSIGHT,
        body=lambda w: {"is_read": True},
        refusals={"clinician": 403, "superuser": 403},
    ),
]

_FHIR_BUNDLE = {
    "resourceType": "Bundle",
    "type": "collection",
    "entry": [
        {
            "resource": {
                "resourceType": "Observation",
                "identifier": [{"system": "urn:matrix", "value": "w-1"}],
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                "effectiveDateTime": "2026-01-05T08:00:00+00:00",
                "valueQuantity": {
                    "value": 70,
                    "unit": "kg",
                    "system": "http://unitsofmeasure.org",
                    "code": "kg",
                },
            }
        }
    ],
}
_APPLE_EXPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<HealthData locale="en_US">
 <ExportDate value="2026-01-06 10:00:00 +0000"/>
 <Record type="HKQuantityTypeIdentifierBodyMass" sourceName="Scale" unit="kg"
  creationDate="2026-01-05 08:00:00 +0000" startDate="2026-01-05 08:00:00 +0000"
  endDate="2026-01-05 08:00:00 +0000" value="70"/>
</HealthData>
"""

# Routes that take the person as ``?user_id=`` (default: the caller).
QUERY_CASES = [
    Case("metric-create", "post", HEALTH, query=_user, body=lambda w: {"metric_type": "weight", "value": 70}),
    Case(
        "metric-bulk",
        "post",
        HEALTH,
        query=_user,
        body=lambda w: {"samples": [{"metric_type": "weight", "value": 70}]},
    ),
    Case("metric-summary", "get", HEALTH, query=_user),
    Case("metric-import-fhir", "post", HEALTH, query=_user, body=lambda w: _FHIR_BUNDLE),
    Case(
        "metric-import-apple-health",
        "post",
        HEALTH,
        query=_user,
        body=lambda w: {"file": SimpleUploadedFile("export.xml", _APPLE_EXPORT, "application/xml")},
        multipart=True,
    ),
    Case(
        "nutrition-log-create",
        "post",
        HEALTH,
        query=_user,
        body=lambda w: {"meal_type": "snack", "calories": 1},
    ),
    Case("nutrition-summary", "get", HEALTH, query=_user),
    Case(
        "health-goal-create",
        "post",
        HEALTH,
        query=_user,
        body=lambda w: {"goal_type": "custom", "title": "Planted", "target_value": 5, "unit": "x"},
    ),
]

# Routes that take the person in the body. Only clinicians may write insights, so any
# other caller is told so (403) whoever the insight would be about.
BODY_CASES = [
    Case("insight-create", "post", ANNOTATE, body=lambda w: {"user_id": w.owner.pk, "title": "Planted"},
         refusals={"other": 403, "support": 403}),
]  # fmt: skip

MATRIX = PATH_CASES + QUERY_CASES + BODY_CASES


def _path_of(case: Case, world: World) -> str:
    return reverse(case.name, kwargs=case.kwargs(world))


def send(make_client, world: World, role: str, case: Case):
    client = make_client(world.actor(role))
    path = _path_of(case, world)
    query = case.query(world)
    if query:
        path += "?" + "&".join(f"{name}={value}" for name, value in query.items())
    if case.body is None:
        return getattr(client, case.method)(path)
    return getattr(client, case.method)(
        path, case.body(world), format="multipart" if case.multipart else "json"
    )


def expected(case: Case, role: str) -> int | str:
    """ "ok" (2xx) or the status each role gets."""
    if role in case.refusals:
        return case.refusals[role]
    if role == "owner":
        return 403 if case.kind == ANNOTATE else "ok"  # nobody annotates themselves
    if role == "superuser":
        return 404 if case.kind == OWN else "ok"  # "me" routes are the caller's own
    if role == "clinician":  # on the owner's care team
        if case.kind == ANNOTATE or (case.kind in (HEALTH, ACCOUNT) and case.method == "get"):
            return "ok"
        return 404
    if role == "support" and case.kind == ACCOUNT and case.method in ("get", "delete"):
        return "ok"  # accounts, never health data (the PHI fields are hidden: test_roles)
    return 404


def _assert_status(response, want: int | str, label: str) -> None:
    if want == "ok":
        assert 200 <= response.status_code < 300, (label, response.status_code, response.content[:300])
    else:
        assert response.status_code == want, (label, response.status_code, response.content[:300])
        assert response["Content-Type"].startswith("application/json"), label
        assert response.json()["code"] == ("not_found" if want == 404 else "permission_denied"), label


# --- The matrix covers every route -------------------------------------------------------


def _api_patterns(patterns=None, prefix=""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from _api_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield prefix + str(pattern.pattern), pattern


def _methods_of(pattern: URLPattern) -> set[str]:
    view = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
    return {method for method in METHODS if hasattr(view, method)}


@pytest.fixture(scope="module")
def openapi(django_db_blocker) -> dict:
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def _schema_operations(openapi):
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                concrete = re.sub(r"\{[^}]+\}", "1", path)
                yield resolve(concrete).url_name, method, operation


def _body_properties(openapi, operation) -> set[str]:
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return set(schema.get("properties", {}))


def test_the_matrix_covers_every_route(openapi):
    """Add a row above for any route that fails this: an id in a path, ``?user_id=`` or a
    ``user_id`` body field each name a person whose data must stay theirs."""
    covered = {(case.name, case.method) for case in MATRIX}
    needed = set()
    for route, pattern in _api_patterns():
        if route.startswith("api/") and pattern.pattern.converters:
            needed |= {(pattern.name, method) for method in _methods_of(pattern)}
    for name, method, operation in _schema_operations(openapi):
        parameters = {(p["in"], p["name"]) for p in operation.get("parameters", [])}
        if any(location == "path" for location, _ in parameters) or ("query", "user_id") in parameters:
            needed.add((name, method))
        if "user_id" in _body_properties(openapi, operation):
            needed.add((name, method))
    assert needed - covered == set(), "routes taking an id without an ownership row"
    assert covered - needed == set(), "rows for routes that no longer take an id"
    assert len(covered) == len(MATRIX), "a route is in the matrix twice"


# --- A with B's ids ------------------------------------------------------------------------


@pytest.mark.parametrize("case", MATRIX, ids=lambda case: case.label)
def test_another_person_with_the_owners_ids_gets_404_and_changes_nothing(make_client, world, case):
    owner_before, sizes_before = snapshot(world.owner.pk), table_sizes()
    response = send(make_client, world, "other", case)
    _assert_status(response, expected(case, "other"), case.label)
    assert snapshot(world.owner.pk) == owner_before, f"{case.label} changed the owner's rows"
    assert table_sizes() == sizes_before, f"{case.label} created or deleted rows"
    if response.status_code == 404:
        denial = AuditEvent.objects.filter(action="denied", actor=world.other).order_by("-pk").first()
        assert denial is not None, f"{case.label}: the refusal is not on the audit trail"
        assert denial.subject_id in (world.owner.pk, None), case.label
    # The same request is fine for the owner: A was refused for whose data it is.
    _assert_status(send(make_client, world, "owner", case), expected(case, "owner"), case.label)


@pytest.mark.parametrize("role", [role for role in ROLES if role not in ("owner", "other")])
@pytest.mark.parametrize("case", MATRIX, ids=lambda case: case.label)
def test_each_role_gets_what_the_design_says(make_client, world, case, role):
    owner_before = snapshot(world.owner.pk)
    response = send(make_client, world, role, case)
    want = expected(case, role)
    _assert_status(response, want, f"{case.label} as {role}")
    if want != "ok" or case.method == "get":
        assert snapshot(world.owner.pk) == owner_before, f"{case.label} as {role} changed the owner's rows"
    if (
        want == "ok"
        and case.method == "get"
        and case.kind == HEALTH
        and response["Content-Type"] == "application/json"
    ):
        assert str(world.owner.pk) in response.content.decode() or response.json().get("count") == 0


def test_support_staff_read_accounts_without_phi(make_client, world):
    body = make_client(world.support).get(reverse("user-detail", kwargs={"user_id": world.owner.pk})).json()
    assert body["id"] == world.owner.pk
    assert body["medical_history"] is None and body["date_of_birth"] is None


# --- Lists, summaries and exports: A's own hold none of B's rows -----------------------------

# Every paginated list in the schema, as A asks for it: (URL name, path kwargs, the kind of
# object it lists, or "user" for people).
LIST_CASES = {
    "user-list": ({}, "user"),
    "care-team": ({}, "membership"),
    "patients": ({}, "patient"),
    "metric-user-list": ({"user_id": "A"}, "metric"),
    "nutrition-log-user-list": ({"user_id": "A"}, "nutrition_log"),
    "health-goal-user-list": ({"user_id": "A"}, "goal"),
    "insight-user-list": ({"user_id": "A"}, "insight"),
}


def test_every_list_route_is_in_the_list_table(openapi):
    lists = set()
    for name, method, operation in _schema_operations(openapi):
        ok = operation["responses"].get("200", {}).get("content", {}).get("application/json", {})
        ref = ok.get("schema", {}).get("$ref", "")
        if method == "get" and ref.rsplit("/", 1)[-1].startswith("Paginated"):
            lists.add(name)
    assert lists == set(LIST_CASES)


@pytest.mark.parametrize("name", sorted(LIST_CASES))
def test_a_list_holds_none_of_another_persons_rows(make_client, world, name):
    kwargs, kind = LIST_CASES[name]
    # The patients list is a clinician's: A's own clinician must not see B.
    reader = world.stranger_clinician if name == "patients" else world.other
    kwargs = {key: reader.pk for key in kwargs}
    response = make_client(reader).get(reverse(name, kwargs=kwargs), {"limit": 500})
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert results, f"{name}: the reader's own rows are missing, so the check proves nothing"
    if kind == "user":
        assert [row["id"] for row in results] == [reader.pk]
    elif kind == "patient":
        assert {row["patient"]["id"] for row in results} == {world.other.pk}
    else:
        ids = {row["id"] for row in results}
        assert ids == set(world.other_ids[kind]), name
        assert all(row.get("user_id", reader.pk) == reader.pk for row in results), name


def test_summaries_and_exports_hold_none_of_another_persons_data(make_client, world):
    client = make_client(world.other)
    metrics = client.get(reverse("metric-summary")).json()
    assert metrics["user_id"] == world.other.pk and set(metrics["metrics"]) == {"steps"}
    nutrition = client.get(reverse("nutrition-summary")).json()
    assert nutrition["user_id"] == world.other.pk
    recommendations = client.get(reverse("recommendations", kwargs={"user_id": world.other.pk})).json()
    assert recommendations["user_id"] == world.other.pk
    assert str(OWNER_WEIGHT) not in str(recommendations)

    owner_ids = {str(pk) for pk in world.ids.values()}
    export = b"".join(client.get(reverse("user-me-export")).streaming_content).decode()
    fhir = client.get(reverse("user-export-fhir", kwargs={"user_id": world.other.pk}))
    fhir_body = b"".join(fhir.streaming_content).decode()
    assert world.owner.username not in export and world.owner.email not in export
    assert f'"{world.owner.pk}"' not in fhir_body
    assert f'"value":"{world.ids["metric"]}"' not in fhir_body.replace(" ", "")
    assert str(world.other_ids["metric"][0]) in fhir_body
    assert owner_ids  # B's rows exist, so their absence above means something
