"""Property-based fuzzing of API v1 from its own OpenAPI document (schemathesis).

Every operation gets generated requests, valid and invalid, against the serve process with
keys configured (so the auth checks run too). No response may be a 5xx, and every response
must match the document: status code, content type, headers and body schema. Bounded in
examples (well under a minute), as it runs in CI.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from pipeline.serve.openapi_export import OPENAPI_FILE
from pipeline.tooling.serve_process import ServeProcess
from tests.api.conftest import ADMIN_KEY

pytestmark = pytest.mark.integration

schema = schemathesis.openapi.from_path(OPENAPI_FILE)
# an array over the documented maxItems is refused with 413 (the "too large"), not 422
_rejection = schema.config.checks.negative_data_rejection
_rejection.expected_statuses = [*_rejection.expected_statuses, "413"]


@pytest.fixture
def server(keyed: ServeProcess) -> ServeProcess:
    return keyed


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi_document(
    case: schemathesis.Case, server: ServeProcess
) -> None:
    case.call_and_validate(
        base_url=server.base_url,
        headers={"X-API-Key": ADMIN_KEY},
        # schema-valid events may still be refused on purpose: a ts more than
        # RECLOOP_MAX_FUTURE_MS ahead is `future_ts` (422), as the workers would dead-letter it
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
