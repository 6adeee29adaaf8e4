from datetime import date, timedelta

from healthtrack.charts import ReferenceLine, Series, line_chart

START = date(2026, 11, 1)
END = date(2026, 11, 30)


def test_one_circle_per_point_and_gaps_break_the_line():
    points = [(START + timedelta(days=i), 1000.0 * i) for i in (0, 1, 2, 5, 6, 9)]
    svg = str(line_chart(title="Steps", unit="steps", start=START, end=END, series=[Series("steps", points)]))
    assert svg.count('class="ht-point"') == 6
    assert svg.count("<polyline") == 2  # days 0-2 and 5-6; day 9 stands alone
    assert 'data-points="6"' in svg
    assert svg.startswith("<svg") and svg.endswith("</svg>")


def test_points_outside_the_window_are_not_drawn():
    points = [(START - timedelta(days=1), 5.0), (START, 6.0), (END + timedelta(days=1), 7.0)]
    svg = str(line_chart(title="Sleep", unit="h", start=START, end=END, series=[Series("sleep", points)]))
    assert svg.count('class="ht-point"') == 1


def test_two_series_with_legend_and_reference_line():
    systolic = [(START + timedelta(days=i), 130.0 + i) for i in range(3)]
    diastolic = [(START + timedelta(days=i), 85.0) for i in range(3)]
    svg = str(
        line_chart(
            title="Blood pressure", unit="mmHg", start=START, end=END,
            series=[Series("systolic", systolic), Series("diastolic", diastolic)],
            reference=ReferenceLine(130, "130 mmHg"),
        )
    )  # fmt: skip
    assert svg.count('data-series="systolic"') == 3
    assert svg.count('data-series="diastolic"') == 3
    assert 'class="ht-reference"' in svg
    assert ">systolic</text>" in svg and ">diastolic</text>" in svg


def test_empty_series_says_so():
    svg = str(line_chart(title="Glucose", unit="mg/dL", start=START, end=END, series=[Series("glucose", [])]))
    assert "No glucose recorded in these 30 days" in svg
    assert "ht-point" not in svg


def test_flat_series_and_single_day_window_do_not_divide_by_zero():
    svg = str(
        line_chart(title="Weight", unit="kg", start=START, end=START, series=[Series("w", [(START, 70.0)])])
    )
    assert svg.count('class="ht-point"') == 1


def test_labels_are_escaped():
    svg = str(
        line_chart(title="<script>", unit="&", start=START, end=END, series=[Series("<b>", [(START, 1.0)])])
    )
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_flat_series_grid_labels_are_distinct():
    import re

    svg = str(
        line_chart(
            title="Calories", unit="kcal", start=START, end=END, series=[Series("c", [(START, 2100.0)])]
        )
    )
    labels = re.findall(r'text-anchor="end" font-size="11" fill="#666">([^<]+)<', svg)
    assert len(labels) == len(set(labels)) >= 2
