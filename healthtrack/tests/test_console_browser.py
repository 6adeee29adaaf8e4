"""The admin console in a real browser: headless Debian Chromium driven by Playwright.

Screenshots of what each role sees are saved under test-artifacts/ (CI keeps them).
"""

import re

import pytest

from healthtrack.tests.browser_fixtures import requires_chromium
from healthtrack.tests.conftest import STEP_DAYS, WEIGHT_DAYS
from insights.models import HealthInsight
from users.tests.factories import DEFAULT_PASSWORD, SupportFactory, UserFactory

pytestmark = [pytest.mark.browser, requires_chromium, pytest.mark.django_db(transaction=True)]


def sign_in(page, live_server, user):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


def test_clinician_reviews_a_patient(page, live_server, screenshot, care_clinician, patient_with_month):
    stranger = UserFactory(username="stranger_sam", profile__medical_history="Not for you")
    sign_in(page, live_server, care_clinician)

    page.click("#content-main >> text=Users")
    page.wait_for_selector("#result_list")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    page.click("#result_list >> text=pat_month")
    page.wait_for_selector("text=Patient overview")
    page.click("text=Patient overview")
    page.wait_for_selector("#ht-overview")

    assert page.locator("svg.ht-chart").count() == 8
    assert page.locator("#chart-steps circle.ht-point").count() == len(STEP_DAYS)
    assert page.locator("#chart-weight circle.ht-point").count() == len(WEIGHT_DAYS)
    assert page.locator("#chart-blood_pressure circle.ht-point").count() == 6
    assert page.locator("#goals [role=progressbar]").count() == 2
    assert page.locator("#recommendations li.ht-recommendation").count() >= 1
    assert "Type 2 diabetes; metformin" in page.inner_text("#facts")
    screenshot("clinician-patient-overview")

    page.click("#insights button.ht-mark-read")
    page.wait_for_selector("text=Marked “Walk more” read.")
    assert HealthInsight.objects.get(title="Walk more").is_read
    assert "No unread insights." in page.inner_text("#insights")

    page.goto(f"{live_server.url}/admin/users/user/{stranger.pk}/overview/")
    assert "Not Found" in page.content()
    page.goto(f"{live_server.url}/admin/users/user/{stranger.pk}/change/")
    assert re.search(r"doesn.t exist", page.inner_text("body"))
    assert "Not for you" not in page.content()
    screenshot("clinician-refused-other-patient")


def test_ninety_day_window(page, live_server, screenshot, care_clinician, patient_with_month):
    sign_in(page, live_server, care_clinician)
    page.goto(f"{live_server.url}/admin/users/user/{patient_with_month.pk}/overview/")
    page.click("text=90 days")
    page.wait_for_selector("#ht-overview[data-days='90']")
    assert page.locator("#chart-steps circle.ht-point").count() == len(STEP_DAYS)
    screenshot("clinician-patient-overview-90-days")


def test_support_sees_accounts_but_no_health_data(page, live_server, screenshot, patient_with_month):
    support = SupportFactory(username="helpdesk")
    sign_in(page, live_server, support)
    index = page.inner_text("#content-main")
    for section in ("Health metrics", "Nutrition", "Goals", "Insights"):
        assert section not in index
    page.click("#content-main >> text=Users")
    page.wait_for_selector("#result_list")
    page.click("#result_list >> text=pat_month")
    page.wait_for_selector("#user_form")
    body = page.inner_text("body")
    assert "Type 2 diabetes" not in body
    assert "Medical history" not in body
    assert page.locator("text=Patient overview").count() == 0
    screenshot("support-user-page")
    page.goto(f"{live_server.url}/admin/metrics/healthmetric/")
    assert "403" in page.title() or "Forbidden" in page.content()
