"""Random interleavings of submits and deletes over a few keys, sent through the real stack,
end in the state a plain reference model predicts."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import Stack
from tests.e2e.test_deployments_api import deployment

KEYS = (1, 2, 3)

operation = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from(KEYS), st.integers(0, 5)),
    st.tuples(st.just("delete"), st.sampled_from(KEYS), st.none() | st.integers(0, 5)),
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=st.lists(operation, min_size=1, max_size=12))
def test_final_state_matches_the_reference_model(
    stack: Stack, history: list[tuple[str, int, int | None]]
) -> None:
    pipeline = f"model-{uuid.uuid4().hex[:8]}"  # every example starts from an empty slate
    model: dict[int, tuple[int, str]] = {}
    for step, (kind, number, usn) in enumerate(history):
        path = stack.path(pipeline, "prod", number)
        if kind == "submit":
            assert usn is not None
            name = f"step {step}"
            body = deployment(number=number, usn=usn, displayName=name)
            body["pipeline"] = {"id": pipeline, "displayName": "M", "url": "https://m"}
            assert stack.submit(body).status_code == 202
            if number not in model or model[number][0] < usn:
                model[number] = (usn, name)
        else:
            params = {} if usn is None else {"_updateSequenceNumber": usn}
            assert stack.http.delete(path, params=params).status_code == 202
            if number in model and (usn is None or model[number][0] <= usn):
                del model[number]
    stack.wait_caught_up()
    for number in KEYS:
        expected = model.get(number)
        response = stack.http.get(stack.path(pipeline, "prod", number))
        if expected is None:
            assert response.status_code == 404, (history, response.text)
        else:
            assert response.status_code == 200, (history, response.text)
            assert response.json()["updateSequenceNumber"] == expected[0]
            assert response.json()["displayName"] == expected[1]
