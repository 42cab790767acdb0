"""The operator loop in headless Chromium, on the real app: an unanswerable question → fallback → the inbox
cluster → "add as alternative of FAQ coupon-1" → the same question is answered with coupon-1 → the export has it.
"""
from __future__ import annotations

import csv
import io
import re

import httpx
import pytest

from tests.helpers import app_env, running_app, write_faq
from tests.test_browser import _ask, _shot, browser  # noqa: F401 - browser is a fixture

pytestmark = [pytest.mark.browser, pytest.mark.app]

PASSWORD = "운영-비밀-5678"
TOKEN = "loop-token-0123456789"
UNKNOWN = "주차장 이용 요금이 궁금합니다"
COUPON_ANSWER = "결제 화면에서 쿠폰 코드를 입력합니다."


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("browser-loop")
    env = app_env(tmp, tiny_model_dir, write_faq(tmp / "faq.csv"), app__password=PASSWORD, app__operator_token=TOKEN,
                  log__flush_interval_ms=20)
    with running_app(tmp, env) as server:
        yield server


def _wait_unlocked(page, server) -> None:
    """The unlock message; on a timeout the failure names what the page showed instead and the server's last lines."""
    try:
        page.wait_for_selector("text=잠금이 해제되었습니다", timeout=30_000)
    except Exception as exc:
        _shot(page, "loop-unlock-failed")
        shown = page.locator("#operator-lock").inner_text() if page.locator("#operator-lock").count() else "?"
        tail = server["log"].read_text(encoding="utf-8", errors="replace").splitlines()[-30:]
        raise AssertionError(f"no unlock message; the page shows {shown!r}; server log:\n" + "\n".join(tail)) from exc


def test_unanswered_question_is_fixed_from_the_inbox(browser, server):  # noqa: F811
    context = browser.new_context(viewport={"width": 1300, "height": 1100}, locale="ko-KR")
    page = context.new_page()
    page.goto(server["base"] + "/")
    page.wait_for_selector("#question textarea", timeout=30_000)

    assert "죄송합니다" in _ask(page, UNKNOWN)
    _shot(page, "loop-1-fallback")

    page.get_by_role("tab", name=re.compile("운영")).click()
    page.fill("#password input", PASSWORD)
    page.get_by_role("button", name="잠금 해제").click()
    _wait_unlocked(page, server)

    page.get_by_role("tab", name=re.compile("받은 질문")).click()
    page.fill("#operator-name textarea", "김운영")
    page.click("#inbox-load")
    page.wait_for_function(
        "q => (document.querySelector('#inbox-table')?.innerText || '').includes(q)", arg=UNKNOWN, timeout=30_000)
    _shot(page, "loop-2-inbox")

    picker = page.locator("#inbox-faq input")
    picker.click()
    picker.fill("coupon-1")
    page.get_by_test_id("dropdown-option").filter(has_text="coupon-1").first.click()
    assert "coupon-1" in picker.input_value()
    page.click("#inbox-add-alt")
    page.wait_for_function(
        "() => (document.querySelector('#inbox-result')?.innerText || '').includes('추가했습니다')", timeout=30_000)
    page.wait_for_function(
        "q => !(document.querySelector('#inbox-table')?.innerText || '').includes(q)", arg=UNKNOWN, timeout=30_000)
    _shot(page, "loop-3-added")

    page.get_by_role("tab", name=re.compile("상담")).click()
    answer = _ask(page, UNKNOWN)
    assert COUPON_ANSWER in answer and "coupon-1" in answer
    _shot(page, "loop-4-answered")

    export = httpx.get(f"{server['base']}/api/operator/export?format=csv", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert UNKNOWN in next(r for r in rows if r["id"] == "coupon-1")["alternatives"].split("|")
    context.close()
