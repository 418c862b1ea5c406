"""Parsers of client input for retention: any JSON gives a policy, a frequency or a clear 400, never a crash."""

from __future__ import annotations

import time

from hypothesis import given, settings, strategies as st

from stowage.cleanup_policies import FIELDS, parse_policy
from stowage.errors import BadRequest
from stowage.schedules import next_run, parse_frequency

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children,
                                                                                      max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS + ("colour",)), JSON, max_size=8) | JSON)
def test_any_policy_body_is_a_policy_or_a_bad_request(body):
    try:
        policy = parse_policy(body, {"raw": None, "npm": None})
    except BadRequest:
        return
    assert parse_policy(policy.to_json(), {"raw": None, "npm": None}) == policy  # round trip


FREQUENCY_KEYS = ("schedule", "startDate", "timeZoneOffset", "recurringDays", "cronExpression")
SCHEDULE_VALUES = st.sampled_from(["manual", "once", "hourly", "daily", "weekly", "monthly", "cron", "x"])
CRON = st.lists(st.sampled_from(["0", "*", "?", "1-5", "*/5", "MON-FRI", "L", "3#2", "99", "a", "1,2"]),
                min_size=0, max_size=8).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={"schedule": SCHEDULE_VALUES, "startDate": st.integers(-10**12, 10**13) | JSON,
                                           "timeZoneOffset": st.sampled_from(["+02:00", "-05:30", "Z", "+99:00"]) | JSON,
                                           "recurringDays": st.lists(st.integers(-2, 40), max_size=4) | JSON,
                                           "cronExpression": CRON | JSON}) | JSON)
def test_any_frequency_body_is_a_schedule_or_a_bad_request(body):
    now = time.time()
    try:
        frequency = parse_frequency(body, now)
    except BadRequest:
        return
    for after in (now, frequency.start_date or now):
        following = next_run(frequency, after)
        assert following is None or following > after


def test_start_dates_out_of_range_are_refused():
    import pytest

    for value in (-10**12, 10**16, "9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+14:00"):
        with pytest.raises(BadRequest, match="startDate"):
            parse_frequency({"schedule": "weekly", "recurringDays": [1], "startDate": value}, time.time())
