"""The console in real headless Chromium (Debian's ``chromium``, driven by Playwright).

Acting as a user from the page changes that user's list on the page within seconds, without
a reload: a watch brings a new category in, a mute takes it out. Screenshots go to
``test-artifacts/``; with ``RECLOOP_UPDATE_SCREENSHOT=1`` the user view also to
``docs/console-user-view.png`` (README shows it; a plain test run leaves the tree clean).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import ARTIFACTS, CATEGORIES, REPO, Api, category_of

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS_SCREENSHOT = REPO / "docs" / "console-user-view.png"


@pytest.fixture(scope="module")
def api(single_api: Api) -> Api:
    """The console is the same on either kind of Redis: one is enough."""
    return single_api


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium (as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, api: Api) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, errors


def shown_categories(page: Any) -> list[str]:
    return list(
        page.eval_on_selector_all("#user-list tr.rec", "rows => rows.map(r => r.dataset.category)")
    )


def test_overview_updates_by_itself(page: Any, api: Api) -> None:
    api.user_with_taste("Kids", n=2)
    page.goto(api.serve.url("/"))
    page.wait_for_function(
        "document.querySelector('#ov-workers').textContent === '1'", timeout=20_000
    )
    first = page.text_content("#overview-status")
    page.wait_for_function(
        "s => document.querySelector('#overview-status').textContent !== s",
        arg=first,
        timeout=20_000,
    )
    # the worker's event-loop lag is a number of milliseconds, not a placeholder
    page.wait_for_function(
        "/^[0-9][0-9,.]*$/.test(document.querySelector('#ov-loop').textContent)", timeout=20_000
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-overview.png"))


def test_watch_brings_a_category_in_and_mute_takes_it_out(page: Any, api: Api) -> None:
    user = api.user_with_taste("Comedy", n=4)
    page.goto(api.serve.url("/#user"))
    page.evaluate("window.__sameDocument = true")
    page.fill("#user-id", user)
    page.click("#user-form button[type=submit]")
    page.wait_for_selector("#user-list tr.rec", timeout=15_000)
    before = shown_categories(page)
    assert "Comedy" in before
    new = next(c for c in CATEGORIES if c not in before)

    page.click(f"#explore .explore-item[data-category='{new}'] button[data-action='watch']")
    page.wait_for_selector(f"#user-list tr.rec[data-category='{new}']", timeout=15_000)
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    page.wait_for_timeout(300)  # let the highlight start, for the picture
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-user-after-watch.png"), full_page=True)
    if os.environ.get("RECLOOP_UPDATE_SCREENSHOT") == "1":
        page.screenshot(path=str(DOCS_SCREENSHOT))

    page.click(f"#user-list tr.rec[data-category='{new}'] button[data-action='mute']")
    page.wait_for_function(
        "cat => document.querySelectorAll('#user-list tr.rec').length > 0 && "
        "!document.querySelector(`#user-list tr.rec[data-category='${cat}']`) && "
        "document.querySelector('#user-controls').textContent.includes(cat)",
        arg=new,
        timeout=15_000,
    )
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    page.screenshot(path=str(ARTIFACTS / "console-user-after-mute.png"), full_page=True)
    assert new not in shown_categories(page)
    assert new not in [category_of(i) for i in api.listed(user)]


def test_experiments_and_catalogue_views(page: Any, api: Api) -> None:
    api.user_with_taste("Sports", n=2)
    page.goto(api.serve.url("/#experiments"))
    page.wait_for_selector("#experiments table tbody tr", timeout=15_000)
    assert "apitest" in page.text_content("#experiments")
    page.wait_for_selector("#experiments svg.chart")
    page.screenshot(path=str(ARTIFACTS / "console-experiments.png"), full_page=True)
    page.goto(api.serve.url("/#catalogue"))
    page.wait_for_selector("#trending tbody tr", timeout=15_000)
    page.click("#trending tbody tr")
    page.wait_for_selector("#item-detail dl", timeout=10_000)
    assert "trending rank" in page.text_content("#item-detail")
    page.screenshot(path=str(ARTIFACTS / "console-catalogue.png"), full_page=True)


def test_an_operator_withdraws_and_restores_an_item_from_the_catalogue(page: Any, api: Api) -> None:
    api.user_with_taste("Kids", n=2)
    page.goto(api.serve.url("/#catalogue"))
    page.wait_for_selector("#items tbody tr", timeout=15_000)
    page.click("#items tbody tr")
    page.wait_for_selector("#availability-toggle", timeout=10_000)
    assert "available" in page.text_content("#item-detail")
    page.click("#availability-toggle")
    page.wait_for_function(
        "document.querySelector('#availability-toggle')?.textContent === 'restore'",
        timeout=15_000,
    )
    assert "withdrawn" in page.text_content("#item-detail")
    page.screenshot(path=str(ARTIFACTS / "console-item-withdrawn.png"), full_page=True)
    page.click("#availability-toggle")
    page.wait_for_function(
        "document.querySelector('#availability-toggle')?.textContent === 'withdraw'",
        timeout=15_000,
    )
