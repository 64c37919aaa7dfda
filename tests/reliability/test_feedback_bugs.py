"""Concurrent feedback batches in different orders (found by the load test as a deadlock -> 500
on PostgreSQL; fixed by writing rows in (hash id, action) order)."""
from __future__ import annotations

import random

import pytest

from tests.helpers import bearer, new_case
from tests.reliability.asgi import send_concurrently
from tests.reliability.server import random_pdq


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("route", ["native", "stopncii"])
def test_concurrent_feedback_batches_in_different_orders_never_fail(client, app, make_partner,
                                                                     route):
    rng = random.Random(3)
    key = make_partner("deadlock")
    values = [random_pdq(rng) for _ in range(100)]
    new_case(client, values)

    def request(batch: list[str]) -> tuple[str, str, dict]:
        if route == "native":
            return "POST", "/v1/partner/feedback", {"headers": bearer(key), "json": {"feedback": [
                {"signal_type": "pdq", "value": v, "action": "matched"} for v in batch]}}
        return "POST", "/stopncii/v1/SubmitFeedback", {"headers": bearer(key), "json": {
            "hashFeedbacks": [{"hashValue": v, "feedbackValue": "Blocked"} for v in batch]}}

    statuses = []
    for _ in range(2):
        answers = send_concurrently(app, [request(values), request(values[::-1])])
        statuses += [a.status_code for a in answers]
    assert statuses == [200] * 4, statuses
