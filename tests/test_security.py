"""Attacks replayed against the real app (`python app.py` on loopback, raw HTTP): each failed on the old code.

Covers: server-file read through page events (every event in /config), feedback-log corruption, body
caps, per-client rates, upload caps and clean-up, operator password guessing, CLI ingest beside a running
app, and the small API refusals.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from chatbot.feedback import Feedback, FeedbackLog
from chatbot.settings import PROJECT_ROOT
from tests.helpers import (
    app_env, call_event, component_of, event_ids, event_output, find_event, page_config, running_app, write_faq,
)

pytestmark = pytest.mark.app

PASSWORD = "운영-비밀-5678"


@pytest.fixture(scope="module")
def app(tmp_path_factory, tiny_model_dir):
    """One app with small limits so the limits are reachable in a test; a secret file outside its folders."""
    tmp = tmp_path_factory.mktemp("attack")
    secret = tmp / "secret" / "token.txt"
    secret.parent.mkdir()
    secret.write_text(f"SECRET-{uuid.uuid4().hex}", encoding="utf-8")
    env = app_env(
        tmp, tiny_model_dir, write_faq(tmp / "faq.csv"),
        app__password=PASSWORD, app__max_upload_mb="1", app__upload_dir_max_mb="3", app__uploads_per_minute="100",
        app__upload_max_age_s="4", app__ask_per_minute="1000", app__feedback_per_minute="1000",
        app__events_per_minute="1000",
    )
    with running_app(tmp, env) as server:
        yield {**server, "secret": secret}


def _secret_served(app, text: str) -> bool:
    """Whether a response text, or any Gradio file URL in it, gives the secret back."""
    secret = app["secret"].read_text(encoding="utf-8")
    if secret in text:
        return True
    for part in text.split('"'):
        if "/gradio_api/file=" in part:
            url = part if part.startswith("http") else app["base"] + part[part.index("/gradio_api/file="):]
            if secret in httpx.get(url, timeout=10).text:
                return True
    return False


# --- 1. no event accepts a server path -------------------------------------------------------------
def test_chat_history_naming_a_server_file_is_refused(app):
    config = page_config(app["base"])
    chat_turn = find_event(config, target=component_of(config, "send"), trigger="click")
    history = [{"role": "user", "content": [{"type": "file", "file": {"path": str(app["secret"]), "meta": {"_type": "gradio.FileData"}}}]}]
    got = call_event(app["base"], chat_turn, ["안녕", history, "전체", {}])
    assert got["status"] == 403, got
    assert "업로드" in got["join"] and not _secret_served(app, json.dumps(got))


def test_a_path_key_written_with_json_escapes_is_refused_too(app):
    config = page_config(app["base"])
    chat_turn = find_event(config, target=component_of(config, "send"), trigger="click")
    body = ('{"data": ["안녕", [{"role": "user", "content": [{"type": "file", "file": {"p\\u0061th": "%s", '
            '"meta": {"_type": "gradio.FileData"}}}]}], "전체", {}], "fn_index": %d, "session_hash": "esc12345678"}'
            % (app["secret"], chat_turn))
    got = httpx.post(f"{app['base']}/gradio_api/queue/join", content=body.encode(), headers={"content-type": "application/json"}, timeout=10)
    assert json.loads(body)["data"][1][0]["content"][0]["file"]["path"] == str(app["secret"])  # the escape really spells "path"
    assert got.status_code == 403, got.text


@pytest.mark.parametrize("shape", ["filedata", "file-list", "chat-message", "url"])
def test_no_event_on_the_page_reads_a_server_file(app, shape):
    """Every event listed in /config, every input slot given a file object naming the secret."""
    config = page_config(app["base"])
    path = str(app["secret"])
    payload = {
        "filedata": {"path": path, "meta": {"_type": "gradio.FileData"}},
        "file-list": [{"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": "faq.csv"}],
        "chat-message": [{"role": "user", "content": [{"type": "file", "file": {"path": path, "meta": {"_type": "gradio.FileData"}}}]}],
        "url": {"path": "http://127.0.0.1:1/x", "meta": {"_type": "gradio.FileData"}},
    }[shape]
    dependencies = {int(dep.get("id", i)): dep for i, dep in enumerate(config["dependencies"])}
    assert len(dependencies) >= 10
    for fn_index in event_ids(config):
        inputs = dependencies[fn_index].get("inputs", [])
        data = [payload for _ in inputs] or [payload]
        got = call_event(app["base"], fn_index, data, timeout_s=10)
        assert got["status"] == 403, (fn_index, got["status"], got["join"][:200])
        assert not _secret_served(app, json.dumps(got))


def test_gradio_file_route_does_not_serve_server_files(app):
    for path in (str(app["secret"]), "/etc/hostname", "../../../etc/hostname"):
        got = httpx.get(f"{app['base']}/gradio_api/file={path}", timeout=10)
        assert got.status_code in (403, 404), (path, got.status_code)
        assert app["secret"].read_text() not in got.text


def test_uploaded_file_is_accepted_by_the_ingest_event_only_with_the_password(app):
    faq = write_faq(app["tmp"] / "upload.csv", [("up-1", "", "업로드 질문", "업로드 답", "")])
    with faq.open("rb") as f:
        uploaded = httpx.post(f"{app['base']}/gradio_api/upload", files={"files": ("upload.csv", f, "text/csv")}, timeout=30)
    assert uploaded.status_code == 200, uploaded.text
    stored = uploaded.json()[0]
    assert Path(stored).is_relative_to(app["tmp"] / "uploads")
    config = page_config(app["base"])
    ingest = find_event(config, target=component_of(config, "ingest"), trigger="click")
    file_value = [{"path": stored, "meta": {"_type": "gradio.FileData"}, "orig_name": "upload.csv"}]
    wrong = event_output(call_event(app["base"], ingest, [file_value, True, "wrong"]))
    assert wrong is not None and not wrong.get("success"), wrong
    right = event_output(call_event(app["base"], ingest, [file_value, True, PASSWORD], timeout_s=60))
    assert right is not None and right.get("success"), right
    assert "미리보기" in json.dumps(right["output"]["data"][0], ensure_ascii=False)


# --- 3. feedback log: validated fields, JSON Lines read by "\n" only --------------------------------
@pytest.mark.parametrize("raw", [
    '{"question": "q", "rating": "up", "score": NaN}',
    '{"question": "q", "rating": "up", "score": Infinity}',
    '{"question": "q", "rating": "up", "score": "0.5"}',
    '{"question": "q", "rating": "up", "score": 1e308}',
    '{"question": "q", "rating": "up", "mode": "<script>"}',
    '{"question": "   ", "rating": "up"}',
    '{"question": "q", "rating": "up", "answer_type": "hacked"}',
    '{"question": "q", "rating": "maybe"}',
])
def test_bad_feedback_values_are_refused_and_never_logged(app, raw):
    log = Path(app["env"]["FAQBOT_APP__FEEDBACK_LOG"])
    before = log.read_bytes() if log.exists() else b""
    got = httpx.post(f"{app['base']}/api/feedback", content=raw.encode(), headers={"content-type": "application/json"}, timeout=10)
    assert got.status_code == 422, got.text
    assert "요청이 올바르지 않습니다" in got.json()["detail"]
    assert (log.read_bytes() if log.exists() else b"") == before


def test_line_separators_inside_values_do_not_split_entries(app):
    question = "배송\u2028언제\u2029와요\u0085?"
    got = httpx.post(f"{app['base']}/api/feedback", json={"question": question, "rating": "up", "score": 0.9}, timeout=10)
    assert got.status_code == 200
    entries = FeedbackLog(Path(app["env"]["FAQBOT_APP__FEEDBACK_LOG"])).read()
    assert [e["question"] for e in entries if "배송" in e["question"]] == [question]


def test_feedback_log_rotates_at_its_size_cap(tmp_path):
    log = FeedbackLog(tmp_path / "feedback.jsonl", max_bytes=2000)
    for i in range(100):
        log.append(Feedback(question=f"질문 {i} " + "가" * 50, rating="up"))
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["feedback.jsonl", "feedback.jsonl.1", "feedback.jsonl.2", "feedback.jsonl.3"]
    assert all((tmp_path / name).stat().st_size <= 2000 for name in files)
    assert log.read()[-1]["question"].startswith("질문 99")


# --- 4. bounded writes: body caps, rates, uploads ----------------------------------------------------
def test_giant_api_body_is_413_before_it_is_read(app):
    body = b'{"question": "' + b"a" * (8 * 1024 * 1024) + b'"}'
    got = httpx.post(f"{app['base']}/api/ask", content=body, headers={"content-type": "application/json"}, timeout=30)
    assert got.status_code == 413 and "너무 큽니다" in got.json()["detail"]
    assert httpx.get(f"{app['base']}/api/health", timeout=5).status_code == 200


def test_over_long_feedback_question_is_refused(app):
    got = httpx.post(f"{app['base']}/api/feedback", json={"question": "가" * 20_000, "rating": "up"}, timeout=10)
    assert got.status_code in (413, 422)


def test_upload_over_the_size_cap_is_refused_and_not_kept(app):
    uploads = app["tmp"] / "uploads"
    before = sum(p.stat().st_size for p in uploads.rglob("*") if p.is_file())
    got = httpx.post(f"{app['base']}/gradio_api/upload", files={"files": ("big.csv", b"a" * (2 * 1024 * 1024), "text/csv")}, timeout=30)
    assert got.status_code in (413, 400), got.status_code
    after = sum(p.stat().st_size for p in uploads.rglob("*") if p.is_file())
    assert after - before < 1024 * 1024


def test_uploads_are_deleted_after_their_age(app):
    got = httpx.post(f"{app['base']}/gradio_api/upload", files={"files": ("old.csv", b"question,answer\nq,a\n", "text/csv")}, timeout=30)
    stored = Path(got.json()[0])
    assert stored.exists()
    deadline = time.monotonic() + 20
    while stored.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not stored.exists(), "Gradio's cache clean-up should delete uploads older than app.upload_max_age_s"


def test_upload_folder_volume_is_capped(app):
    statuses = []
    for i in range(8):
        got = httpx.post(f"{app['base']}/gradio_api/upload", files={"files": (f"f{i}.csv", b"x" * 900_000, "text/csv")}, timeout=30)
        statuses.append(got.status_code)
    assert 507 in statuses, statuses
    uploads = app["tmp"] / "uploads"
    assert sum(p.stat().st_size for p in uploads.rglob("*") if p.is_file()) < 6 * 1024 * 1024


def test_rate_limits_answer_429_with_retry_after(tmp_path, tiny_model_dir):
    env = app_env(tmp_path, tiny_model_dir, write_faq(tmp_path / "faq.csv"), app__ask_per_minute="10", app__feedback_per_minute="5")
    with running_app(tmp_path, env) as server:
        asks = [httpx.post(f"{server['base']}/api/ask", json={"question": "배송은 얼마나 걸리나요?"}, timeout=30) for _ in range(15)]
        codes = [r.status_code for r in asks]
        assert codes[:10] == [200] * 10 and 429 in codes[10:], codes
        limited = next(r for r in asks if r.status_code == 429)
        assert int(limited.headers["retry-after"]) >= 1 and "너무 많습니다" in limited.json()["detail"]
        feedback = [
            httpx.post(f"{server['base']}/api/feedback", json={"question": "q", "rating": "up"}, timeout=10).status_code
            for _ in range(8)
        ]
        assert feedback[:5] == [200] * 5 and 429 in feedback[5:], feedback
        log = Path(env["FAQBOT_APP__FEEDBACK_LOG"])
        assert len(FeedbackLog(log).read()) == 5


# --- 5. password guessing ------------------------------------------------------------------------------
def test_password_guessing_is_locked_out_and_logged(app):
    config = page_config(app["base"])
    unlock = next(
        find_event(config, target=component_of(config, "password"), trigger=trigger) for trigger in ("submit",)
    )
    started = time.monotonic()
    messages = []
    for i in range(8):
        out = event_output(call_event(app["base"], unlock, [f"guess-{i}"]))
        messages.append(json.dumps(out, ensure_ascii=False))
    # the right password is refused too while locked out
    locked = json.dumps(event_output(call_event(app["base"], unlock, [PASSWORD])), ensure_ascii=False)
    assert "여러 번 틀렸습니다" in locked, locked
    assert any("올바르지 않습니다" in m for m in messages[:5])
    assert time.monotonic() - started < 60
    log = app["log"].read_text(encoding="utf-8", errors="replace")
    assert log.count("Failed operator unlock") >= 6


# --- 2. CLI ingest beside a running app ------------------------------------------------------------------
def test_cli_ingest_beside_a_running_app_refuses_and_questions_keep_working(app):
    extra = write_faq(app["tmp"] / "extra.csv", [("gift-1", "선물", "선물 포장이 되나요?", "선택할 수 있습니다.", "")])
    cli = subprocess.run(
        [sys.executable, "-m", "ingest", "faq", str(extra)], cwd=PROJECT_ROOT, env=app["env"],
        capture_output=True, text=True, timeout=180,
    )
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert "운영" in cli.stderr and "FAQBOT_STORE__HOST" in cli.stderr
    statuses = [
        httpx.post(f"{app['base']}/api/ask", json={"question": q}, timeout=30).status_code
        for q in ["선물 포장이 되나요?", "배송은 얼마나 걸리나요?", "선물", "포장"] * 5
    ]
    assert statuses == [200] * 20


# --- 10. small refusals ---------------------------------------------------------------------------------
def test_get_on_a_post_route_is_405_and_unknown_api_is_404(app):
    got = httpx.get(f"{app['base']}/api/ask", timeout=10)
    assert got.status_code == 405 and "POST" in got.headers.get("allow", "") and "POST" in got.json()["detail"]
    assert httpx.get(f"{app['base']}/api/nothing-here", timeout=10).status_code == 404


def test_non_utf8_body_gets_a_korean_message(app):
    got = httpx.post(
        f"{app['base']}/api/ask", content='{"question": "배송"}'.encode("cp949"),
        headers={"content-type": "application/json"}, timeout=10,
    )
    assert got.status_code in (400, 422) and "UTF-8" in got.json()["detail"] and "요청" in got.json()["detail"]


# --- 9. Chroma server outages ------------------------------------------------------------------------------
@pytest.mark.server
def test_chroma_outage_is_a_503_with_a_message_and_heals(tmp_path, tiny_model_dir):
    import os
    import signal

    from tests.helpers import start_chroma, stop

    chroma, port = start_chroma(tmp_path / "chroma-server")
    env = app_env(
        tmp_path, tiny_model_dir, write_faq(tmp_path / "faq.csv"),
        store__host="127.0.0.1", store__port=str(port), store__timeout_s="3",
    )
    ask = {"question": "배송은 얼마나 걸리나요?"}
    try:
        with running_app(tmp_path, env) as server:
            base = server["base"]
            assert httpx.post(f"{base}/api/ask", json=ask, timeout=30).json()["type"] == "faq"
            os.kill(chroma.pid, signal.SIGSTOP)  # frozen: requests must not hang
            started = time.monotonic()
            frozen = httpx.post(f"{base}/api/ask", json=ask, timeout=60)
            assert frozen.status_code == 503 and "저장소" in frozen.json()["detail"], frozen.text
            assert time.monotonic() - started < 20
            assert httpx.get(f"{base}/api/health", timeout=60).status_code == 503
            os.kill(chroma.pid, signal.SIGCONT)
            assert httpx.post(f"{base}/api/ask", json=ask, timeout=30).status_code == 200
            stop(chroma)  # gone
            down = httpx.post(f"{base}/api/ask", json=ask, timeout=60)
            assert down.status_code == 503 and down.headers["content-type"].startswith("application/json")
            assert httpx.get(f"{base}/api/health", timeout=60).status_code == 503
            chroma, _ = start_chroma(tmp_path / "chroma-server", port=port)  # back on the same port and data
            deadline = time.monotonic() + 30
            while httpx.post(f"{base}/api/ask", json=ask, timeout=30).status_code != 200 and time.monotonic() < deadline:
                time.sleep(1)
            assert httpx.post(f"{base}/api/ask", json=ask, timeout=30).json()["type"] == "faq"
            assert httpx.get(f"{base}/api/health", timeout=30).status_code == 200
    finally:
        os.kill(chroma.pid, signal.SIGCONT) if chroma.poll() is None else None
        stop(chroma)


# --- 10. the terminal chat on a broken store ------------------------------------------------------------------
def test_terminal_chat_on_a_corrupt_store_prints_one_clear_line(tmp_path, tiny_model_dir):
    env = app_env(tmp_path, tiny_model_dir)
    store = Path(env["FAQBOT_STORE__PATH"])
    store.mkdir(parents=True)
    (store / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    got = subprocess.run(
        [sys.executable, "-m", "chatbot.chat", "배송은 얼마나 걸리나요?"], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True, timeout=180,
    )
    assert got.returncode == 2, got.stdout + got.stderr
    assert "Traceback" not in got.stderr and "오류 (error):" in got.stderr
