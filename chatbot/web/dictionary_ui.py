"""The 📖 동의어 tab: the synonym and user dictionary as an editable table, an upload, and mined proposals.

Layout and wiring only; every action goes through the operator tabs' `guarded` wrapper (password check
with back-off), and the work is chatbot.dictionary / chatbot.synonym_files / chatbot.synonym_mining.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from chatbot.dictionary import active_dictionary, update_dictionary
from chatbot.operator.period import parse_since
from chatbot.synonym_files import load_dictionary
from chatbot.synonym_mining import candidates_from_log
from chatbot.synonyms import DictionaryError

HEADERS = ["대표어 (canonical)", "동의어 (variants, | 로 구분)", "품사 (tag, 예: NNP)"]
PROPOSAL_HEADERS = ["고객이 쓴 말", "FAQ의 말", "횟수", "예시 질문"]
PRIVATE = {"api_visibility": "private"}


def dictionary_rows() -> list[list[str]]:
    """The active dictionary as the editor shows it."""
    return [[r["canonical"], " | ".join(r.get("variants") or []), r.get("tag") or ""] for r in active_dictionary().rows()]


def entries_from_table(table: Any) -> list[dict[str, Any]]:
    """Editor rows → dictionary entries; blank rows are dropped (that is how a row is deleted)."""
    rows = table.values.tolist() if hasattr(table, "values") else list(table or [])
    out = []
    for row in rows:
        cells = [str(c).strip() if c is not None else "" for c in list(row) + ["", "", ""]][:3]
        if cells[0]:
            out.append({"canonical": cells[0], "variants": cells[1], "tag": cells[2] or None})
    return out


def build_dictionary_tab(service: Any, guarded: Callable[[Callable[..., Any]], Callable[..., Any]], password: gr.Textbox) -> None:
    """Adds the tab inside the page's gr.Tabs."""

    def applied(message: str) -> tuple[list[list[str]], str]:
        service.require().retriever.refresh()  # the BM25 cache is keyed by the dictionary: rebuilt on the next question
        return dictionary_rows(), message

    def show() -> tuple[list[list[str]], str]:
        return dictionary_rows(), f"{len(active_dictionary().entries)}개 항목"

    def save(table: Any) -> tuple[list[list[str]], str]:
        try:
            saved = update_dictionary(entries_from_table(table))
        except DictionaryError as exc:
            raise ValueError(f"사전을 저장하지 못했습니다: {exc}") from exc
        return applied(f"저장했습니다: {len(saved.entries)}개 항목. 다음 질문부터 키워드 검색에 반영됩니다.")

    def upload(file: Any, replace: bool) -> tuple[list[list[str]], str]:
        if not file:
            raise ValueError("CSV·XLSX·YAML 파일을 먼저 올려 주세요. (Upload a file first.)")
        try:
            uploaded = load_dictionary(Path(file if isinstance(file, str) else file.name))
            merged = uploaded if replace else active_dictionary().merged(uploaded)
            saved = update_dictionary(merged.rows())
        except DictionaryError as exc:
            raise ValueError(f"사전 파일을 읽지 못했습니다: {exc}") from exc
        return applied(f"{'바꿨습니다' if replace else '합쳤습니다'}: {len(saved.entries)}개 항목.")

    def propose(since: str) -> list[list[Any]]:
        if service.questions is None:
            raise ValueError("질문 기록이 꺼져 있습니다 (log.enabled). (The question log is off.)")
        found = candidates_from_log(service.questions.engine, service.require().store, parse_since(since))
        return [[c.question_term, c.faq_term, c.count, c.example] for c in found]

    with gr.Tab("📖 동의어", id="dictionary"):
        gr.Markdown(
            "키워드 검색에서 같은 뜻으로 볼 말을 정합니다 (예: 환불 ← 돈 돌려받기 | 리턴). 품사를 적은 말(상품·브랜드명, NNP)은 "
            "형태소 분석에서 한 단어로 다룹니다. 줄을 비우면 그 항목이 지워집니다."
        )
        with gr.Row():
            load_btn = gr.Button("사전 불러오기", elem_id="dictionary-load")
            save_btn = gr.Button("저장하기", variant="primary", elem_id="dictionary-save")
        table = gr.Dataframe(headers=HEADERS, column_count=(3, "fixed"), interactive=True, elem_id="dictionary-table")
        message = gr.Markdown(elem_id="dictionary-message")
        with gr.Row():
            file = gr.File(label="사전 파일 올리기 (CSV·XLSX·YAML: canonical, variants, tag)", file_types=[".csv", ".tsv", ".xlsx", ".yaml", ".yml"])
            replace = gr.Checkbox(label="지금 사전을 올린 파일로 바꾸기 (끄면 합치기)", value=False)
            upload_btn = gr.Button("올린 사전 적용")
        gr.Markdown("**제안**: 확신 있게 답했지만 질문과 FAQ가 겹치는 말이 하나도 없던 경우에서 찾은 짝입니다.")
        with gr.Row():
            since = gr.Textbox(value="30d", label="기간", scale=3)
            propose_btn = gr.Button("동의어 후보 찾기", scale=1, elem_id="dictionary-propose")
        proposals = gr.Dataframe(headers=PROPOSAL_HEADERS, interactive=False, elem_id="dictionary-proposals")

    load_btn.click(guarded(show), [password], [table, message], **PRIVATE)
    save_btn.click(guarded(save), [table, password], [table, message], **PRIVATE)
    upload_btn.click(guarded(upload), [file, replace, password], [table, message], **PRIVATE)
    propose_btn.click(guarded(propose), [since, password], [proposals], **PRIVATE)
