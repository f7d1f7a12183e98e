"""``/metrics`` of a real ``recloop serve`` process: route templates, never paths."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from pipeline.tooling.probes import free_port
from pipeline.tooling.serve_process import ServeProcess
from tests.api.conftest import Api

REC_ROUTE = "/v1/users/{user_id}/recommendations"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``(sample name, labels) -> value`` of a Prometheus text page."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    page: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return page.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_by_route_template_without_user_ids(api: Api) -> None:
    before = samples(api.http.get("/metrics").text)
    user = f"metrics-{uuid.uuid4().hex[:8]}"
    for _ in range(3):
        assert api.http.get(f"/v1/users/{user}/recommendations").status_code == 200
    assert api.http.get(f"/v1/users/{user}").status_code in {200, 404}
    assert api.http.get(f"/no/such/{user}").status_code == 404

    resp = api.http.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    assert user not in resp.text  # no label carries a path or a user id
    after = samples(resp.text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("recloop_api_requests_total", method="GET", route=REC_ROUTE, status="200") == 3
    assert grew("recloop_api_request_seconds_count", method="GET", route=REC_ROUTE) == 3
    unmatched = {"method": "GET", "route": "(unmatched)", "status": "404"}
    assert grew("recloop_api_requests_total", **unmatched) == 1
    user_view = sum(
        grew("recloop_api_requests_total", method="GET", route="/v1/users/{user_id}", status=s)
        for s in ("200", "404")
    )
    assert user_view == 1
    routes = {dict(labels).get("route") for (name, labels) in after if "api_request" in name}
    assert all(r is None or r == "(unmatched)" or r.startswith("/") for r in routes)
    assert value(after, "recloop_api_redis_errors_total", where="request") == 0


def test_metrics_need_no_key_on_a_keyed_server(keyed: ServeProcess) -> None:
    resp = httpx.get(keyed.url("/metrics"), timeout=10)
    assert resp.status_code == 200
    assert "recloop_api_requests_total" in resp.text


def test_redis_errors_are_counted_where_they_happen(api: Api, tmp_path: Path) -> None:
    settings = api.settings.model_copy(
        update={"api_port": free_port(), "redis_url": f"redis://127.0.0.1:{free_port()}/0"}
    )  # nothing listens there
    serve = ServeProcess(settings, log_path=tmp_path / "serve.log").wait_healthy(30)
    try:
        with httpx.Client(base_url=serve.base_url, timeout=30) as http:
            assert http.get("/v1/users/someone/recommendations").status_code == 503
            assert http.get("/ready").status_code == 503
            page = samples(http.get("/metrics").text)
    finally:
        serve.stop()
    assert value(page, "recloop_api_redis_errors_total", where="request") >= 1
    assert value(page, "recloop_api_redis_errors_total", where="ready") >= 1
    assert (
        value(page, "recloop_api_requests_total", method="GET", route=REC_ROUTE, status="503") == 1
    )
