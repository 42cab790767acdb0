"""The question log on SQLite and on a real PostgreSQL server: masking, writes, links, import, purge, migrations."""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator

import pytest
from sqlalchemy import Connection, Engine, func, select, text

from chatbot.questionlog import FeedbackEntry, Masker, QuestionEntry, QuestionLog, open_log
from chatbot.questionlog.__main__ import main as cli
from chatbot.questionlog.db import open_engine
from chatbot.questionlog.masking import masker_from_settings
from chatbot.questionlog.schema import MIGRATIONS, current_version, feedback, imports, migrate, questions
from chatbot.settings import load_settings
from tests.postgres import postgres_server, postgres_url  # noqa: F401 - fixtures

EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


# -- masking ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, token",
    [
        ("제 번호는 010-1234-5678 입니다", "[전화번호]"),
        ("01012345678로 연락 주세요", "[전화번호]"),
        ("010 1234 5678", "[전화번호]"),
        ("+82 10-1234-5678", "[전화번호]"),
        ("사무실 02-123-4567", "[전화번호]"),
        ("031-1234-5678로 전화", "[전화번호]"),
        ("메일은 hong.gil-dong+faq@example.co.kr 입니다", "[이메일]"),
        ("주민번호 900101-1234567 맞나요", "[주민등록번호]"),
        ("9001011234567", "[주민등록번호]"),
        ("카드 1234-5678-9012-3456 결제", "[카드번호]"),
        ("카드 1234 5678 9012 3456", "[카드번호]"),
        ("4111111111111111 승인 안돼요", "[카드번호]"),
        ("아멕스 3782-822463-10005", "[카드번호]"),
        ("계좌 110-123-456789 로 입금", "[계좌번호]"),
        ("국민 123456-01-123456", "[계좌번호]"),
        ("1002-123-456789 환불", "[계좌번호]"),
    ],
)
def test_masks_personal_data(text: str, token: str) -> None:
    masked = Masker()(text)
    assert token in masked
    assert not any(ch.isdigit() for ch in masked.replace(token, "")) or token == "[이메일]"


@pytest.mark.parametrize(
    "text",
    [
        "배송비 3,000원인가요?",
        "가격이 15000원이에요",
        "1,234,567원 결제했어요",
        "주문번호 20240315123 조회",  # 11 digits: shorter than a card number
        "주문번호 A-12345-678",
        "2024-03-15에 주문했어요",
        "2024.03.15 배송",
        "24-03-15 14:30 도착",
        "고객센터 1588-1234 운영시간",
        "3-4일 걸려요",
        "사이즈 230-240",
        "버전 1.2.3",
    ],
)
def test_leaves_ordinary_numbers_alone(text: str) -> None:
    assert Masker()(text) == text


def test_masking_is_configurable() -> None:
    text = "010-1234-5678 / a@b.com / 사번 EMP-0042"
    assert masker_from_settings(False, ["phone"], {})(text) == text
    only_mail = Masker(["email"])(text)
    assert "010-1234-5678" in only_mail and "[이메일]" in only_mail
    assert Masker(extra={"사번": r"EMP-\d+"})(text) == "[전화번호] / [이메일] / 사번 [사번]"
    with pytest.raises(ValueError):
        Masker(["passport"])


# -- backends --------------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'questions.db'}"


@pytest.fixture()
def engine(db_url: str) -> Iterator[Engine]:
    engine = open_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture()
def make_log(engine: Engine) -> Iterator[Callable[..., QuestionLog]]:
    """QuestionLogs on the test's (migrated) database; closed at teardown."""
    migrate(engine)
    made: list[QuestionLog] = []

    def factory(**kwargs) -> QuestionLog:
        kwargs.setdefault("interval_s", 0.02)
        made.append(QuestionLog(open_engine(str(engine.url.render_as_string(hide_password=False))), **kwargs))
        return made[-1]

    yield factory
    for qlog in made:
        qlog.close()


def _count(engine: Engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_record_flush_and_read_back(make_log) -> None:
    qlog = make_log()
    asked = datetime.now(timezone.utc)
    qid = qlog.record(
        QuestionEntry(
            "환불 계좌 110-123-456789 로 해주세요",
            outcome="answer",
            channel="api",
            normalised="환불 계좌 110-123-456789로 해 주세요",
            mode="hybrid",
            top=[("faq-1", 0.93), ("faq-2", 0.81), ("doc-3", 0.7), ("faq-4", 0.5)],
            latency_ms=12.5,
            category="결제",
            session="s1",
            time=asked,
        )
    )
    qlog.record(QuestionEntry("안녕", outcome="fallback", channel="terminal", p=0.2))
    assert len(qid) == 32
    qlog.flush()
    rows = qlog.questions(EPOCH)
    assert [r.outcome for r in rows] == ["fallback", "answer"]  # newest first
    row = rows[1]
    assert row.id == qid
    assert row.question == "환불 계좌 [계좌번호] 로 해주세요" and row.normalised == "환불 계좌 [계좌번호]로 해 주세요"
    assert row.top == (("faq-1", 0.93), ("faq-2", 0.81), ("doc-3", 0.7))
    assert (row.mode, row.channel, row.category, row.session, row.latency_ms, row.p) == ("hybrid", "api", "결제", "s1", 12.5, None)
    assert row.time == asked and row.time.tzinfo is not None
    assert rows[0].p == 0.2
    assert [r.id for r in qlog.questions(EPOCH, outcomes=["answer", "passage"])] == [qid]
    assert len(qlog.questions(EPOCH, limit=1)) == 1
    assert qlog.questions(datetime.now(timezone.utc) + timedelta(seconds=1)) == []


def test_feedback_links_to_its_question(make_log, engine: Engine) -> None:
    qlog = make_log()
    qid = qlog.record(QuestionEntry("배송 언제 와요?", outcome="clarify"))
    qlog.record_feedback(FeedbackEntry("clarify", question_id=qid, target_id="faq-7"))  # same batch as its question
    qlog.flush()
    qlog.record_feedback(FeedbackEntry("rating", question_id=qid, rating="up", target_id="faq-7", score=0.9))
    qlog.record_feedback(FeedbackEntry("suggestion", question_id="0" * 32, target_id="faq-1"))  # unknown question
    qlog.flush()
    linked = qlog.feedback_for(qid)
    assert [(f.kind, f.target_id, f.rating) for f in linked] == [("clarify", "faq-7", None), ("rating", "faq-7", "up")]
    assert linked[1].score == 0.9 and linked[1].source == "live"
    with engine.connect() as conn:
        assert conn.execute(select(feedback.c.question_id).where(feedback.c.kind == "suggestion")).scalar_one() is None
    stats = qlog.stats(EPOCH)
    assert stats.total == 1 and stats.per_outcome == {"clarify": 1} and stats.ratings == {"up": 1}


def test_feedback_waits_for_a_question_another_replica_has_not_written(make_log) -> None:
    """Replica A answered; the 👍 reached replica B before A's batch was flushed."""
    replica_a = make_log(start=False)
    replica_b = make_log(link_wait_s=30)
    qid = replica_a.record(QuestionEntry("포인트 적립", outcome="answer"))
    replica_b.record_feedback(FeedbackEntry("rating", question_id=qid, rating="down"))
    time.sleep(0.2)  # B's writer has run several times and kept the feedback back
    assert replica_b.feedback_for(qid) == []
    replica_a.flush()
    deadline = time.monotonic() + 10
    while not replica_b.feedback_for(qid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [f.rating for f in replica_b.feedback_for(qid)] == ["down"]


def test_concurrent_records_lose_nothing(make_log, engine: Engine) -> None:
    qlog = make_log(batch_size=50)
    ids: list[list[str]] = [[] for _ in range(8)]

    def ask(n: int) -> None:
        for i in range(250):
            ids[n].append(qlog.record(QuestionEntry(f"질문 {n}-{i}", outcome="answer", session=str(n))))

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    qlog.flush()
    all_ids = {i for chunk in ids for i in chunk}
    assert len(all_ids) == 2000 and qlog.dropped == 0 and qlog.failed == 0
    with engine.connect() as conn:
        assert set(conn.execute(select(questions.c.id)).scalars()) == all_ids


def test_full_queue_drops_with_a_warning(make_log, engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    qlog = make_log(queue_size=2, start=False)
    with caplog.at_level(logging.WARNING, logger="chatbot.questionlog.writer"):
        ids = [qlog.record(QuestionEntry(f"q{i}", outcome="answer")) for i in range(3)]
    assert len(set(ids)) == 3 and qlog.dropped == 1
    assert "queue is full" in caplog.text
    qlog.flush()
    assert _count(engine, questions) == 2


def test_record_is_cheap(make_log) -> None:
    qlog = make_log(queue_size=5000, start=False)
    entry = QuestionEntry("반품은 어떻게 하나요?", outcome="answer", top=[("a", 0.9)])
    timings = []
    for _ in range(2000):
        start = time.perf_counter()
        qlog.record(entry)
        timings.append(time.perf_counter() - start)
    assert sorted(timings)[len(timings) // 2] < 0.001


# -- import, retention, migrations ---------------------------------------------------------------

def test_feedback_jsonl_is_imported_once(db_url: str, tmp_path: Path) -> None:
    lines = [
        {"question": "배송비는?", "rating": "up", "answer_id": "faq-1", "answer_type": "faq", "score": 0.91,
         "mode": "hybrid", "channel": "web", "time": "2025-01-02T03:04:05+00:00"},
        {"question": "연락처 010-9876-5432\u2028줄바꿈", "rating": "down", "answer_id": None, "answer_type": "fallback",
         "score": None, "mode": "hybrid", "channel": "api", "time": "2025-01-03T00:00:00+09:00"},
    ]
    content = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    content += "\n{not json\n\n[1, 2]\n" + json.dumps({"question": "x", "rating": "meh", "time": "2025-01-01"}) + "\n"
    path = tmp_path / "feedback.jsonl"
    path.write_text(content, encoding="utf-8")
    settings = load_settings(log={"url": db_url}, app={"feedback_log": str(path)})

    for _ in range(2):
        qlog = open_log(settings)
        assert qlog is not None
        with qlog.engine.connect() as conn:
            rows = conn.execute(select(feedback).order_by(feedback.c.time)).mappings().all()
            record = conn.execute(select(imports)).mappings().one()
        qlog.close()
        assert len(rows) == 2 and (record["imported"], record["skipped"]) == (2, 3)
    assert rows[0]["question"] == "배송비는?" and rows[0]["target_id"] == "faq-1" and rows[0]["score"] == 0.91
    assert rows[1]["question"] == "연락처 [전화번호]\u2028줄바꿈"
    assert rows[1]["time"] == datetime(2025, 1, 2, 15, 0, tzinfo=timezone.utc)
    assert {r["source"] for r in rows} == {"import"} and rows[1]["channel"] == "api" and rows[1]["question_id"] is None


def test_purge_deletes_old_rows(make_log, engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    qlog = make_log(retention_days=180)
    now = datetime.now(timezone.utc)
    old = qlog.record(QuestionEntry("old", outcome="answer", time=now - timedelta(days=200)))
    recent = qlog.record(QuestionEntry("recent", outcome="answer", time=now - timedelta(days=10)))
    qlog.record_feedback(FeedbackEntry("rating", question_id=old, rating="up", time=now - timedelta(days=200)))
    late = qlog.record_feedback(FeedbackEntry("rating", question_id=old, rating="down", time=now - timedelta(days=5)))
    qlog.flush()
    result = qlog.purge()
    assert (result.questions, result.feedback) == (1, 1)
    assert [r.id for r in qlog.questions(EPOCH)] == [recent]
    with engine.connect() as conn:
        assert conn.execute(select(feedback.c.id, feedback.c.question_id)).all() == [(late, None)]

    monkeypatch.setenv("FAQBOT_LOG__URL", db_url)
    assert cli(["purge", "--days", "1"]) == 0
    assert "deleted 1 questions and 1 feedback" in capsys.readouterr().out
    assert qlog.questions(EPOCH) == []


def _make_table(name: str) -> Callable[[Connection], None]:
    def migration(conn: Connection) -> None:
        conn.execute(text(f"CREATE TABLE {name} (x INTEGER)"))

    migration.__name__ = f"create_{name}"
    return migration


def test_migrations_apply_in_order_once(engine: Engine) -> None:
    first = (_make_table("m_one"),)
    assert migrate(engine, first) == [1]
    assert migrate(engine, first) == []  # re-opening is a no-op (re-running would fail: the table exists)
    assert migrate(engine, first + (_make_table("m_two"), _make_table("m_three"))) == [2, 3]
    with engine.connect() as conn:
        assert current_version(conn) == 3
        assert conn.execute(text("SELECT count(*) FROM m_three")).scalar_one() == 0
    with pytest.raises(RuntimeError, match="version 3"):
        migrate(engine, first)


def test_real_schema_migrates_once(engine: Engine) -> None:
    assert migrate(engine) == list(range(1, len(MIGRATIONS) + 1))
    assert migrate(engine) == []


def test_relative_sqlite_path_resolves_against_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = open_engine(load_settings().log.url)
    migrate(engine)
    engine.dispose()
    assert (tmp_path / "var" / "questions.db").is_file()
    with pytest.raises(ValueError):
        open_engine("sqlite://")


def test_disabled_log_is_none(tmp_path: Path) -> None:
    assert open_log(load_settings(log={"enabled": False, "url": f"sqlite:///{tmp_path}/q.db"})) is None


def test_stats_count_per_outcome_and_utc_day(make_log) -> None:
    qlog = make_log()
    day1 = datetime(2025, 3, 1, 23, 30, tzinfo=timezone.utc)
    kst_next_morning = datetime(2025, 3, 2, 8, 0, tzinfo=timezone(timedelta(hours=9)))  # still 1 March in UTC
    for when, outcome in [(day1, "answer"), (kst_next_morning, "fallback"), (day1 + timedelta(days=1), "answer")]:
        qlog.record(QuestionEntry("q", outcome=outcome, time=when))
    qlog.flush()
    stats = qlog.stats(datetime(2025, 3, 1, tzinfo=timezone.utc))
    assert stats.total == 3 and stats.per_outcome == {"answer": 2, "fallback": 1}
    assert stats.per_day == {"2025-03-01": {"answer": 1, "fallback": 1}, "2025-03-02": {"answer": 1}}
    assert qlog.stats(datetime(2025, 3, 2, tzinfo=timezone.utc)).total == 1


def test_entry_from_answer_maps_outcome_top_and_p() -> None:
    from chatbot.questionlog import entry_from_answer
    from chatbot.records import Answer, Hit

    hits = tuple(
        Hit(f"r{i}", "t", "faq", score, {"faq_id": faq})
        for i, (faq, score) in enumerate([("7", 0.95), ("7", 0.9), ("3", 0.8), ("5", 0.7), ("9", 0.6)])
    )
    answer = Answer(type="faq", answer="a", score=0.95, hits=hits, p=0.88)
    entry = entry_from_answer("질문", answer, channel="api", mode="hybrid", latency_ms=3.0, session="s")
    assert (entry.outcome, entry.channel, entry.p, entry.session) == ("answer", "api", 0.88, "s")
    assert list(entry.top) == [("7", 0.95), ("3", 0.8), ("5", 0.7)]
    assert entry_from_answer("q", Answer(type="doc", answer="a", score=0.1), channel="web").outcome == "passage"


def test_ids_are_distinct_random_hex_across_reads():
    from chatbot.questionlog.writer import _RandomIds

    ids = _RandomIds(per_read=4)
    made = [ids() for _ in range(50)]  # 13 reads of the random source
    assert len(set(made)) == 50 and all(len(i) == 32 and int(i, 16) >= 0 for i in made)
