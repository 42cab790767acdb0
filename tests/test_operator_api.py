"""/api/operator/*: refused without the token (401), off without a configured token (403), and each endpoint works."""
from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from chatbot.pipeline import open_pipeline
from chatbot.questionlog import QuestionEntry
from chatbot.web.api import build_api
from chatbot.web.operator_api import include_operator_api
from chatbot.web.service import Service
from tests.helpers import write_faq

TOKEN = "운영-토큰-1234".encode().hex()
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UNKNOWN = "주차장 이용 요금이 궁금합니다"
ENDPOINTS = [
    ("GET", "/api/operator/inbox", None),
    ("POST", "/api/operator/inbox/alternative", {"question_ids": ["x"], "faq_id": "ship-1"}),
    ("POST", "/api/operator/inbox/out-of-scope", {"question_ids": ["x"]}),
    ("POST", "/api/operator/inbox/label", {"question_ids": ["x"], "faq_id": "ship-1"}),
    ("GET", "/api/operator/out-of-scope", None),
    ("GET", "/api/operator/faqs", None),
    ("POST", "/api/operator/faqs", {"question": "질문", "answer": "답"}),
    ("GET", "/api/operator/faqs/ship-1", None),
    ("PUT", "/api/operator/faqs/ship-1", {"answer": "답"}),
    ("DELETE", "/api/operator/faqs/ship-1", None),
    ("GET", "/api/operator/audit", None),
    ("POST", "/api/operator/sync", None),
    ("GET", "/api/operator/export", None),
    ("GET", "/api/operator/analytics", None),
]


def make_client(make_settings, tmp_path, token: str | None) -> tuple[TestClient, Service]:
    settings = make_settings(app={"operator_token": token}, operator={"score_margin": 0.0})  # tiny model: threshold 0.99
    service = Service(settings, open_pipeline(settings, claim=False))
    service.ingest("faq", [write_faq(tmp_path / "faq.csv")])
    app = build_api(service)
    include_operator_api(app, service)
    return TestClient(app), service


@pytest.fixture()
def client(make_settings, tmp_path):
    client, service = make_client(make_settings, tmp_path, TOKEN)
    with client:
        yield client, service
    service.questions.close()
    service.pipeline.store.close()


@pytest.mark.parametrize("method,path,body", ENDPOINTS)
def test_every_endpoint_refuses_without_the_right_token(client, method, path, body):
    http, _ = client
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = http.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (path, headers, response.text)
        assert "token" in response.json()["detail"]


def test_every_endpoint_is_off_without_a_configured_token(make_settings, tmp_path):
    http, service = make_client(make_settings, tmp_path, None)
    for method, path, body in ENDPOINTS:
        response = http.request(method, path, json=body, headers=AUTH)
        assert response.status_code == 403, path
    service.questions.close()
    service.pipeline.store.close()


def test_unknown_api_paths_still_answer_404(client):
    http, _ = client
    assert http.get("/api/nothing-here").status_code == 404
    assert http.get("/api/health").status_code == 200


def test_the_loop_over_http(client):
    http, service = client
    asked = http.post("/api/ask", json={"question": UNKNOWN}).json()
    assert asked["type"] == "fallback"
    service.questions.flush()
    clusters = http.get("/api/operator/inbox?since=1d", headers=AUTH).json()["clusters"]
    cluster = next(c for c in clusters if UNKNOWN in c["examples"])
    assert asked["question_id"] in cluster["question_ids"] and cluster["nearest"]["faq_id"]
    item = http.post("/api/operator/inbox/alternative", headers=AUTH,
                     json={"question_ids": cluster["question_ids"], "faq_id": "coupon-1", "who": "kim"}).json()
    assert UNKNOWN in item["alternatives"] and item["override_of"] == "faq.csv"
    again = http.post("/api/ask", json={"question": UNKNOWN}).json()
    assert again["type"] == "faq" and again["faq_id"] == "coupon-1"
    service.questions.flush()
    left = http.get("/api/operator/inbox", headers=AUTH).json()["clusters"]
    assert all(UNKNOWN not in c["examples"] for c in left), left
    export = http.get("/api/operator/export?format=csv", headers=AUTH)
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert UNKNOWN in next(r for r in rows if r["id"] == "coupon-1")["alternatives"].split("|")
    assert http.get("/api/operator/export?format=xlsx", headers=AUTH).content[:2] == b"PK"
    audit = http.get("/api/operator/audit?faq_id=coupon-1", headers=AUTH).json()["audit"]
    assert audit[0]["who"] == "kim" and audit[0]["action"] == "add_alternatives"


def test_faq_endpoints_and_errors(client):
    http, service = client
    created = http.post("/api/operator/faqs", headers=AUTH, json={"question": "주차는 무료인가요?", "answer": "2시간 무료입니다."}).json()
    assert http.get(f"/api/operator/faqs/{created['faq_id']}", headers=AUTH).json()["answer"] == "2시간 무료입니다."
    assert [f["faq_id"] for f in http.get("/api/operator/faqs?q=주차", headers=AUTH).json()["faqs"]] == [created["faq_id"]]
    edited = http.put(f"/api/operator/faqs/{created['faq_id']}", headers=AUTH, json={"alternatives": ["주차 요금"]}).json()
    assert edited["alternatives"] == ["주차 요금"]
    assert http.delete(f"/api/operator/faqs/{created['faq_id']}", headers=AUTH).status_code == 200
    assert http.get("/api/operator/faqs/none", headers=AUTH).status_code == 404
    assert http.delete("/api/operator/faqs/ship-1", headers=AUTH).status_code == 400  # a file's FAQ: edit the file
    assert http.post("/api/operator/inbox/out-of-scope", headers=AUTH, json={"question_ids": ["nope"]}).status_code == 400
    assert http.get("/api/operator/inbox?since=yesterday", headers=AUTH).status_code == 400
    assert http.post("/api/operator/faqs", headers=AUTH, json={"question": "q"}).status_code == 422
    service.questions.record(QuestionEntry(UNKNOWN, outcome="fallback", latency_ms=12.0))
    service.questions.flush()
    qid = http.get("/api/operator/inbox", headers=AUTH).json()["clusters"][0]["question_ids"]
    assert http.post("/api/operator/inbox/out-of-scope", headers=AUTH, json={"question_ids": qid}).json() == {"labelled": 1}
    assert http.get("/api/operator/out-of-scope", headers=AUTH).json() == {"questions": [UNKNOWN]}
    stats = http.get("/api/operator/analytics?since=7d", headers=AUTH).json()
    assert stats["total"] >= 1 and stats["latency_p50_ms"] == 12.0
    assert "records" in http.post("/api/operator/sync", headers=AUTH).json()["detail"]
