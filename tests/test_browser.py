"""The chat page in headless Chromium: answer with source, fallback suggestion click, 👍 log, XSS as text, operator.

Starts `python app.py --port FREE` with FAQBOT_* variables pointing at tmp folders, the tiny model and
a small FAQ that holds an HTML/JS payload; screenshots go to artifacts/ (git-ignored).
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from chatbot.settings import PROJECT_ROOT
from tests.helpers import app_env, running_app, write_faq

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = PROJECT_ROOT / "artifacts"
XSS_ANSWER = (
    '<script>window.__xss = 1; alert("script")</script>'
    '<img src=x onerror="window.__xss = 2; alert(\'img\')"> 태그는 글자 그대로 보여야 합니다.'
)
FAQ = [
    ("ship-1", "배송", "배송은 얼마나 걸리나요?", "주문 후 2~3일 안에 도착합니다.", "택배는 언제 도착해요?"),
    ("refund-1", "환불", "환불은 어떻게 받나요?", "반품이 확인되면 3영업일 안에 환불됩니다.", ""),
    ("account-1", "회원", "비밀번호를 잊어버렸어요", "로그인 화면에서 비밀번호 찾기를 누르세요.", ""),
    ("xss-1", "보안", "특수 문자가 들어간 답변", XSS_ANSWER, ""),
]
EXTRA_FAQ = [("gift-1", "선물", "선물 포장이 되나요?", "결제 화면에서 선물 포장을 선택할 수 있습니다.", "")]
PASSWORD = "운영-비밀-1234"


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    """The real entry point (`python app.py`) on a free loopback port, sample FAQ ingested at start-up."""
    tmp = tmp_path_factory.mktemp("browser")
    env = app_env(tmp, tiny_model_dir, write_faq(tmp / "faq.csv", FAQ), app__password=PASSWORD)
    with running_app(tmp, env) as server:
        yield {**server, "feedback": tmp / "feedback.jsonl"}


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium); the browser test needs Debian's Chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        yield b
        b.close()


@pytest.fixture()
def page(browser, server):
    context = browser.new_context(viewport={"width": 1200, "height": 1000}, locale="ko-KR")
    page = context.new_page()
    page.dialogs = []  # any alert() would mean injected script ran
    page.errors = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(server["base"] + "/")
    page.wait_for_selector("#question textarea", timeout=30_000)
    yield page
    context.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"browser-{name}.png"), full_page=True)


def _bots(page):
    return page.locator("#chat .message.bot")


def _ask(page, question: str) -> str:
    """Types a question, sends it, waits for the new answer and returns its text."""
    before = _bots(page).count()
    page.fill("#question textarea", question)
    page.click("#send")
    return _wait_answer(page, before)


def _wait_answer(page, before: int) -> str:
    page.wait_for_function(
        """before => {
            const bots = document.querySelectorAll('#chat .message.bot');
            return bots.length > before && !bots[bots.length - 1].innerText.includes('Loading content');
        }""",
        arg=before,
        timeout=20_000,
    )
    return _bots(page).last.inner_text()


def _options_then_click_first(page, shot: str, fewest: int = 1) -> tuple[str, str]:
    """The buttons under the newest answer (1–3 of them): screenshot, click the first, return its text and the answer."""
    options = page.locator("#chat button.option")
    assert fewest <= options.count() <= 3
    _shot(page, shot)
    chosen = options.first.inner_text().strip()
    before = _bots(page).count()
    options.first.click()
    return chosen, _wait_answer(page, before)


def test_start_up_printed_its_sample_ingestion(server):
    log = server["log"].read_text(encoding="utf-8", errors="replace")
    assert "샘플 FAQ" in log and "준비 완료" in log


def test_answer_shows_matched_question_source_and_score(page):
    text = _ask(page, "배송은 얼마나 걸리나요?")
    assert "주문 후 2~3일 안에 도착합니다." in text
    assert "Q. 배송은 얼마나 걸리나요?" in text
    assert "faq.csv" in text and "FAQ ship-1" in text
    assert re.search(r"점수 \d\.\d{3}", text)
    _shot(page, "answer")


def test_fallback_suggestion_click_then_thumbs_up_is_logged(page, server):
    text = _ask(page, "오늘 서울 날씨 어때")
    assert "죄송합니다" in text
    suggestion, answer = _options_then_click_first(page, "fallback")
    expected = next(row for row in FAQ if row[2] == suggestion)
    assert f"Q. {suggestion}" in answer
    assert expected[3].split("<")[0][:10] in answer or expected[0] == "xss-1"
    assert page.locator("#chat button.option").count() == 0  # an answered question has no suggestion buttons

    page.get_by_role("button", name=re.compile(r"^(좋아요|Like)$")).last.click()  # 👍 (label follows the ko-KR locale)
    deadline = time.monotonic() + 10
    entries: list[dict] = []
    while time.monotonic() < deadline and not entries:
        if server["feedback"].exists():
            entries = [json.loads(line) for line in server["feedback"].read_text(encoding="utf-8").splitlines()]
        time.sleep(0.2)
    assert entries, "no feedback line was written"
    entry = entries[-1]
    assert entry["question"] == suggestion and entry["rating"] == "up" and entry["channel"] == "web"
    assert entry["answer_id"] == expected[0] and entry["answer_type"] == "faq"
    assert entry["mode"] == "hybrid" and entry["score"] > 0.8 and entry["time"]
    _shot(page, "suggestion-liked")


def test_html_in_an_faq_answer_is_shown_as_text_and_never_runs(page):
    text = _ask(page, "특수 문자가 들어간 답변")
    assert '<script>window.__xss = 1; alert("script")</script>' in text
    assert "onerror=" in text and "태그는 글자 그대로 보여야 합니다." in text
    page.wait_for_timeout(500)  # give a broken <img> time to fire onerror, were there one
    assert page.evaluate("window.__xss") is None
    assert page.dialogs == []
    assert page.locator("#chat img[src='x'], #chat script").count() == 0
    _shot(page, "xss-as-text")
    assert page.errors == []


def test_example_question_and_category_filter(page):
    examples = page.locator("#examples button")
    examples.first.wait_for(timeout=30_000)
    label = examples.first.inner_text().strip()
    before = _bots(page).count()
    examples.first.click()
    assert f"Q. {label}" in _wait_answer(page, before)
    assert page.locator("#category").is_visible()


def test_operator_tab_needs_the_password_then_ingests_an_upload(page, server):
    page.get_by_role("tab", name=re.compile("운영")).click()
    page.fill("#password input", "wrong")
    page.get_by_role("button", name="잠금 해제").click()
    page.get_by_text("비밀번호가 올바르지 않습니다").wait_for(timeout=30_000)
    assert not page.locator("#ingest").is_visible()
    page.fill("#password input", PASSWORD)
    page.get_by_role("button", name="잠금 해제").click()
    page.locator("#ingest").wait_for(state="visible", timeout=30_000)

    upload = write_faq(server["tmp"] / "extra-faq.csv", EXTRA_FAQ)
    page.locator("#upload input[type=file]").set_input_files(str(upload))  # kind from the extension
    page.get_by_text("extra-faq.csv").first.wait_for(timeout=30_000)
    page.click("#ingest")
    page.get_by_text("색인 완료").wait_for(timeout=30_000)
    summary = page.locator("#ingest-summary").inner_text()
    assert "추가 1" in summary and "거부 0" in summary
    assert "extra-faq.csv" in page.locator("#ingest-counts").inner_text()
    assert "레코드 수" in page.locator("#stats").inner_text()
    _shot(page, "operator")

    page.get_by_role("tab", name=re.compile("상담")).click()
    assert "결제 화면에서 선물 포장을" in _ask(page, "선물 포장이 되나요?")
