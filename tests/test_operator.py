"""The operator loop without a server: inbox clusters, add-alternative, edits that last, export round trip."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from chatbot.operator import OperatorActionError, desk_of, list_out_of_scope
from chatbot.operator.clustering import cluster_vectors
from chatbot.operator.export import to_csv, to_xlsx
from chatbot.pipeline import open_pipeline
from chatbot.questionlog import FeedbackEntry, QuestionEntry
from chatbot.records import OPERATOR_SOURCE
from chatbot.web.service import Service
from ingest.sync import ingest_paths
from tests.helpers import FAQ_ROWS, write_faq
from tests.postgres import postgres_server, postgres_url  # noqa: F401 - fixtures

UNKNOWN = "주차장 이용 요금이 궁금합니다"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def service(request, make_settings, tmp_path):
    """The operator desk over the question log in SQLite, and in a real PostgreSQL (edits, labels, audit)."""
    log = {"url": request.getfixturevalue("postgres_url")} if request.param == "postgres" else {}
    settings = make_settings(log=log) if log else make_settings()
    service = Service(settings, open_pipeline(settings, claim=False))
    service.ingest("faq", [write_faq(tmp_path / "faq.csv")])
    yield service
    service.questions.close()
    service.pipeline.store.close()


def since() -> datetime:
    return datetime.now(timezone.utc) - timedelta(days=1)


def log_question(service, text: str, outcome: str = "fallback", p: float | None = None) -> str:
    qid = service.questions.record(QuestionEntry(text, outcome=outcome, p=p, top=[("ship-1", 0.5)]))
    service.questions.flush()
    return qid


def test_clusters_join_near_vectors_and_split_far_ones():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 32))
    vectors = np.repeat(centres, 4, axis=0) + rng.normal(scale=0.01, size=(12, 32))
    labels = cluster_vectors(vectors, distance=0.1)
    assert labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    # the two-stage path (sample smaller than the input) gives the same grouping
    assert cluster_vectors(vectors, distance=0.1, sample=5).tolist() == labels.tolist()


def test_inbox_holds_fallback_low_and_downvoted_questions_not_good_answers(service):
    fallback = log_question(service, UNKNOWN)
    low = log_question(service, "배송 언제 와요", outcome="answer", p=0.2)
    good = log_question(service, "배송은 얼마나 걸리나요?", outcome="answer", p=0.99)
    down = log_question(service, "환불 언제 돼요", outcome="answer", p=0.95)
    asked_nothing = [log_question(service, text) for text in ("안녕하세요~", "감사합니다 ㅎㅎ", "🙏🙏")]  # a word back, nothing to fix
    service.questions.record_feedback(FeedbackEntry(kind="rating", question_id=down, rating="down"))
    service.questions.flush()
    clusters = desk_of(service).inbox(since())
    ids = {qid for cluster in clusters for qid in cluster.question_ids}
    assert ids == {fallback, low, down} and not ids & set(asked_nothing)
    assert good not in ids
    assert all(c.nearest is not None for c in clusters)


def test_add_alternative_answers_the_question_and_survives_reingest(service, tmp_path):
    qid = log_question(service, UNKNOWN)
    desk = desk_of(service)
    assert service.require().answerer.ask(UNKNOWN).type == "fallback"
    item = desk.add_alternatives([qid], "coupon-1", who="kim")
    assert UNKNOWN in item.alternatives and item.override_of == "faq.csv" and item.edited
    answer = service.require().answerer.ask(UNKNOWN)
    assert answer.type == "faq" and answer.faq_id == "coupon-1"
    assert qid not in {q for c in desk.inbox(since()) for q in c.question_ids}
    # the original spreadsheet re-ingested: the edit is still there, and search shows one coupon-1
    service.ingest("faq", [write_faq(tmp_path / "faq.csv")])
    assert service.require().answerer.ask(UNKNOWN).faq_id == "coupon-1"
    hits = service.require().retriever.search("쿠폰은 어디에서 입력하나요?", k=10)
    assert [h.metadata["source"] for h in hits if h.answer_id == "coupon-1"] == [OPERATOR_SOURCE]
    audit = desk.audit("coupon-1")
    assert audit[0]["who"] == "kim" and audit[0]["before"]["alternatives"] == [] and UNKNOWN in audit[0]["after"]["alternatives"]


def test_edits_survive_a_rebuild_and_come_back_after_a_store_loss(service, tmp_path):
    from chatbot.operator.desk import restore_operator_source

    desk = desk_of(service)
    desk.add_alternatives([log_question(service, UNKNOWN)], "coupon-1", who="kim")
    settings, store = service.settings, service.require().store
    report = ingest_paths(settings, "faq", [write_faq(tmp_path / "faq.csv")], rebuild=True,
                          encoder=service.require().encoder, store=store)
    assert OPERATOR_SOURCE not in report.sources  # a rebuild of the files never prunes the operator's source
    assert next(iter(store.iter_metadata({"source": OPERATOR_SOURCE})), None) is not None
    assert restore_operator_source(service) is False  # nothing missing
    store.delete([i for i, _ in store.iter_metadata({"source": OPERATOR_SOURCE})])  # as after a new collection
    service.require().retriever.refresh()
    assert restore_operator_source(service) is True
    assert service.require().answerer.ask(UNKNOWN).faq_id == "coupon-1"


def test_new_faq_edit_and_delete(service):
    desk = desk_of(service)
    qid = log_question(service, UNKNOWN)
    item = desk.new_faq("주차는 무료인가요?", "2시간 무료입니다.", "매장", question_ids=[qid], who="lee")
    assert item.faq_id.startswith("op-") and UNKNOWN in item.alternatives
    assert service.require().answerer.ask("주차는 무료인가요?").faq_id == item.faq_id
    edited = desk.edit_faq(item.faq_id, "lee", answer="3시간 무료입니다.")
    assert service.require().answerer.ask("주차는 무료인가요?").answer == "3시간 무료입니다."
    assert edited.alternatives == item.alternatives
    assert "삭제" in desk.delete_faq(item.faq_id, "lee")
    assert service.require().answerer.ask("주차는 무료인가요?").type == "fallback"
    assert not list(service.require().store.iter_metadata({"source": OPERATOR_SOURCE}))
    with pytest.raises(OperatorActionError):
        desk.delete_faq("ship-1")  # a file's FAQ is deleted in its file


def test_override_edit_then_delete_reverts_to_the_file(service):
    desk = desk_of(service)
    desk.edit_faq("ship-1", answer="내일 도착합니다.", category="배송2")
    assert service.require().answerer.ask("배송은 얼마나 걸리나요?").answer == "내일 도착합니다."
    assert "되돌렸" in desk.delete_faq("ship-1")
    assert service.require().answerer.ask("배송은 얼마나 걸리나요?").answer == FAQ_ROWS[0][3]


def test_not_for_us_and_right_answer_label_and_leave_the_inbox(service):
    desk = desk_of(service)
    a, b = log_question(service, UNKNOWN), log_question(service, "환불 받을래요", outcome="clarify")
    assert desk.not_for_us([a]) == 1
    assert desk.right_answer([b], "refund-1") == 1
    assert list_out_of_scope(desk.engine) == [UNKNOWN]
    assert desk.inbox(since()) == []
    with pytest.raises(OperatorActionError):
        desk.right_answer([b], "no-such-faq")


def test_export_round_trips_through_ingestion(service, make_settings, tmp_path):
    desk = desk_of(service)
    desk.add_alternatives([log_question(service, UNKNOWN)], "coupon-1")
    desk.new_faq("주차는 무료인가요?", "2시간 무료입니다.")
    items = desk.items()
    data = to_csv(items)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert {r["id"] for r in rows} == {i.faq_id for i in items}
    assert UNKNOWN in next(r for r in rows if r["id"] == "coupon-1")["alternatives"].split("|")
    for name, payload in (("kb.csv", data), ("kb.xlsx", to_xlsx(items))):
        path = tmp_path / name
        path.write_bytes(payload)
        other = make_settings(store={"path": str(tmp_path / f"empty-{name}"), "cache_dir": str(tmp_path / f"c-{name}")})
        pipeline = open_pipeline(other, claim=False)
        ingest_paths(other, "faq", [path], encoder=pipeline.encoder, store=pipeline.store)
        from chatbot.operator.knowledge import items_from_metadata

        again = items_from_metadata(m for _, m in pipeline.store.iter_metadata({"kind": "faq"}))
        key = lambda i: (i.faq_id, i.question, i.answer, i.category, i.alternatives)  # noqa: E731
        assert sorted(map(key, again)) == sorted(map(key, items))
        pipeline.store.close()


def test_the_decision_model_reads_the_operators_labels(make_settings, tmp_path):
    settings = make_settings(answer={"decision_model": True})
    service = Service(settings, open_pipeline(settings, claim=False))
    try:
        service.ingest("faq", [write_faq(tmp_path / "faq.csv")])
        desk = desk_of(service)
        provider = service.pipeline.answerer.decision
        before = provider.fingerprint()
        assert desk.not_for_us([log_question(service, UNKNOWN)]) == 1
        assert desk.right_answer([log_question(service, "환불 받을래요", outcome="clarify")], "refund-1") == 1
        assert sorted(provider.labels(fresh=True)) == sorted([(UNKNOWN, ""), ("환불 받을래요", "refund-1")])
        assert provider.fingerprint() != before  # the next check rebuilds the model with them
    finally:
        service.questions.close()
        service.pipeline.store.close()
