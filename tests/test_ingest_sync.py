"""Idempotent sync into a real embedded Chroma with the tiny model: counts, dry run, rebuild, bad
re-uploads, every document format, the CLI, and a real SIGKILL in the middle of an ingestion."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from chatbot.encoder import load_encoder
from chatbot.settings import PROJECT_ROOT
from chatbot.store import EncoderMismatchError, Store
from ingest.cli import main as cli_main
from ingest.faq_readers import read_faq
from ingest.records import faq_records
from ingest.sync import ingest_paths, sync_source
from tests.test_ingest_readers import write_docx, write_hwpx, write_pdf

HEADER = "id,category,question,answer,alternatives"
ROWS = {
    "d-1": "d-1,배송,배송은 얼마나 걸리나요?,주문 후 2~3일 안에 도착합니다.,배송 기간|언제 도착하나요?",
    "d-2": "d-2,환불,환불은 어떻게 받나요?,반품이 확인되면 3영업일 안에 환불됩니다.,환불 방법",
    "d-3": "d-3,회원,비밀번호를 잊어버렸어요,로그인 화면에서 비밀번호 찾기를 누르세요.,",
    "d-4": "d-4,결제,쿠폰은 어디에서 입력하나요?,결제 화면에서 쿠폰 코드를 입력합니다.,쿠폰 사용법|할인 코드 입력",
}
RECORDS = 3 + 2 + 1 + 3  # question variants of the four rows


def write_faq(path: Path, rows: dict[str, str] | None = None, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join([HEADER, *(rows or ROWS).values()]) + "\n").encode(encoding))
    return path


def open_store(settings) -> Store:
    return Store(settings.store, load_encoder(settings.encoder).identity())


def stored(settings, where=None) -> dict[str, dict]:
    return dict(open_store(settings).iter_metadata(where))


def counts(report, source: str) -> tuple[int, ...]:
    c = report.sources[source]
    return c.added, c.updated, c.unchanged, c.removed, c.rejected


@pytest.fixture()
def settings(make_settings):
    return make_settings(ingest={"batch_size": 4})


# ------------------------------------------------------------------------------------------------
# FAQ sync
# ------------------------------------------------------------------------------------------------
def test_ingest_then_reingest_is_a_noop(settings, tmp_path):
    path = write_faq(tmp_path / "faq.csv")
    first = ingest_paths(settings, "faq", [path])
    assert counts(first, "faq.csv") == (4, 0, 0, 0, 0)
    assert first.totals()["written"] == RECORDS and first.store_count == RECORDS and first.ok
    store = open_store(settings)
    assert store.info().get("last_ingest")
    metas = stored(settings, {"faq_id": "d-1"})
    assert sorted((m["variant"], m["question"]) for m in metas.values()) == [
        (0, "배송은 얼마나 걸리나요?"), (1, "배송 기간"), (2, "언제 도착하나요?"),
    ]
    assert all(m["main_question"] == "배송은 얼마나 걸리나요?" and m["category"] == "배송" and m["source"] == "faq.csv"
               and m["kind"] == "faq" and m["line"] == 2 for m in metas.values())
    fingerprint = store.fingerprint()

    elsewhere = write_faq(tmp_path / "other-folder" / "faq.csv")  # same file name: same source
    again = ingest_paths(settings, "faq", [elsewhere])
    assert counts(again, "faq.csv") == (0, 0, 4, 0, 0)
    assert again.totals()["written"] == 0 and again.totals()["deleted"] == 0
    assert open_store(settings).fingerprint() == fingerprint


def test_questions_are_encoded_as_questions(settings, tmp_path):
    ingest_paths(settings, "faq", [write_faq(tmp_path / "faq.csv")])
    store = open_store(settings)
    records = store.hits([i for i, _ in store.iter_metadata({"faq_id": "d-2"})])
    vectors = store.vectors(list(records))
    expected = load_encoder(settings.encoder).encode_questions([h.text for h in records.values()])
    assert np.allclose(np.stack([vectors[i] for i in records]), expected, atol=1e-5)


def test_edit_one_answer_updates_one_faq(settings, tmp_path):
    path = write_faq(tmp_path / "faq.csv")
    ingest_paths(settings, "faq", [path])
    before = stored(settings)
    write_faq(path, {**ROWS, "d-2": ROWS["d-2"].replace("3영업일", "5영업일")})
    report = ingest_paths(settings, "faq", [path])
    assert counts(report, "faq.csv") == (0, 1, 3, 0, 0)
    assert report.totals()["written"] == 2 and report.totals()["deleted"] == 2  # d-2 has two variants
    after = stored(settings)
    assert len(after) == RECORDS
    assert {m["answer"] for m in after.values() if m["faq_id"] == "d-2"} == {"반품이 확인되면 5영업일 안에 환불됩니다."}
    assert {i for i, m in before.items() if m["faq_id"] != "d-2"} <= set(after)  # untouched FAQs kept their records


def test_remove_and_add_rows(settings, tmp_path):
    path = write_faq(tmp_path / "faq.csv")
    ingest_paths(settings, "faq", [path])
    rows = {k: v for k, v in ROWS.items() if k != "d-4"}
    rows["d-5"] = "d-5,교환,교환은 언제까지 되나요?,수령 후 7일 이내에 가능합니다.,"
    report = ingest_paths(settings, "faq", [write_faq(path, rows)])
    assert counts(report, "faq.csv") == (1, 0, 3, 1, 0)
    after = stored(settings)
    assert not [m for m in after.values() if m["faq_id"] == "d-4"]
    assert len(after) == RECORDS - 3 + 1


def test_alternative_change_rewrites_only_that_faq(settings, tmp_path):
    path = write_faq(tmp_path / "faq.csv")
    ingest_paths(settings, "faq", [path])
    report = ingest_paths(settings, "faq", [write_faq(path, {**ROWS, "d-1": ROWS["d-1"].replace("|언제 도착하나요?", "")})])
    assert counts(report, "faq.csv") == (0, 1, 3, 0, 0)
    assert report.totals()["written"] == 0 and report.totals()["deleted"] == 1  # main + first variant unchanged
    assert len(stored(settings)) == RECORDS - 1


def test_dry_run_changes_nothing(settings, tmp_path):
    path = write_faq(tmp_path / "faq.csv")
    preview = ingest_paths(settings, "faq", [path], dry_run=True)
    assert counts(preview, "faq.csv") == (4, 0, 0, 0, 0) and preview.totals()["written"] == RECORDS
    assert preview.store_count == 0 and "last_ingest" not in open_store(settings).info()
    ingest_paths(settings, "faq", [path])
    before = stored(settings)
    write_faq(path, {k: v.replace("2~3일", "1~2일") for k, v in ROWS.items() if k != "d-3"})
    preview = ingest_paths(settings, "faq", [path], dry_run=True)
    assert counts(preview, "faq.csv") == (0, 1, 2, 1, 0)
    assert stored(settings) == before


def test_rows_rejected_rest_ingested(settings, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(f"{HEADER}\n{ROWS['d-1']}\nd-9,배송,,질문이 빠짐,\n{ROWS['d-2']}\nd-1,중복,중복 질문,중복 답,\n", encoding="utf-8")
    report = ingest_paths(settings, "faq", [path])
    assert counts(report, "mixed.csv") == (2, 0, 0, 0, 2)
    assert [(r.source, r.line) for r in report.rejected] == [("mixed.csv", 3), ("mixed.csv", 5)]
    assert report.store_count == 5 and not report.ok


def test_bad_reupload_keeps_stored_records(settings, tmp_path):
    path = write_faq(tmp_path / "faq.csv")
    ingest_paths(settings, "faq", [path])
    before = stored(settings)
    bad_versions = {
        "no columns": "제목,내용\n가,나\n".encode(),
        "undecodable": bytes(range(128, 256)) * 8,
        "every row bad": f"{HEADER}\nd-1,배송,질문만 있음,,\n".encode(),
        "header only": f"{HEADER}\n".encode(),
        "empty": b"",
    }
    for label, content in bad_versions.items():
        path.write_bytes(content)
        report = ingest_paths(settings, "faq", [path])
        assert report.sources["faq.csv"].error, label
        assert report.rejected and report.rejected[-1].source == "faq.csv", label
        assert report.totals()["removed"] == 0 and report.totals()["deleted"] == 0, label
        assert stored(settings) == before, label
    report = ingest_paths(settings, "faq", [tmp_path / "gone.csv"])
    assert "not found" in str(report.rejected[0]) and stored(settings) == before


def test_sync_source_directly(settings, tmp_path):
    encoder = load_encoder(settings.encoder)
    store = open_store(settings)
    records = faq_records(read_faq(write_faq(tmp_path / "faq.csv")).items)
    assert sync_source(store, encoder, "faq.csv", records, batch_size=2, dry_run=True).added == 4
    assert store.count() == 0
    first = sync_source(store, encoder, "faq.csv", records, batch_size=2)
    assert (first.added, first.written, store.count()) == (4, RECORDS, RECORDS)
    fewer = [r for r in records if r.metadata["faq_id"] != "d-1"]
    second = sync_source(store, encoder, "faq.csv", fewer, batch_size=2)
    assert (second.removed, second.unchanged, second.deleted, store.count()) == (1, 3, 3, RECORDS - 3)
    assert "삭제 removed 1" in str(second) and "그대로 unchanged 3" in str(second)


def test_batches_come_back_in_order_with_the_next_one_already_encoding(settings, tmp_path):
    """encoded_batches keeps the next call in flight (never more than two) and hands out each batch's
    own vectors in order; a stop request ends it between batches."""
    import threading

    from ingest.plan import IngestCancelled, encoded_batches

    encoder = load_encoder(settings.encoder)
    records = faq_records(read_faq(write_faq(tmp_path / "faq.csv")).items)
    batches = [records[i : i + 2] for i in range(0, len(records), 2)]
    real, lock, running, most, started = encoder.encode_records, threading.Lock(), [0], [0], []

    class Watched:
        def encode_records(self, batch):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
                started.append(batch)
            try:
                time.sleep(0.05)
                return real(batch)
            finally:
                with lock:
                    running[0] -= 1

    got = list(encoded_batches(Watched(), batches))
    assert [batch for batch, _ in got] == batches
    for batch, vectors in got:
        np.testing.assert_allclose(vectors, real(batch), atol=1e-5)
    assert most[0] == 2 and len(started) == len(batches)

    asked = iter([False, False, True])
    with pytest.raises(IngestCancelled):
        for _ in encoded_batches(Watched(), batches, should_stop=lambda: next(asked)):
            pass


def test_rebuild_reencodes_this_kind_and_drops_its_other_sources(settings, tmp_path):
    a = write_faq(tmp_path / "a.csv")
    b = write_faq(tmp_path / "b.csv", {"x": "x,기타,영업시간은요?,평일 9시부터 6시까지입니다.,"})
    doc = tmp_path / "guide.txt"
    doc.write_text("배송 안내\n\n평일 오후 2시 전 주문은 당일 발송합니다.", encoding="utf-8")
    ingest_paths(settings, "faq", [a, b])
    ingest_paths(settings, "doc", [doc])
    partial = ingest_paths(settings, "faq", [a, tmp_path / "broken.csv"], rebuild=True)
    assert "b.csv" not in partial.sources and open_store(settings).sources()["b.csv"] == 1  # a failed file: no pruning
    report = ingest_paths(settings, "faq", [a], rebuild=True)
    assert report.sources["a.csv"].written == RECORDS and report.sources["a.csv"].unchanged == 4
    assert report.sources["b.csv"].removed == 1
    sources = open_store(settings).sources()
    assert sources == {"a.csv": RECORDS, "guide.txt": 1}


@pytest.mark.slow
def test_encoder_change_needs_rebuild(settings, make_settings, tmp_path):
    from tests.tiny_model import build_tiny_model

    path = write_faq(tmp_path / "faq.csv")
    doc = tmp_path / "guide.txt"
    doc.write_text("배송 안내입니다.", encoding="utf-8")
    ingest_paths(settings, "faq", [path])
    ingest_paths(settings, "doc", [doc])
    other = make_settings(model=build_tiny_model(tmp_path / "other-model"))
    with pytest.raises(EncoderMismatchError, match="--rebuild"):
        ingest_paths(other, "faq", [path])
    report = ingest_paths(other, "faq", [path], rebuild=True)
    assert report.notes and "re-ingest the other kind" in report.notes[0]
    assert counts(report, "faq.csv") == (4, 0, 0, 0, 0)
    docs = ingest_paths(other, "doc", [doc], rebuild=True)  # the second kind, as the mismatch message says
    assert counts(docs, "guide.txt") == (1, 0, 0, 0, 0) and not docs.notes
    assert open_store(other).sources() == {"faq.csv": RECORDS, "guide.txt": 1}


def test_progress_callback(settings, tmp_path):
    seen: list[tuple[float, str]] = []
    ingest_paths(settings, "faq", [write_faq(tmp_path / "faq.csv")], progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(seen) >= 4
    assert any("faq.csv" in m for _, m in seen)


# ------------------------------------------------------------------------------------------------
# Documents
# ------------------------------------------------------------------------------------------------
def test_docs_every_format_from_a_folder(settings, tmp_path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "배송안내.txt").write_text("배송 안내\n\n평일 오후 2시 전 주문은 당일 발송합니다. 제주는 3,000원이 추가됩니다.", encoding="utf-8")
    (folder / "약관.md").write_text("# 이용약관\n\n제1조 이 약관은 서비스 이용 조건을 정합니다.\n", encoding="utf-8")
    (folder / "멤버십.html").write_text("<h1>멤버십</h1><p>VIP는 3% 적립됩니다.</p><script>x()</script>", encoding="utf-8")
    write_docx(folder / "sub" / "개인정보.docx")
    write_hwpx(folder / "sub" / "공지.hwpx", [["공지사항", "설 연휴에는 배송이 쉽니다."]])
    write_pdf(folder / "반품.pdf", [["반품 안내", "수령 후 7일 이내에 반품할 수 있습니다."], ["교환은 1회 무료입니다."]])
    (folder / "사진.png").write_bytes(b"\x89PNG")
    report = ingest_paths(settings, "doc", [folder])
    assert set(report.sources) == {"배송안내.txt", "약관.md", "멤버십.html", "개인정보.docx", "공지.hwpx", "반품.pdf"}
    assert all(c.added >= 1 and not c.error for c in report.sources.values()) and report.ok
    pdf = stored(settings, {"source": "반품.pdf"})
    assert sorted((m["page"], m["chunk_index"], m["title"]) for m in pdf.values()) == [(1, 0, "반품 안내"), (2, 1, "반품 안내")]
    md = stored(settings, {"source": "약관.md"})
    assert {m["kind"] for m in md.values()} == {"doc"} and {m["title"] for m in md.values()} == {"이용약관"}
    store = open_store(settings)
    records = store.hits([i for i, _ in store.iter_metadata({"source": "배송안내.txt"})])
    vectors = store.vectors(list(records))
    expected = load_encoder(settings.encoder).encode_passages([h.text for h in records.values()])
    assert np.allclose(np.stack([vectors[i] for i in records]), expected, atol=1e-5)  # passages, not questions

    again = ingest_paths(settings, "doc", [folder])
    assert again.totals()["written"] == 0 and again.totals()["unchanged"] == report.totals()["added"]


def test_docs_unsupported_file_and_duplicate_names(settings, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "guide.txt").write_text("첫 번째 안내문입니다.", encoding="utf-8")
    (tmp_path / "b" / "guide.txt").write_text("두 번째 안내문입니다.", encoding="utf-8")
    old = tmp_path / "old.hwp"
    old.write_bytes(b"HWP")
    report = ingest_paths(settings, "doc", [tmp_path / "a", tmp_path / "b", old])
    assert report.sources["guide.txt"].added == 1 and report.sources["guide.txt"].rejected == 1
    reasons = [str(r) for r in report.rejected]
    assert any("duplicate file name" in r for r in reasons) and any(r.startswith("old.hwp: ") and "unsupported" in r for r in reasons)
    assert open_store(settings).sources() == {"guide.txt": 1}


def test_docs_bad_reupload_keeps_stored_chunks(settings, tmp_path):
    doc = tmp_path / "guide.docx"
    write_docx(doc)
    ingest_paths(settings, "doc", [doc])
    before = stored(settings)
    for label, content in {"corrupt": b"PK\x03\x04 broken", "empty": b""}.items():
        doc.write_bytes(content)
        report = ingest_paths(settings, "doc", [doc])
        assert report.sources["guide.docx"].error and report.rejected, label
        assert stored(settings) == before, label
    blank_pdf = write_pdf(tmp_path / "scan.pdf", [[], []])
    report = ingest_paths(settings, "doc", [blank_pdf])
    assert "no text found" in str(report.rejected[0]) and report.store_count is None


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------
@pytest.fixture()
def cli_env(monkeypatch, tmp_path, tiny_model_dir):
    env = {
        "FAQBOT_ENCODER__MODEL": str(tiny_model_dir),
        "FAQBOT_ENCODER__DEVICE": "cpu",
        "FAQBOT_STORE__PATH": str(tmp_path / "chroma"),
        "FAQBOT_STORE__CACHE_DIR": str(tmp_path / "cache"),
        "FAQBOT_INGEST__BATCH_SIZE": "8",
    }
    monkeypatch.delenv("FAQBOT_CONFIG", raising=False)
    monkeypatch.delenv("FAQBOT_STORE__HOST", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_cli_counts_rejections_and_exit_codes(cli_env, tmp_path, capsys):
    path = write_faq(tmp_path / "faq.csv")
    assert cli_main(["faq", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "faq.csv: 추가 added 4 · 갱신 updated 0 · 그대로 unchanged 0 · 삭제 removed 0 · 거부 rejected 0" in out
    assert f"records in store): {RECORDS}" in out

    bad = tmp_path / "bad_cp949.csv"
    bad.write_bytes("번호,질문,답변\n1,배송비는?,3000원\n2,답이 없음\n".encode("cp949"))
    assert cli_main(["faq", str(bad), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "bad_cp949.csv:3: 열 개수가 맞지 않습니다" in out and "추가 added 1" in out

    assert cli_main(["faq", str(path), "--dry-run", "-q"]) == 0
    assert "dry run" in capsys.readouterr().out

    assert cli_main(["faq", str(tmp_path / "missing.csv")]) == 2
    err = capsys.readouterr().err
    assert "missing.csv" in err and "Traceback" not in err


@pytest.mark.slow
def test_cli_encoder_mismatch_is_a_clear_fatal_error(cli_env, tmp_path, capsys, monkeypatch):
    from tests.tiny_model import build_tiny_model

    path = write_faq(tmp_path / "faq.csv")
    assert cli_main(["faq", str(path), "-q"]) == 0
    monkeypatch.setenv("FAQBOT_ENCODER__MODEL", str(build_tiny_model(tmp_path / "other")))
    assert cli_main(["faq", str(path), "-q"]) == 2
    captured = capsys.readouterr()
    assert "--rebuild" in captured.err and "Traceback" not in captured.err
    assert cli_main(["faq", str(path), "-q", "--rebuild"]) == 0
    monkeypatch.setenv("FAQBOT_ENCODER__MODEL", str(tmp_path / "no-such-model"))
    assert cli_main(["faq", str(path), "-q"]) == 2
    assert "no-such-model" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# A real SIGKILL mid-way through `python -m ingest faq BIG.csv`
# ------------------------------------------------------------------------------------------------
ROWS_BIG = 1200  # batches of 8 in the child: ~150 upserts, seconds of work, killed after KILL_AFTER records
KILL_AFTER = 120


@pytest.mark.slow
def test_sigkill_midway_then_rerun_completes_without_duplicates(cli_env, make_settings, tmp_path):
    from chromadb.api.shared_system_client import SharedSystemClient

    settings = make_settings()  # same store folder as cli_env
    keep = write_faq(tmp_path / "keep.csv")
    ingest_paths(settings, "faq", [keep])
    big = tmp_path / "big.csv"
    lines = ["id,question,answer"] + [f"b-{i},{i}번 주문의 배송 상태를 알고 싶어요,{i}번 주문은 배송 중입니다." for i in range(ROWS_BIG)]
    big.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected_ids = {r.id for r in faq_records(read_faq(big).items)}
    SharedSystemClient.clear_system_cache()  # let the child own the folder while it writes

    log_path = tmp_path / "ingest.log"
    env = {**os.environ, **cli_env, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        child = subprocess.Popen([sys.executable, "-m", "ingest", "faq", str(big)], cwd=PROJECT_ROOT, env=env,
                                 stdout=log, stderr=subprocess.STDOUT)
        written = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            found = re.findall(rb"(\d+)/%d \[" % ROWS_BIG, log_path.read_bytes())
            written = int(found[-1]) if found else 0
            if written >= KILL_AFTER:
                break
            time.sleep(0.05)
        assert child.poll() is None, f"ingestion ended before it could be killed: {log_path.read_text(errors='replace')[-2000:]}"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert child.returncode == -signal.SIGKILL

    SharedSystemClient.clear_system_cache()
    partial = stored(settings, {"source": "big.csv"})
    assert KILL_AFTER <= len(partial) < ROWS_BIG and set(partial) <= expected_ids
    assert len(stored(settings, {"source": "keep.csv"})) == RECORDS

    report = ingest_paths(make_settings(ingest={"batch_size": 64}), "faq", [big])
    assert report.sources["big.csv"].unchanged == len(partial)
    assert report.sources["big.csv"].added == ROWS_BIG - len(partial)
    final = stored(settings, {"source": "big.csv"})
    assert set(final) == expected_ids and len(final) == ROWS_BIG
    assert len({m["faq_id"] for m in final.values()}) == ROWS_BIG  # one record per FAQ: no duplicates
    assert open_store(settings).count() == ROWS_BIG + RECORDS
    assert len(stored(settings, {"source": "keep.csv"})) == RECORDS
