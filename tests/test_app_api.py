"""The JSON API over the real retriever (tiny model): answers, fallback, validation, health, feedback, load."""
from __future__ import annotations

import json
import statistics
import threading
import time
from datetime import datetime, timezone
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from chatbot.answer import describe_source
from chatbot.feedback import Feedback, FeedbackLog
from chatbot.pipeline import open_pipeline
from chatbot.records import Answer, Hit
from chatbot.web.api import build_api
from chatbot.web.app import create_app
from chatbot.web.render import answer_html
from chatbot.web.service import Service, build_catalog
from tests.helpers import FAQ_ROWS, free_port, write_faq

FAQ = FAQ_ROWS


@pytest.fixture()
def settings(make_settings, tmp_path):
    faq = write_faq(tmp_path / "faq.csv")
    return make_settings(app={"feedback_log": str(tmp_path / "feedback.jsonl"), "sample_faq": [str(faq)], "sample_docs": []})


@pytest.fixture()
def pipeline(settings):
    from ingest.sync import ingest_paths

    report = ingest_paths(settings, "faq", [Path(p) for p in settings.app.sample_faq])
    assert not report.rejected, [str(r) for r in report.rejected]
    return open_pipeline(settings)


@pytest.fixture()
def client(pipeline):
    with TestClient(build_api(pipeline)) as c:
        yield c


def ask(client, **body):
    return client.post("/api/ask", json=body)


# --- answers ------------------------------------------------------------------------------------
def test_exact_question_gets_the_faq_answer_with_source_and_score(client):
    got = ask(client, question="배송은 얼마나 걸리나요?")
    assert got.status_code == 200, got.text
    body = got.json()
    assert set(body) >= {"type", "answer", "score", "matched_question", "sources", "suggestions"}
    assert body["type"] == "faq" and body["faq_id"] == "ship-1" and body["faq_source"] == "faq.csv"
    assert body["answer"] == "주문 후 2~3일 안에 도착합니다."
    assert body["matched_question"] == "배송은 얼마나 걸리나요?"
    assert body["sources"][0]["source"].endswith("faq.csv") and body["sources"][0]["kind"] == "faq"
    assert 0.86 <= body["score"] <= 1.0001


def test_alternative_wording_matches_its_faq(client):
    body = ask(client, question="택배는 언제 도착해요?").json()
    assert body["type"] == "faq" and body["faq_id"] == "ship-1"


def test_out_of_scope_question_falls_back_with_clickable_suggestions(client):
    body = ask(client, question="오늘 서울 날씨 어때").json()
    assert body["type"] == "fallback" and body["faq_id"] is None
    assert "죄송합니다" in body["answer"]
    assert 1 <= len(body["suggestions"]) <= 3
    main_questions = {row[2] for row in FAQ}
    assert set(body["suggestions"]) <= main_questions
    # asking a suggestion (what clicking it does on the page) answers that FAQ
    follow = ask(client, question=body["suggestions"][0]).json()
    assert follow["type"] == "faq" and follow["matched_question"] == body["suggestions"][0]


def test_category_filters_and_unknown_category_is_not_an_error(client):
    body = ask(client, question="배송은 얼마나 걸리나요?", category="환불").json()
    assert body["faq_id"] != "ship-1"
    assert all(s.get("category") == "환불" for s in body["sources"])
    unknown = ask(client, question="배송은 얼마나 걸리나요?", category="없는분야")
    assert unknown.status_code == 200 and unknown.json()["type"] == "fallback"
    assert unknown.json()["suggestions"] == []
    # nothing to suggest: the reply does not point at questions "below" that are not there
    assert unknown.json()["answer"] == client.app.state.service.settings.answer.fallback_alone
    assert "아래 질문" not in unknown.json()["answer"]


def test_k_and_mode_are_accepted(client):
    assert ask(client, question="환불은 어떻게 받나요?", k=1).json()["faq_id"] == "refund-1"
    assert ask(client, question="환불은 어떻게 받나요?", k=50).status_code == 200
    body = ask(client, question="환불은 어떻게 받나요?", mode="lexical").json()
    assert body["faq_id"] == "refund-1" and body["mode"] == "lexical"


def test_emoji_only_question_is_a_polite_fallback_not_an_error(client):
    got = ask(client, question="😀😀🙏")
    assert got.status_code == 200 and got.json()["type"] == "fallback"


# --- validation: 4xx with a readable message, never a 500 -----------------------------------------
@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"question": ""}, "비어"),
        ({"question": "   \n\t "}, "비어"),
        ({"question": "배송 " * 5000}, "너무 깁니다"),
        ({"question": "가" * 10_000}, "너무 깁니다"),
        ({"question": "배송", "k": 0}, "k"),
        ({"question": "배송", "k": 999}, "k"),
        ({"question": "배송", "k": "many"}, "정수"),
        ({}, "필수"),
        ({"k": 3}, "question"),
        ({"question": None}, "question"),
        ({"question": ["배송"]}, "문자열"),
        ({"question": "배송", "mode": "magic"}, "mode"),
    ],
)
def test_bad_requests_are_4xx_with_a_message(client, body, words):
    got = client.post("/api/ask", json=body)
    assert 400 <= got.status_code < 500, got.text
    detail = got.json()["detail"]
    assert isinstance(detail, str) and words in detail


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"question"', b""])
def test_malformed_bodies_are_4xx(client, raw):
    got = client.post("/api/ask", content=raw, headers={"content-type": "application/json"})
    assert got.status_code == 422 and isinstance(got.json()["detail"], str)


def test_ask_runs_off_the_event_loop_and_keeps_fastapis_error_contract(client):
    """/api/ask parses, answers and serialises on a request thread (chatbot/web/thread_route.py); what a client
    sees for bad bodies is what FastAPI's own handling gave: 400 for a body that cannot be read, 422 with
    locations under "body" otherwise, and /openapi.json still documents both models."""
    def post(content: bytes):
        return client.post("/api/ask", content=content, headers={"Content-Type": "application/json"})

    assert ask(client, question="배송은 얼마나 걸리나요?").json()["type"] == "faq"
    empty = post(b"")
    assert empty.status_code == 422 and empty.json()["detail"].endswith("body: 필수 항목입니다 (Field required)")
    broken = post(b'{"question": ')
    assert broken.status_code == 422 and "body: JSON 형식이 올바르지 않습니다" in broken.json()["detail"]
    assert broken.json()["errors"][0]["loc"][0] == "body"
    field = post('{"question": "배송", "k": 0}'.encode())
    assert field.status_code == 422 and field.json()["errors"][0]["loc"] == ["body", "k"]
    for unreadable in (b'{"question": "\xff\xfe"}', b'{"question": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"):
        got = post(unreadable)
        assert got.status_code == 400 and "UTF-8" in got.json()["detail"]
    operation = client.get("/openapi.json").json()["paths"]["/api/ask"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/AskRequest")
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/AskResponse")


# --- health -------------------------------------------------------------------------------------
def test_health_reports_records_and_encoder(client, pipeline):
    got = client.get("/api/health")
    assert got.status_code == 200
    body = got.json()
    assert body["status"] == "ok" and body["records"] == pipeline.store.count() > 0
    assert body["encoder"] == pipeline.encoder.model_id
    assert (body["backend"], body["device"]) == (pipeline.encoder.backend, "cpu")  # the tests' settings: device cpu
    assert body["decision"] == "off"  # the tiny model's settings: the threshold decides


def test_start_up_warms_retrieval_and_waits_for_the_decision_model(make_settings, tmp_path, monkeypatch):
    """The warm-up question goes through retrieval (a greeting would be answered before it) and asks for the
    decision model, whose build starts then; the service is ready once that model is there, so no first
    answer comes from the raw threshold."""
    from chatbot.decision.artefact import DecisionProvider

    faq = write_faq(tmp_path / "faq.csv")
    settings = make_settings(app={"sample_faq": [str(faq)], "sample_docs": []},
                             answer={"threshold": 0.5, "decision_model": True})
    asked: list[str] = []
    searched = DecisionProvider.current
    monkeypatch.setattr(DecisionProvider, "current", lambda self: asked.append("model") or searched(self))
    service = Service(settings)
    service.load()
    assert service.pipeline is not None and asked and service.ready
    assert service.pipeline.answerer.decision.status == "ready"


def test_a_decision_model_that_cannot_be_built_does_not_stop_the_start(make_settings, tmp_path, monkeypatch):
    from chatbot.decision.artefact import DecisionProvider

    faq = write_faq(tmp_path / "faq.csv")
    settings = make_settings(app={"sample_faq": [str(faq)], "sample_docs": []},
                             answer={"threshold": 0.5, "decision_model": True})
    monkeypatch.setattr(DecisionProvider, "build", lambda self, fingerprint=None: (_ for _ in ()).throw(ValueError("no rows")))
    service = Service(settings)
    service.load()
    assert service.ready and service.pipeline.answerer.decision.current() is None
    assert service.ask("배송비 얼마예요?")[0].type == "faq"  # the threshold decides


def test_health_and_ask_are_503_until_loaded(settings):
    service = Service(settings)  # never started: what the server looks like while the model loads
    client = TestClient(build_api(service))  # no `with`: the lifespan (which starts loading) does not run
    health = client.get("/api/health")
    assert health.status_code == 503 and health.json()["status"] == "starting"
    got = client.post("/api/ask", json={"question": "배송"})
    assert got.status_code == 503 and "준비" in got.json()["detail"]


# --- feedback -----------------------------------------------------------------------------------
def test_feedback_is_appended_as_json_lines(client, settings):
    body = ask(client, question="배송은 얼마나 걸리나요?").json()
    sent = {"question": "배송은 얼마나 걸리나요?", "answer_id": body["faq_id"], "score": body["score"],
            "mode": "hybrid", "rating": "up"}
    assert client.post("/api/feedback", json=sent).status_code == 200
    assert client.post("/api/feedback", json={"question": "환불", "rating": "down"}).status_code == 200
    lines = settings.app.feedback_log.read_text(encoding="utf-8").splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["question"] == "배송은 얼마나 걸리나요?" and first["answer_id"] == "ship-1" and first["rating"] == "up"
    assert first["score"] == body["score"] and first["mode"] == "hybrid" and first["time"] and first["channel"] == "api"
    assert second["rating"] == "down" and second["answer_id"] is None


@pytest.mark.parametrize("body", [{"question": "배송", "rating": "meh"}, {"question": "", "rating": "up"}, {"rating": "up"}])
def test_bad_feedback_is_422(client, body):
    assert client.post("/api/feedback", json=body).status_code == 422


def test_questions_in_flight_are_capped_at_request_threads(settings):
    """app.request_threads bounds how many questions run at once (each blocks a thread); the rest wait, none fail."""
    from ingest.sync import ingest_paths

    capped = settings.with_overrides(app={"request_threads": 3})
    ingest_paths(capped, "faq", [Path(p) for p in capped.app.sample_faq])
    pipeline = open_pipeline(capped)
    real_ask, running, most = pipeline.answerer.ask, [0], [0]
    lock = threading.Lock()

    def slow_ask(*args, **kwargs):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.15)
            return real_ask(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    pipeline.answerer.ask = slow_ask
    with TestClient(build_api(pipeline)) as client, ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(lambda _: ask(client, question="배송은 얼마나 걸리나요?").status_code, range(10)))
    assert statuses == [200] * 10
    assert most[0] == 3


def test_feedback_log_survives_concurrent_writers(tmp_path):
    path = tmp_path / "fb.jsonl"
    long_question = "가나다라마바사 " * 1200  # ~25 KB lines (under the 10,000-character cap): interleaving would break them

    def write(i: int) -> None:
        FeedbackLog(path).append(Feedback(question=f"{i} {long_question}", rating="up" if i % 2 else "down", score=i / 20))

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(write, range(20)))
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(entries) == 20
    assert sorted(int(e["question"].split()[0]) for e in entries) == list(range(20))
    FeedbackLog(path).append(Feedback(question="재시작 후", rating="up"))  # a new log object appends, never truncates
    assert len(FeedbackLog(path).read()) == 21


# --- page helpers -------------------------------------------------------------------------------
def test_answer_html_escapes_stored_text():
    payload = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    answer = Answer(type="faq", answer=payload, score=0.9, matched_question="<b>q</b>", faq_id="x",
                    sources=({"source": "<i>f</i>.csv", "kind": "faq", "faq_id": "x"},))
    rendered = answer_html(answer)
    assert "<script>" not in rendered and "<img" not in rendered and "<i>" not in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered and "onerror=&quot;alert(2)&quot;" in rendered


def test_document_answer_quotes_the_passage_with_page_and_chunk():
    answer = Answer(type="doc", answer="반품은 7일 이내 <b>가능</b>합니다.", score=0.85,
                    sources=({"source": "guide.pdf", "kind": "doc", "page": 3, "chunk_index": 2, "id": "doc-1"},))
    rendered = answer_html(answer)
    assert "<blockquote>반품은 7일 이내 &lt;b&gt;가능&lt;/b&gt;합니다.</blockquote>" in rendered
    assert "guide.pdf · 3쪽 · 조각 2" in rendered and "점수 0.850" in rendered


def test_a_reply_to_courtesy_has_no_ask_again_hint_but_a_failed_search_does():
    hello = answer_html(Answer(type="fallback", answer="안녕하세요! <무엇이든>", score=0.0))
    assert hello == "<p>안녕하세요! &lt;무엇이든&gt;</p>"
    hit = Hit.of("faq-1", "배송비는 얼마인가요?", {"kind": "faq", "faq_id": "ship"}, 0.41)
    missed = answer_html(Answer(type="fallback", answer="찾지 못했습니다.", score=0.41, hits=(hit,)))
    assert "다른 표현으로 다시 물어봐 주세요." in missed


def test_describe_source_names_file_page_and_chunk():
    assert describe_source({"source": "guide.pdf", "kind": "doc", "page": 3, "chunk_index": 2}) == "guide.pdf · 3쪽 · 조각 2"
    assert describe_source({"source": "faq.csv", "kind": "faq", "faq_id": "a", "category": "배송"}) == "faq.csv · FAQ a · 배송"


def test_catalog_has_categories_and_examples_round_robin():
    metas = [
        {"kind": "faq", "category": "배송", "main_question": "배송 1"},
        {"kind": "faq", "category": "배송", "main_question": "배송 1", "question": "변형"},
        {"kind": "faq", "category": "배송", "main_question": "배송 2"},
        {"kind": "faq", "category": "환불", "main_question": "환불 1"},
        {"kind": "doc", "source": "guide.md"},
    ]
    catalog = build_catalog(metas, n_examples=3)
    assert catalog.categories == ["배송", "환불"]
    assert catalog.examples == ["배송 1", "환불 1", "배송 2"]


# --- the real server: start-up, then 50 parallel questions -----------------------------------------
@pytest.fixture()
def live_server(settings):
    """create_app (page + API) under uvicorn on a free loopback port; the sample FAQ is ingested at start."""
    import uvicorn

    port = free_port()
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    statuses = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            got = httpx.get(f"{base}/api/health", timeout=2)
            statuses.append(got.status_code)
            if got.status_code == 200:
                break
            if got.json().get("status") == "error":
                pytest.fail(f"start-up failed: {got.json()}")
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    else:
        pytest.fail(f"server did not become healthy: {statuses[-5:]}")
    yield base, app, statuses
    server.should_exit = True
    thread.join(timeout=15)


@pytest.mark.app
def test_live_server_answers_50_parallel_questions(live_server, settings):
    base, app, statuses = live_server
    assert app.state.service.ready and statuses[-1] == 200
    assert httpx.get(base + "/", timeout=10).status_code == 200  # the chat page is mounted on the same server
    questions = [row[2] for row in FAQ] + ["오늘 서울 날씨 어때", "택배는 언제 도착해요?"]

    def call(i: int) -> tuple[int, float, dict]:
        started = time.perf_counter()
        got = httpx.post(f"{base}/api/ask", json={"question": questions[i % len(questions)]}, timeout=60)
        return got.status_code, time.perf_counter() - started, got.json()

    started = time.perf_counter()
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(call, range(50)))
    wall = time.perf_counter() - started
    assert [status for status, _, _ in results] == [200] * 50
    assert all(body["type"] == "faq" for _, _, body in results[:4])
    latencies = sorted(seconds for _, seconds, _ in results)
    p50 = statistics.median(latencies)
    p95 = latencies[int(round(0.95 * (len(latencies) - 1)))]
    print(f"\n50 parallel /api/ask: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
          f"max {latencies[-1] * 1000:.0f} ms, wall {wall:.2f} s")

    def feedback(i: int) -> int:
        body = {"question": f"질문 {i}", "rating": "up" if i % 2 else "down", "answer_id": f"id-{i}", "score": 0.5}
        return httpx.post(f"{base}/api/feedback", json=body, timeout=30).status_code

    with ThreadPoolExecutor(20) as pool:
        assert list(pool.map(feedback, range(20))) == [200] * 20
    entries = [json.loads(line) for line in settings.app.feedback_log.read_text(encoding="utf-8").splitlines()]
    assert sorted(e["answer_id"] for e in entries) == sorted(f"id-{i}" for i in range(20))


def test_uploads_are_sorted_into_faq_and_documents_by_extension():
    from chatbot.web.reports import split_by_kind

    kinds, unknown = split_by_kind([Path("a.csv"), Path("b.XLSX"), Path("guide.pdf"), Path("notes.md"), Path("x.exe")])
    assert kinds == {"faq": [Path("a.csv"), Path("b.XLSX")], "doc": [Path("guide.pdf"), Path("notes.md")]}
    assert unknown == [Path("x.exe")]


def test_questions_and_feedback_reach_the_question_log_linked(client):
    asked = ask(client, question="배송은 얼마나 걸리나요?").json()
    question_id = asked["question_id"]
    assert isinstance(question_id, str) and len(question_id) == 32
    got = client.post("/api/feedback", json={"question": "배송은 얼마나 걸리나요?", "rating": "down", "question_id": question_id})
    assert got.status_code == 200
    questions = client.app.state.service.questions
    questions.flush()
    rows = [r for r in questions.questions(since=datetime(2000, 1, 1, tzinfo=timezone.utc), limit=10) if r.id == question_id]
    assert rows and rows[0].channel == "api" and rows[0].outcome == "answer"
    assert [f.rating for f in questions.feedback_for(question_id)] == ["down"]
    bad = client.post("/api/feedback", json={"question": "q", "rating": "up", "question_id": "../../etc"})
    assert bad.status_code == 422


def test_chat_history_from_the_client_keeps_only_text():
    from chatbot.web.handlers import clean_history

    history = [
        {"role": "user", "content": [{"type": "text", "text": "배송"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "<p>답</p>"}], "options": [{"value": "x"}]},
        {"role": "user", "content": [{"type": "file", "file": {"path": "/etc/hostname"}}]},
        {"role": "system", "content": "ignore me"},
        "not a message",
        {"role": "user", "content": "평문"},
    ]
    assert clean_history(history) == [
        {"role": "user", "content": "배송"}, {"role": "assistant", "content": "<p>답</p>"}, {"role": "user", "content": "평문"},
    ]


def test_a_lone_clarify_candidate_is_topped_up_with_related_questions():
    from chatbot.web.render import follow_ups

    lone = Answer(type="clarify", answer="혹시 이 질문을 찾으셨나요?", score=0.9, p=0.35,
                  candidates=({"question": "배송 조회는 어떻게 하나요?", "faq_id": "ship-003", "p": 0.35},),
                  suggestions=("배송 조회는 어떻게 하나요?", "어느 택배사로 배송되나요?", "주말에도 배송되나요?", "넷째"))
    assert follow_ups(lone) == [
        ("배송 조회는 어떻게 하나요?", "ship-003"), ("어느 택배사로 배송되나요?", None), ("주말에도 배송되나요?", None),
    ]


def test_a_quoted_passage_offers_its_related_faqs_as_buttons_and_an_faq_answer_none():
    from chatbot.web.render import follow_ups

    passage = Answer(type="doc", answer="기본 배송비는 3,000원이며 …", score=0.9, p=0.82,
                     suggestions=("배송비는 얼마인가요?", "어느 택배사로 배송되나요?"))
    assert follow_ups(passage) == [("배송비는 얼마인가요?", None), ("어느 택배사로 배송되나요?", None)]
    faq = Answer(type="faq", answer="3,000원입니다.", score=0.95, p=0.9, faq_id="ship-001", suggestions=("배송 조회는 어떻게 하나요?",))
    assert follow_ups(faq) == []


def test_a_clarify_on_the_page_is_titled_with_the_configured_text_escaped():
    """answer.clarify is what the API's `answer` says; the page shows the same words, not a constant of its own."""
    candidates = ({"question": "배송비는 얼마인가요?", "faq_id": "ship-001", "p": 0.5},)
    rendered = answer_html(Answer(type="clarify", answer="이 질문을 찾으시나요? <b>", score=0.9, p=0.5, candidates=candidates))
    assert "<p><b>이 질문을 찾으시나요? &lt;b&gt;</b></p>" in rendered
