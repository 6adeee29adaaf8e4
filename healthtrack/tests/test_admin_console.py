"""The admin for clinicians, support and superusers: scope, audit, overview, actions."""

import io
import json
import zipfile

import pytest

from goals.tests.factories import HealthGoalFactory
from healthtrack.models import AuditEvent
from healthtrack.tests.conftest import BP_DAYS, SLEEP_DAYS, STEP_DAYS, WEIGHT_DAYS
from insights.models import HealthInsight
from insights.tests.factories import HealthInsightFactory
from metrics.tests.factories import HealthMetricFactory
from nutrition.tests.factories import NutritionLogFactory
from users.tests.factories import AdminFactory, SupportFactory, UserFactory

pytestmark = pytest.mark.django_db

HEALTH_CHANGELISTS = {
    "metrics": "/admin/metrics/healthmetric/",
    "nutrition": "/admin/nutrition/nutritionlog/",
    "goals": "/admin/goals/healthgoal/",
    "insights": "/admin/insights/healthinsight/",
}
FACTORIES = {
    "metrics": HealthMetricFactory,
    "nutrition": NutritionLogFactory,
    "goals": HealthGoalFactory,
    "insights": HealthInsightFactory,
}


@pytest.fixture
def stranger():
    return UserFactory(username="stranger_sam")


def overview_url(user):
    return f"/admin/users/user/{user.pk}/overview/"


@pytest.mark.parametrize("app", list(HEALTH_CHANGELISTS))
def test_clinician_changelists_hold_only_care_team_rows(
    client, care_clinician, patient_with_month, stranger, app
):
    theirs = FACTORIES[app](user=stranger)
    client.force_login(care_clinician)
    page = client.get(HEALTH_CHANGELISTS[app])
    assert page.status_code == 200
    shown = {obj.user_id for obj in page.context["cl"].result_list}
    assert shown == {patient_with_month.pk}
    search = client.get(HEALTH_CHANGELISTS[app] + "?q=stranger_sam")
    assert list(search.context["cl"].result_list) == []
    # Typing the URL of the stranger's row: the admin says it does not exist.
    typed = client.get(f"{HEALTH_CHANGELISTS[app]}{theirs.pk}/change/", follow=True)
    assert b"doesn" in typed.content  # "... with ID ... doesn't exist"
    assert AuditEvent.objects.filter(action="denied", actor=care_clinician, subject=stranger).count() == 1


@pytest.mark.parametrize("app", list(HEALTH_CHANGELISTS))
def test_changelist_opening_is_audited(client, care_clinician, patient_with_month, app):
    client.force_login(care_clinician)
    client.get(HEALTH_CHANGELISTS[app])
    event = AuditEvent.objects.get(actor=care_clinician)
    assert (event.action, event.subject_id, event.status) == ("read", patient_with_month.pk, 200)
    assert event.object_ids


@pytest.mark.parametrize("app", list(HEALTH_CHANGELISTS))
def test_support_sees_no_health_data(client, patient_with_month, app):
    client.force_login(SupportFactory())
    assert client.get(HEALTH_CHANGELISTS[app]).status_code == 403


@pytest.mark.parametrize("app", ["metrics", "nutrition", "goals"])
def test_clinicians_cannot_change_health_records(client, care_clinician, patient_with_month, app):
    obj = FACTORIES[app](user=patient_with_month)
    client.force_login(care_clinician)
    page = client.get(f"{HEALTH_CHANGELISTS[app]}{obj.pk}/change/")
    assert page.status_code == 200
    assert b'type="submit" value="Save"' not in page.content
    assert client.post(f"{HEALTH_CHANGELISTS[app]}{obj.pk}/delete/", {"post": "yes"}).status_code == 403


@pytest.mark.parametrize("app", list(HEALTH_CHANGELISTS))
def test_changelist_of_100_rows_is_a_fixed_number_of_queries(client, django_assert_max_num_queries, app):
    admin = AdminFactory()
    owners = UserFactory.create_batch(5)
    client.force_login(admin)
    client.get(HEALTH_CHANGELISTS[app])  # warm up sessions, content types
    FACTORIES[app].create_batch(3, user=owners[0])
    with django_assert_max_num_queries(12) as few:
        client.get(HEALTH_CHANGELISTS[app])
    for index in range(100):
        FACTORIES[app](user=owners[index % 5])
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(HEALTH_CHANGELISTS[app])
    assert len(page.context["cl"].result_list) == 100


def test_clinician_can_write_an_insight_for_a_patient_only(
    client, care_clinician, patient_with_month, stranger
):
    client.force_login(care_clinician)
    form = {
        "user": patient_with_month.pk,
        "code": "",
        "category": "activity",
        "title": "Try the stairs",
        "description": "",
        "reasoning": "You asked for ideas to move more at work.",
        "action_steps": '["Take the stairs to the 3rd floor"]',
        "severity": "low",
        "related_metric_type": "steps",
    }
    assert client.post("/admin/insights/healthinsight/add/", form).status_code == 302
    note = HealthInsight.objects.get(title="Try the stairs")
    assert (note.user, note.created_by, note.code) == (patient_with_month, care_clinician, "clinician_note")
    refused = client.post("/admin/insights/healthinsight/add/", {**form, "user": stranger.pk, "title": "X"})
    assert refused.status_code == 200
    assert "user" in refused.context["adminform"].form.errors
    assert not HealthInsight.objects.filter(user=stranger).exists()


def test_clinician_marks_an_insight_read_but_changes_nothing_else(client, care_clinician, patient_with_month):
    insight = HealthInsight.objects.get(user=patient_with_month, is_read=False)
    client.force_login(care_clinician)
    response = client.post(
        f"/admin/insights/healthinsight/{insight.pk}/change/", {"is_read": "on", "title": "Rewritten"}
    )
    assert response.status_code == 302
    insight.refresh_from_db()
    assert insight.is_read and insight.read_at is not None
    assert insight.title == "Walk more"


# --- Patient overview -------------------------------------------------------------------


def test_overview_shows_facts_goals_recommendations_insights_and_charts(
    client, care_clinician, patient_with_month
):
    client.force_login(care_clinician)
    page = client.get(overview_url(patient_with_month))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Type 2 diabetes; metformin" in html
    assert "Europe/Paris" in html
    assert "Reach 80 kg" in html and "Meditate 10 sessions" in html
    assert 'role="progressbar"' in html
    assert "Walk more" in html and "Already seen" not in html
    recommendations = page.context["recommendations"]
    assert 1 <= len(recommendations) <= 5
    assert recommendations[0]["reasoning"] in html
    charts = {chart["id"]: chart for chart in page.context["charts"]}
    assert set(charts) == {
        "steps", "sleep", "resting_heart_rate", "weight",
        "blood_pressure", "blood_glucose", "calories", "water",
    }  # fmt: skip
    assert charts["steps"]["days_with_data"] == len(STEP_DAYS)
    assert str(charts["steps"]["svg"]).count('class="ht-point"') == len(STEP_DAYS)
    assert str(charts["sleep"]["svg"]).count('class="ht-point"') == len([d for d in SLEEP_DAYS if d < 30])
    assert str(charts["weight"]["svg"]).count('class="ht-point"') == len(WEIGHT_DAYS)
    assert str(charts["blood_pressure"]["svg"]).count('class="ht-point"') == 2 * len(BP_DAYS)
    assert str(charts["calories"]["svg"]).count('class="ht-point"') == 10
    assert "No blood glucose recorded" in str(charts["blood_glucose"]["svg"])
    event = AuditEvent.objects.get(actor=care_clinician, resource_type="overview")
    assert (event.action, event.subject_id) == ("read", patient_with_month.pk)


def test_overview_daily_steps_are_summed_per_local_day(client, care_clinician, patient_with_month):
    client.force_login(care_clinician)
    svg = str(
        next(c for c in client.get(overview_url(patient_with_month)).context["charts"] if c["id"] == "steps")[
            "svg"
        ]
    )
    assert "3,500 count (steps)" in svg  # today: 2,000 + 1,500


def test_overview_90_day_window(client, care_clinician, patient_with_month):
    client.force_login(care_clinician)
    page = client.get(overview_url(patient_with_month) + "?days=90")
    assert page.context["days"] == 90
    assert (page.context["last_day"] - page.context["first_day"]).days == 89
    assert client.get(overview_url(patient_with_month) + "?days=7").context["days"] == 30


def test_overview_mark_read(client, care_clinician, patient_with_month):
    insight = HealthInsight.objects.get(user=patient_with_month, is_read=False)
    client.force_login(care_clinician)
    response = client.post(overview_url(patient_with_month), {"insight_id": insight.pk})
    assert response.status_code == 302
    insight.refresh_from_db()
    assert insight.is_read
    assert AuditEvent.objects.filter(actor=care_clinician, action="update", resource_type="insight").exists()


def test_overview_cannot_mark_another_patients_insight(client, care_clinician, patient_with_month, stranger):
    theirs = HealthInsightFactory(user=stranger, is_read=False)
    client.force_login(care_clinician)
    assert client.post(overview_url(patient_with_month), {"insight_id": theirs.pk}).status_code == 404
    theirs.refresh_from_db()
    assert not theirs.is_read


def test_overview_refused_outside_care_team_and_for_support(
    client, care_clinician, stranger, patient_with_month
):
    client.force_login(care_clinician)
    assert client.get(overview_url(stranger)).status_code == 404
    client.force_login(SupportFactory())
    assert client.get(overview_url(patient_with_month)).status_code == 404


def test_overview_query_count_does_not_grow_with_data(
    client, django_assert_max_num_queries, patient_with_month
):
    admin = AdminFactory()
    client.force_login(admin)
    client.get(overview_url(patient_with_month))
    with django_assert_max_num_queries(30):
        client.get(overview_url(patient_with_month) + "?days=90")


# --- Actions ---------------------------------------------------------------------------


def test_recompute_insights_action(client, care_clinician, patient_with_month):
    client.force_login(care_clinician)
    response = client.post(
        "/admin/users/user/",
        {"action": "recompute_insights", "_selected_action": [patient_with_month.pk]},
        follow=True,
    )
    assert b"Recomputed insights for 1 patient" in response.content
    assert HealthInsight.objects.filter(
        user=patient_with_month, created_by__isnull=True, rank__isnull=False
    ).exists()


def test_export_json_action_for_one_patient(client, care_clinician, patient_with_month):
    client.force_login(care_clinician)
    response = client.post(
        "/admin/users/user/", {"action": "export_json", "_selected_action": [patient_with_month.pk]}
    )
    assert response.status_code == 200
    document = json.loads(b"".join(response.streaming_content))
    assert document["profile"]["medical_history"] == "Type 2 diabetes; metformin"
    assert len(document["health_metrics"]) > 60
    event = AuditEvent.objects.get(action="export")
    assert (event.actor_id, event.subject_id) == (care_clinician.pk, patient_with_month.pk)


def test_export_fhir_action_zips_several_patients(client, patient_with_month):
    other = UserFactory(username="second_patient")
    HealthMetricFactory(user=other)
    client.force_login(AdminFactory())
    response = client.post(
        "/admin/users/user/", {"action": "export_fhir", "_selected_action": [patient_with_month.pk, other.pk]}
    )
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == ["pat_month.fhir.json", "second_patient.fhir.json"]
    bundle = json.loads(archive.read("second_patient.fhir.json"))
    assert bundle["resourceType"] == "Bundle"
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Patient", "Observation"]


def test_support_has_no_clinical_actions(client, patient_with_month):
    client.force_login(SupportFactory())
    page = client.get("/admin/users/user/")
    actions = [value for value, _ in page.context["action_form"].fields["action"].choices]
    assert "recompute_insights" not in actions and "export_json" not in actions
    assert "deactivate_selected" in actions
