"""Helpers shared by the test modules: FAQ fixture rows, free ports, a real `python app.py` process, Gradio events."""
from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from chatbot.settings import PROJECT_ROOT
from tests.tiny_model import TINY_THRESHOLD

FAQ_ROWS = [
    # id, category, question, answer, alternatives
    ("ship-1", "배송", "배송은 얼마나 걸리나요?", "주문 후 2~3일 안에 도착합니다.", "택배는 언제 도착해요?"),
    ("refund-1", "환불", "환불은 어떻게 받나요?", "반품이 확인되면 3영업일 안에 환불됩니다.", "돈 돌려받고 싶어요"),
    ("account-1", "회원", "비밀번호를 잊어버렸어요", "로그인 화면에서 비밀번호 찾기를 누르세요.", ""),
    ("coupon-1", "쿠폰", "쿠폰은 어디에서 입력하나요?", "결제 화면에서 쿠폰 코드를 입력합니다.", ""),
]
FAQ_HEADER = ["id", "category", "question", "answer", "alternatives"]


def write_faq(path: Path, rows: Sequence[Sequence[str]] = FAQ_ROWS) -> Path:
    """A UTF-8 FAQ CSV in the ingestion format."""
    with Path(path).open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FAQ_HEADER)
        writer.writerows(rows)
    return Path(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(base: str, timeout_s: float = 120, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    """Polls /api/health until 200; fails with the server log when the process dies or start-up fails."""
    def tail() -> str:
        return log.read_text(errors="replace")[-3000:] if log and log.exists() else ""

    deadline = time.monotonic() + timeout_s
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"app.py exited with {proc.returncode}:\n{tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the app never became healthy:\n{tail()}")
        try:
            health = httpx.get(f"{base}/api/health", timeout=2)
            if health.status_code == 200:
                return
            if health.json().get("status") == "error":
                raise AssertionError(f"the app could not start: {health.json()}\n{tail()}")
        except httpx.TransportError:
            pass
        time.sleep(0.25)


def app_env(tmp: Path, model_dir: Path, faq: Path | None = None, **settings: Any) -> dict[str, str]:
    """FAQBOT_* variables for a real app process in tmp: tiny model, own store, logs and uploads."""
    env = {
        **os.environ,
        "FAQBOT_ENCODER__MODEL": str(model_dir),
        "FAQBOT_ENCODER__DEVICE": "cpu",
        "FAQBOT_ANSWER__THRESHOLD": str(TINY_THRESHOLD),
        "FAQBOT_ANSWER__DECISION_MODEL": "false",  # a random encoder's scores say nothing: the threshold decides
        "FAQBOT_STORE__PATH": str(tmp / "chroma"),
        "FAQBOT_STORE__CACHE_DIR": str(tmp / "cache"),
        "FAQBOT_APP__FEEDBACK_LOG": str(tmp / "feedback.jsonl"),
        "FAQBOT_APP__UPLOAD_DIR": str(tmp / "uploads"),
        "FAQBOT_APP__SAMPLE_FAQ": json.dumps([str(faq)] if faq else []),
        "FAQBOT_APP__SAMPLE_DOCS": "[]",
        "FAQBOT_LOG__URL": f"sqlite:///{tmp / 'questions.db'}",
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
    }
    for key, value in settings.items():  # e.g. app__password="x" → FAQBOT_APP__PASSWORD
        env[f"FAQBOT_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


@contextmanager
def running_app(tmp: Path, env: dict[str, str], timeout_s: float = 120) -> Iterator[dict[str, Any]]:
    """The real entry point (`python app.py`) on a free loopback port, stopped on exit."""
    port = free_port()
    log_path = tmp / f"server-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port)], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base, timeout_s, proc, log_path)
            yield {"base": base, "log": log_path, "proc": proc, "tmp": tmp, "env": env}
        finally:
            stop(proc, timeout_s=15)


# --- Gradio events over raw HTTP -------------------------------------------------------------------
def page_config(base: str) -> dict[str, Any]:
    return httpx.get(f"{base}/config", timeout=10).json()


def event_ids(config: dict[str, Any]) -> list[int]:
    """Every event (dependency) the page declares."""
    return [int(dep.get("id", i)) for i, dep in enumerate(config["dependencies"])]


def component_of(config: dict[str, Any], elem_id: str) -> int:
    for component in config["components"]:
        if component.get("props", {}).get("elem_id") == elem_id:
            return int(component["id"])
    raise KeyError(elem_id)


def find_event(config: dict[str, Any], *, target: int, trigger: str) -> int:
    """The event fired by `trigger` (click, submit, …) on the component with id `target`."""
    for i, dep in enumerate(config["dependencies"]):
        for t in dep.get("targets", []):
            if list(t)[:2] == [target, trigger]:
                return int(dep.get("id", i))
    raise KeyError((target, trigger))


def call_event(base: str, fn_index: int, data: list[Any], timeout_s: float = 20, client: httpx.Client | None = None) -> dict[str, Any]:
    """Joins the queue like the page does and waits for the result: {"status": join HTTP status, "messages": [...]}."""
    session = uuid.uuid4().hex[:11]
    http = client or httpx.Client(timeout=timeout_s)
    joined = http.post(f"{base}/gradio_api/queue/join", json={
        "data": data, "event_data": None, "fn_index": fn_index, "trigger_id": None, "session_hash": session,
    })
    result: dict[str, Any] = {"status": joined.status_code, "join": joined.text, "messages": []}
    if joined.status_code != 200:
        return result
    deadline = time.monotonic() + timeout_s
    with http.stream("GET", f"{base}/gradio_api/queue/data", params={"session_hash": session}, timeout=timeout_s) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                result["messages"].append(message)
                if message.get("msg") in ("process_completed", "close_stream", "unexpected_error"):
                    break
            if time.monotonic() > deadline:
                break
    return result


def event_output(result: dict[str, Any]) -> dict[str, Any] | None:
    for message in result["messages"]:
        if message.get("msg") == "process_completed":
            return message
    return None


# --- a real Chroma server -------------------------------------------------------------------------------
def start_chroma(folder: Path, port: int | None = None, timeout_s: float = 60) -> tuple[subprocess.Popen, int]:
    """`chroma run` (shipped with chromadb) on a loopback port, waited for until its heartbeat answers."""
    import shutil

    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    if not Path(chroma).exists():
        raise AssertionError("the `chroma` CLI (shipped with chromadb) is not installed")
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    log = (folder / f"chroma-{port}.log").open("ab")
    proc = subprocess.Popen(
        [chroma, "run", "--path", str(folder / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError(f"chroma server did not start: {(folder / f'chroma-{port}.log').read_text(errors='replace')[-2000:]}")


def stop(proc: subprocess.Popen, timeout_s: float = 10) -> None:
    """Terminate, and kill what does not stop in time."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
