"""The operator page's loop tabs: 📥 inbox, 📚 FAQ browser/editor with export, 📊 analytics, 📖 synonyms (layout and wiring).

Every action re-checks the operator password of the 🛠 운영 tab on the server (handlers.Operator.check:
constant-time compare, per-client back-off) and then calls the same OperatorDesk as /api/operator.
"""
from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from chatbot.operator.analytics import compute_analytics, summary_markdown
from chatbot.operator.charts import outcomes_figure
from chatbot.operator.desk import OperatorActionError, desk_of
from chatbot.operator.export import FORMATS
from chatbot.operator.inbox import Cluster
from chatbot.operator.knowledge import FaqItem
from chatbot.operator.period import parse_since
from chatbot.web.dictionary_ui import build_dictionary_tab
from chatbot.web.handlers import Operator, OperatorError
from chatbot.web.render import md_text

REASONS = {"fallback": "답 없음", "clarify": "되묻기", "low": "낮은 확신", "down": "👎"}
CLUSTER_HEADERS = ["번호", "개수", "대표 질문", "예시", "처음", "마지막", "가까운 FAQ", "점수", "이유"]
FAQ_HEADERS = ["ID", "분류", "질문", "유사 질문 수", "출처", "수정됨"]
PRIVATE = {"api_visibility": "private"}


def _client(request: gr.Request | None) -> str:
    client = getattr(request, "client", None)
    return str(getattr(client, "host", None) or "unknown")


def build_operator_tabs(service: Any, operator: Operator, password: gr.Textbox) -> None:
    """Adds the loop tabs inside the page's gr.Tabs; `password` is the 🛠 운영 tab's password box."""
    desk = desk_of(service)
    cfg = service.settings.operator

    def guarded(action: Callable[..., Any]) -> Callable[..., Any]:
        """Password first (raises gr.Error), then the action; operator errors become gr.Error messages."""

        def run(*args: Any) -> Any:
            *values, secret, request = args
            try:
                operator.check(secret, _client(request))
                operator.require_ready()
                return action(*values)
            except (OperatorError, OperatorActionError, ValueError) as exc:
                raise gr.Error(str(exc)) from exc

        # Gradio passes inputs by position and finds the request by annotation: spell the signature out.
        inputs = [inspect.Parameter(f"value{i}", inspect.Parameter.POSITIONAL_OR_KEYWORD)
                  for i in range(len(inspect.signature(action).parameters) + 1)]
        request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request)
        run.__signature__ = inspect.Signature([*inputs, request])  # type: ignore[attr-defined]
        run.__annotations__ = {"request": gr.Request}  # Gradio's input-count check reads the type hints
        return run

    def faq_choices() -> list[tuple[str, str]]:
        return [(f"{item.faq_id} · {item.question}", item.faq_id) for item in desk.items()]

    # --- inbox --------------------------------------------------------------------------------------
    def load_inbox(since: str) -> tuple[Any, ...]:
        clusters = desk.inbox(parse_since(since, cfg.inbox_days))
        state = {c.id: c.as_dict() for c in clusters}
        choices = [(f"{i + 1}. {c.examples[0]} ({c.size})", c.id) for i, c in enumerate(clusters)]
        first = clusters[0] if clusters else None
        nearest = first.nearest[0] if first and first.nearest else None
        return (
            [_cluster_row(i, c) for i, c in enumerate(clusters)], state,
            gr.Dropdown(choices=choices, value=first.id if first else None),
            gr.Dropdown(choices=faq_choices(), value=nearest),
            _cluster_detail(state.get(first.id) if first else None),
            first.examples[0] if first else "",
            f"받은 질문 묶음 {len(clusters)}개" if clusters else "처리할 질문이 없습니다. 🎉",
        )

    def pick_cluster(cluster_id: str, state: dict) -> tuple[Any, ...]:
        cluster = (state or {}).get(cluster_id)
        nearest = (cluster or {}).get("nearest") or {}
        return gr.Dropdown(value=nearest.get("faq_id")), _cluster_detail(cluster), (cluster or {}).get("examples", [""])[0]

    def ids_of(cluster_id: str, state: dict) -> list[str]:
        cluster = (state or {}).get(cluster_id)
        if not cluster:
            raise OperatorActionError("먼저 질문 묶음을 고르세요 (pick a cluster first).")
        return list(cluster["question_ids"])

    def add_alternative(cluster_id: str, state: dict, faq_id: str, who: str) -> str:
        if not faq_id:
            raise OperatorActionError("FAQ를 고르세요 (pick an FAQ).")
        item = desk.add_alternatives(ids_of(cluster_id, state), faq_id, who)
        return f"✅ **{md_text(item.faq_id)}**에 유사 질문으로 추가했습니다. 이제 {len(item.variants)}개의 질문으로 찾습니다."

    def label(cluster_id: str, state: dict, faq_id: str, who: str) -> str:
        if not faq_id:
            raise OperatorActionError("FAQ를 고르세요 (pick an FAQ).")
        count = desk.right_answer(ids_of(cluster_id, state), faq_id, who)
        return f"✅ 질문 {count}개에 정답 **{md_text(faq_id)}**를 기록했습니다."

    def not_for_us(cluster_id: str, state: dict, who: str) -> str:
        count = desk.not_for_us(ids_of(cluster_id, state), who)
        return f"✅ 질문 {count}개를 '우리 질문 아님'으로 기록했습니다."

    def new_faq(cluster_id: str, state: dict, question: str, answer: str, category: str, who: str) -> str:
        ids = ids_of(cluster_id, state) if cluster_id else []
        item = desk.new_faq(question, answer, category or None, question_ids=ids, who=who)
        return f"✅ 새 FAQ **{md_text(item.faq_id)}**를 만들었습니다."

    # --- FAQ browser and editor -----------------------------------------------------------------------
    def find_faqs(text: str) -> tuple[Any, ...]:
        items = desk.search(text or "", limit=200)
        choices = [(f"{i.faq_id} · {i.question}", i.faq_id) for i in items]
        return [_faq_row(i) for i in items], gr.Dropdown(choices=choices, value=choices[0][1] if choices else None)

    def open_faq(faq_id: str) -> tuple[Any, ...]:
        if not faq_id:
            return "", "", "", "", ""
        item = desk.find(faq_id)
        return item.question, item.answer, "\n".join(item.alternatives), item.category or "", _faq_note(item)

    def save_faq(faq_id: str, question: str, answer: str, alternatives: str, category: str, who: str) -> tuple[Any, ...]:
        if not faq_id:
            raise OperatorActionError("FAQ를 고르세요 (pick an FAQ).")
        item = desk.edit_faq(faq_id, who, question=question, answer=answer,
                             alternatives=alternatives.splitlines(), category=category)
        return f"✅ 저장했습니다: {md_text(item.faq_id)}", _faq_note(item)

    def delete_faq(faq_id: str, who: str) -> str:
        if not faq_id:
            raise OperatorActionError("FAQ를 고르세요 (pick an FAQ).")
        return "✅ " + md_text(desk.delete_faq(faq_id, who))

    def export(fmt: str) -> str:
        write, _ = FORMATS[fmt]
        folder = Path(operator.upload_folder) / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=folder, prefix="faq-export-", suffix=f".{fmt}", delete=False)
        with handle:
            handle.write(write(desk.items()))
        return handle.name

    # --- analytics ------------------------------------------------------------------------------------
    def analytics(since: str) -> tuple[Any, ...]:
        data = compute_analytics(desk.engine, parse_since(since, cfg.inbox_days))
        top = "\n".join(f"| {md_text(f)} | {n:,} |" for f, n in data.top_faqs)
        table = f"\n\n| 많이 답한 FAQ | 횟수 |\n|---|---|\n{top}" if top else ""
        return summary_markdown(data) + table, outcomes_figure(data)

    with gr.Tab("📥 받은 질문", id="inbox"):
        gr.Markdown("답하지 못했거나(답 없음·되묻기), 확신이 낮았거나, 👎를 받은 질문을 비슷한 것끼리 묶어 보여 줍니다. "
                    "처리한 질문은 목록에서 빠집니다. (🛠 운영 탭의 비밀번호가 필요합니다.)")
        with gr.Row():
            since = gr.Textbox(value=f"{cfg.inbox_days}d", label="기간 (7d, 24h, 2024-05-01)", elem_id="inbox-since", scale=1)
            who = gr.Textbox(label="운영자 이름 (기록용)", elem_id="operator-name", scale=1)
            load = gr.Button("받은 질문 불러오기", variant="primary", elem_id="inbox-load", scale=1)
        status = gr.Markdown(elem_id="inbox-status")
        table = gr.Dataframe(headers=CLUSTER_HEADERS, interactive=False, label="질문 묶음", elem_id="inbox-table", wrap=True)
        clusters = gr.State({})
        with gr.Row():
            cluster = gr.Dropdown(label="처리할 묶음", choices=[], elem_id="inbox-cluster", scale=2)
            faq = gr.Dropdown(label="FAQ (입력해서 찾기; 가장 가까운 FAQ가 미리 골라집니다)", choices=[], filterable=True,
                              elem_id="inbox-faq", scale=2)
        detail = gr.Markdown(elem_id="inbox-detail")
        with gr.Row():
            add_btn = gr.Button("이 FAQ의 유사 질문으로 추가", variant="primary", elem_id="inbox-add-alt")
            label_btn = gr.Button("정답은 이 FAQ (기록만)", elem_id="inbox-label")
            oos_btn = gr.Button("우리 질문 아님", variant="stop", elem_id="inbox-oos")
        with gr.Accordion("새 FAQ로 만들기", open=False):
            new_q = gr.Textbox(label="질문", elem_id="inbox-new-question")
            new_a = gr.Textbox(label="답변", lines=4, elem_id="inbox-new-answer")
            new_c = gr.Textbox(label="분류", elem_id="inbox-new-category")
            new_btn = gr.Button("새 FAQ 만들기", elem_id="inbox-new")
        result = gr.Markdown(elem_id="inbox-result")

    with gr.Tab("📚 FAQ 관리", id="faqs"):
        with gr.Row():
            query = gr.Textbox(label="FAQ 검색 (ID·질문·답변·분류)", elem_id="faq-query", scale=3)
            search_btn = gr.Button("검색", elem_id="faq-search", scale=1)
        faq_table = gr.Dataframe(headers=FAQ_HEADERS, interactive=False, label="FAQ", elem_id="faq-table", wrap=True)
        picked = gr.Dropdown(label="편집할 FAQ", choices=[], filterable=True, elem_id="faq-pick")
        note = gr.Markdown(elem_id="faq-note")
        edit_q = gr.Textbox(label="대표 질문", elem_id="faq-question")
        edit_a = gr.Textbox(label="답변", lines=5, elem_id="faq-answer")
        edit_alts = gr.Textbox(label="유사 질문 (한 줄에 하나)", lines=5, elem_id="faq-alternatives")
        edit_c = gr.Textbox(label="분류", elem_id="faq-category")
        with gr.Row():
            save_btn = gr.Button("저장", variant="primary", elem_id="faq-save")
            delete_btn = gr.Button("삭제 (운영자 수정 되돌리기)", variant="stop", elem_id="faq-delete")
        faq_result = gr.Markdown(elem_id="faq-result")
        with gr.Row():
            csv_btn = gr.Button("CSV로 내보내기", elem_id="export-csv")
            xlsx_btn = gr.Button("XLSX로 내보내기", elem_id="export-xlsx")
        download = gr.File(label="내보낸 파일", interactive=False, elem_id="export-file")

    with gr.Tab("📊 통계", id="analytics"):
        with gr.Row():
            stats_since = gr.Textbox(value=f"{cfg.inbox_days}d", label="기간", elem_id="analytics-since", scale=3)
            stats_btn = gr.Button("통계 보기", elem_id="analytics-load", scale=1)
        stats_md = gr.Markdown(elem_id="analytics-summary")
        plot = gr.Plot(label="날짜별 질문", elem_id="analytics-plot")

    inbox_outputs = [table, clusters, cluster, faq, detail, new_q, status]
    load.click(guarded(load_inbox), [since, password], inbox_outputs, **PRIVATE)
    cluster.input(guarded(pick_cluster), [cluster, clusters, password], [faq, detail, new_q], **PRIVATE)
    after = {"fn": guarded(load_inbox), "inputs": [since, password], "outputs": inbox_outputs, **PRIVATE}
    add_btn.click(guarded(add_alternative), [cluster, clusters, faq, who, password], [result], **PRIVATE).success(**after)
    label_btn.click(guarded(label), [cluster, clusters, faq, who, password], [result], **PRIVATE).success(**after)
    oos_btn.click(guarded(not_for_us), [cluster, clusters, who, password], [result], **PRIVATE).success(**after)
    new_btn.click(guarded(new_faq), [cluster, clusters, new_q, new_a, new_c, who, password], [result], **PRIVATE).success(**after)

    search_btn.click(guarded(find_faqs), [query, password], [faq_table, picked], **PRIVATE)
    query.submit(guarded(find_faqs), [query, password], [faq_table, picked], **PRIVATE)
    picked.change(guarded(open_faq), [picked, password], [edit_q, edit_a, edit_alts, edit_c, note], **PRIVATE)
    save_btn.click(guarded(save_faq), [picked, edit_q, edit_a, edit_alts, edit_c, who, password], [faq_result, note], **PRIVATE)
    delete_btn.click(guarded(delete_faq), [picked, who, password], [faq_result], **PRIVATE)
    csv_btn.click(guarded(lambda: export("csv")), [password], [download], **PRIVATE)
    xlsx_btn.click(guarded(lambda: export("xlsx")), [password], [download], **PRIVATE)
    stats_btn.click(guarded(analytics), [stats_since, password], [stats_md, plot], **PRIVATE)
    build_dictionary_tab(service, guarded, password)


def _cluster_row(index: int, cluster: Cluster) -> list[Any]:
    nearest = cluster.nearest
    reasons = ", ".join(f"{REASONS.get(k, k)} {n}" for k, n in sorted(cluster.reasons.items()))
    return [
        index + 1, cluster.size, cluster.examples[0], " / ".join(cluster.examples[1:]),
        f"{cluster.first_seen:%m-%d %H:%M}", f"{cluster.last_seen:%m-%d %H:%M}",
        f"{nearest[0]} · {nearest[1]}" if nearest else "", nearest[2] if nearest else None, reasons,
    ]


def _cluster_detail(cluster: dict | None) -> str:
    if not cluster:
        return ""
    examples = "\n".join(f"- {md_text(text)}" for text in cluster["examples"])
    return f"**질문 {cluster['size']}개** · 처음 {cluster['first_seen'][:16]} · 마지막 {cluster['last_seen'][:16]}\n\n{examples}"


def _faq_row(item: FaqItem) -> list[Any]:
    return [item.faq_id, item.category or "", item.question, len(item.alternatives), item.source, "✏️" if item.edited else ""]


def _faq_note(item: FaqItem) -> str:
    if item.override_of:
        return f"✏️ 운영자가 수정한 FAQ입니다 (원본: {md_text(item.override_of)}). 삭제하면 원본 내용으로 돌아갑니다."
    if item.edited:
        return "✏️ 운영자가 만든 FAQ입니다."
    return f"출처: {md_text(item.source)} (저장하면 운영자 수정본이 원본을 대신합니다)"
