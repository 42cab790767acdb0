"""The "did you mean" outcome on the page with the real e5 and the sample shop: candidates as buttons,
a click answers it and is recorded as a label of the question it was offered for."""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from chatbot.settings import PROJECT_ROOT
from tests.helpers import app_env, running_app
from tests.test_browser import _ask, _options_then_click_first, _shot, browser  # noqa: F401 - the shared browser fixture

pytestmark = [pytest.mark.browser, pytest.mark.e5, pytest.mark.app]

# Short, vague questions near several FAQs: the decision model tends to ask back on these.
VAGUE = ["배송", "취소", "환불", "쿠폰", "결제", "교환", "회원", "포인트", "주문", "반품"]


@pytest.fixture(scope="module")
def shop(tmp_path_factory, e5_dir):
    tmp = tmp_path_factory.mktemp("clarify")
    env = app_env(
        tmp, e5_dir, PROJECT_ROOT / "data" / "faq.csv",
        answer__threshold="0.865", answer__decision_model="true", app__ask_per_minute="0",
    )
    with running_app(tmp, env, timeout_s=600) as server:
        yield server


def _clarify_question(base: str) -> str:
    """A vague question the running app answers with clarify (once its decision model is ready)."""
    deadline = time.monotonic() + 300
    seen = {}
    while time.monotonic() < deadline:
        for question in VAGUE:
            body = httpx.post(f"{base}/api/ask", json={"question": question}, timeout=60).json()
            seen[question] = (body["type"], body.get("p"))
            if body["type"] == "clarify":
                assert 2 <= len(body["candidates"]) <= 3 and all(c["question"] and c["faq_id"] for c in body["candidates"])
                return question
        if all(p is not None for _, p in seen.values()):
            break  # the model decided every one of them: no clarify among them
        time.sleep(5)
    raise AssertionError(f"no vague question was answered with clarify: {seen}")


def test_clarify_candidates_are_buttons_and_a_click_answers_and_is_recorded(browser, shop):  # noqa: F811
    question = _clarify_question(shop["base"])
    context = browser.new_context(viewport={"width": 1200, "height": 1000}, locale="ko-KR")
    page = context.new_page()
    page.goto(shop["base"] + "/")
    page.wait_for_selector("#question textarea", timeout=30_000)
    text = _ask(page, question)
    assert "혹시 이 질문을 찾으셨나요?" in text
    chosen, answer = _options_then_click_first(page, "clarify", fewest=2)
    assert f"Q. {chosen}" in answer or chosen in answer
    _shot(page, "clarify-answered")
    context.close()
    db = Path(shop["env"]["FAQBOT_LOG__URL"].removeprefix("sqlite:///"))
    deadline = time.monotonic() + 10
    rows: list = []
    while time.monotonic() < deadline and not rows:
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT kind, question_id, target_id FROM feedback WHERE kind = 'clarify'").fetchall()
        time.sleep(0.3)
    assert rows and rows[0][1] and rows[0][2], rows
    with sqlite3.connect(db) as conn:
        asked = conn.execute("SELECT question, outcome FROM questions WHERE id = ?", (rows[0][1],)).fetchone()
    assert asked == (question, "clarify"), json.dumps(asked, ensure_ascii=False)
