"""Speed: ingestion vs the encoder's own throughput, and question latency vs the encoder's own time.

    python bench/speed.py                         # --n 1000 --sizes 10000,100000
    python bench/speed.py --quick                 # --n 200 --sizes 2000,10000, 50 questions
    python bench/speed.py --profile               # also cProfile the hybrid questions at the largest size
    python bench/speed.py --sizes 10000,100000,1000000 --chroma-cap 100000   # 1M: the BM25 cache side only

(1) Throughput: N generated short Korean questions encoded in batches by `encoder.encode_questions`
    (sentences/s) vs the same N questions as a CSV through the real ingestion (`ingest_paths`) into a
    fresh embedded store (records/s). Goal: ingestion ≥ 0.9 × the encoder. Also each run's CPU per
    record split by thread (bench/thread_cpu.py): ONNX Runtime's lanes, Chroma's Rust threads, the rest.
(2) Latency: `answerer.ask` in hybrid mode over stores of each size, vs `encoder.encode_questions`
    of the same single question, interleaved so both see the same machine load (how much the rest of a question
    adds to the configured encoder; the goals are against the torch encoder, below).
    Stores bigger than --real-cap records hold --real-cap really encoded generated questions plus
    generated texts with random unit vectors (384-d random vectors are near-orthogonal to real ones,
    so they cost Chroma and BM25 the full work but never win a dense match), as the output says.
    Each stored FAQ has two variants (the same item, topic and action with two endings), so the
    decision model is trained on the store as on a real one and the asks include the answer decision.
    Also reported per size: the time of each retrieval step (encode, Chroma query, BM25, fusion)
    and of the lexical cache's refresh check (store fingerprint + cache load), which runs every
    `refresh_s` seconds inside a question.
(3) Scale, per size: RSS of this process (the encoder loaded), ingest time, BM25 cache build / load
    time, one new FAQ answerable (upsert + the incremental cache update), and the BM25 cache alone
    (bench/lexical_scale.py: build, save, load, memory, one-record update, query with and without a
    category filter). Sizes above --chroma-cap (Chroma ingests ~1k records/s on two cores, so 1M
    would take ~20 minutes) get only the cache part. Ratios are also given against the torch
    encoder's single-question time when the configured backend is another (goals: 100k ≤ 0.8 ×,
    1M ≤ 1.0 ×).
The two cores of a development machine are often shared: timings taken under load are noisy; the
script reports the machine's load average next to them.
"""
from __future__ import annotations

import argparse
import cProfile
import csv
import io
import logging
import os
import pstats
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import e5_settings, emit, markdown_table  # noqa: E402
from bench.lexical_scale import measure as measure_lexical, rss_mb, timed  # noqa: E402
from bench.thread_cpu import cpu_of, name_threads  # noqa: E402
from chatbot.encoder import Encoder, load_encoder  # noqa: E402
from chatbot.evaluation import FaqItem, faq_records, percentile, temporary_pipeline  # noqa: E402
from chatbot.lexical import LexicalIndex, cache_folder, load_or_build, top_positions  # noqa: E402
from chatbot.records import Record  # noqa: E402
from chatbot.pipeline import Pipeline  # noqa: E402
from chatbot.settings import Settings  # noqa: E402
from chatbot.store import Store  # noqa: E402
from chatbot.text import forget_analyses  # noqa: E402

# --- synthetic Korean FAQ questions ----------------------------------------------------------------------
ITEMS = ["운동화", "노트북", "셔츠", "냉장고", "세탁기", "청바지", "가방", "모니터", "키보드", "마우스", "이어폰", "휴대폰",
         "케이스", "충전기", "원피스", "코트", "패딩", "양말", "모자", "선글라스", "시계", "반지", "화장품", "향수", "샴푸",
         "쌀", "과일", "생수", "커피", "라면", "소파", "침대", "책상", "의자", "조명", "커튼", "이불", "베개", "캠핑용품",
         "자전거", "유모차", "장난감", "도서", "문구", "프린터", "태블릿", "카메라", "스피커", "에어컨", "선풍기"]
TOPICS = ["배송", "환불", "교환", "반품", "주문", "결제", "쿠폰", "적립금", "포인트", "영수증", "세금계산서", "할부", "설치",
          "수리", "보증", "재고", "입고", "예약", "선물 포장", "사은품", "리뷰", "정기 배송", "해외 배송", "묶음 배송",
          "퀵 배송", "주소", "옵션", "사이즈", "색상", "가격", "할인", "멤버십", "회원 등급", "비밀번호", "아이디",
          "본인 인증", "알림", "문자", "이메일", "고객센터"]
ACTIONS = ["취소", "변경", "조회", "신청", "확인", "등록", "삭제", "연장", "발급", "적용", "사용", "문의", "요청", "수정",
           "해지", "재발송", "추가", "접수", "결제", "환급"]
ENDINGS = ["어떻게 하나요?", "방법 알려주세요", "가능한가요?", "언제 되나요?", "어디서 하나요?", "하고 싶어요",
           "안 돼요", "얼마나 걸려요?", "비용이 있나요?", "해도 되나요?", "왜 안 되죠?", "절차가 궁금합니다",
           "기간이 어떻게 되나요?", "하려면 뭐가 필요해요?", "문의드립니다"]


def generate_questions(n: int, seed: int = 0, offset: int = 0) -> list[str]:
    """n distinct questions `ITEM TOPIC ACTION ENDING` from a seeded permutation of all combinations."""
    sizes = (len(ITEMS), len(TOPICS), len(ACTIONS), len(ENDINGS))
    total = int(np.prod(sizes))
    if offset + n > total:
        raise ValueError(f"only {total} distinct questions can be generated")
    order = np.random.default_rng(seed).permutation(total)[offset : offset + n]
    out = []
    for code in order.tolist():
        code, e = divmod(code, sizes[3])
        code, a = divmod(code, sizes[2])
        i, t = divmod(code, sizes[1])
        out.append(f"{ITEMS[i]} {TOPICS[t]} {ACTIONS[a]} {ENDINGS[e]}")
    return out


def faq_variants(n: int, seed: int = 2) -> list[tuple[str, str]]:
    """n (FAQ id, question) records, two variants per FAQ: the same `ITEM TOPIC ACTION` with two different
    endings, as a real FAQ words one question twice. So a variant asked against the rest of the store finds
    its sibling, and the decision model can be trained on the store as on a real one (two unrelated texts per
    FAQ gave it nothing but wrong rows). Beyond the 40,000 distinct cores, FAQs repeat them with a number."""
    rng = np.random.default_rng(seed)
    cores = [(i, t, a) for i in ITEMS for t in TOPICS for a in ACTIONS]
    order = rng.permutation(len(cores))
    out: list[tuple[str, str]] = []
    for faq in range((n + 1) // 2):
        item, topic, action = cores[order[faq % len(cores)]]
        repeat = f" {faq // len(cores) + 1}" if faq >= len(cores) else ""
        for ending in rng.choice(len(ENDINGS), 2, replace=False).tolist():
            out.append((f"faq-{faq}", f"{item} {topic} {action} {ENDINGS[ending]}{repeat}"))
    return out[:n]


def asked_questions(n: int, seed: int) -> list[str]:
    """Questions users ask: other combinations than the stored ones (stored: seed 2), reworded."""
    return [q.replace("어떻게 하나요?", "어떻게 해요") for q in generate_questions(n, seed=seed)]


def load_average() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- (1) throughput -----------------------------------------------------------------------------------------
def throughput(settings: Settings, encoder: Encoder, n: int, workdir: Path) -> tuple[list[list[Any]], list[list[Any]]]:
    """The encoder alone (before and after) and the real ingestion of the same texts: rates, and where each
    one's CPU went per record (the ONNX lanes, Chroma's own threads, the rest of the process)."""
    import chromadb  # noqa: F401  (a one-time ~0.8 s import, a cost of starting the process, not of ingesting)

    from ingest.sync import IngestReport, ingest_paths, open_store

    texts = generate_questions(n, seed=1)
    encoder.encode_questions(texts[:64])  # warm-up
    _, encode_s, encode_cpu = cpu_of(lambda: encoder.encode_questions(texts))
    log(f"encoded {n} questions in {encode_s:.1f}s")

    csv_path = workdir / "speed-faq.csv"
    with open(csv_path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "question", "answer"])
        writer.writerows([f"q{i}", text, f"답변 {i}: 고객센터로 문의해 주세요."] for i, text in enumerate(texts))
    ingest_settings = settings.with_overrides(store={"host": None, "path": str(workdir / "ingest-chroma"),
                                                     "collection": "speed", "cache_dir": str(workdir / "cache")})
    # the store is opened inside the timing and closed after the CPU reading: Chroma's threads end with it
    def ingest() -> tuple[Store, IngestReport]:
        store = open_store(ingest_settings, encoder)[0]
        return store, ingest_paths(ingest_settings, "faq", [csv_path], encoder=encoder, store=store)

    (store, report), ingest_s, ingest_cpu = cpu_of(ingest)
    store.close()
    written = report.total().written
    log(f"ingested {written} records in {ingest_s:.1f}s")

    _, encode_again_s, encode_again_cpu = cpu_of(lambda: encoder.encode_questions(texts))  # the load may have changed meanwhile
    encode_rate = n / ((encode_s + encode_again_s) / 2)
    ingest_rate = written / ingest_s
    rates = [
        ["encoder.encode_questions (batched, mean of a run before and after)", n, f"{encode_rate:.1f}", "1.00"],
        ["ingest_paths(faq CSV) into a fresh embedded store", written, f"{ingest_rate:.1f}",
         f"{ingest_rate / encode_rate:.2f} (goal ≥ 0.90)"],
    ]
    cpu = [cpu_row("encoder alone, run before", encode_cpu, n), cpu_row("ingest_paths", ingest_cpu, written),
           cpu_row("encoder alone, run after", encode_again_cpu, n)]
    return rates, cpu


def cpu_row(what: str, spent: Counter[str], records: int) -> list[Any]:
    """ms of CPU per record: the ONNX lanes, Chroma's Rust threads, everything else, all."""
    lanes = spent["onnx-lane"]
    chroma = sum(seconds for name, seconds in spent.items() if name.startswith(("tokio", "sqlx")))
    per = 1000 / max(records, 1)
    return [what, f"{lanes * per:.2f}", f"{chroma * per:.2f}", f"{(spent['(all)'] - lanes - chroma) * per:.2f}",
            f"{spent['(all)'] * per:.2f}"]


# --- (2) latency --------------------------------------------------------------------------------------------------
def build_store(settings: Settings, encoder: Encoder, size: int, real_cap: int, vectors_cache: dict[str, np.ndarray],
                workdir: Path) -> tuple[Pipeline, int]:
    variants = faq_variants(size, seed=2)
    texts = [text for _, text in variants]
    real = min(size, real_cap)
    todo = [t for t in texts[:real] if t not in vectors_cache]
    if todo:
        started = time.perf_counter()
        vectors_cache.update(zip(todo, encoder.encode_questions(todo)))
        log(f"encoded {len(todo)} FAQ questions in {time.perf_counter() - started:.0f}s")
    rng = np.random.default_rng(size)
    fake = rng.normal(size=(size - real, encoder.dimension)).astype(np.float32)
    fake /= np.linalg.norm(fake, axis=1, keepdims=True).clip(1e-9)
    matrix = np.vstack([np.stack([vectors_cache[t] for t in texts[:real]]), fake]) if real else fake
    items = [FaqItem(text, faq_id, f"답변 {faq_id}") for faq_id, text in variants]
    started = time.perf_counter()
    pipeline = temporary_pipeline(settings, faq_records(items), workdir / f"store-{size}", encoder=encoder,
                                  vectors=matrix, collection=f"speed-{size}")
    log(f"stored {size} records in {time.perf_counter() - started:.0f}s")
    return pipeline, real


def step_times(pipeline: Pipeline, questions: list[str]) -> dict[str, float]:
    """p50 ms of each step of a hybrid question: the Retriever's public steps that Retriever._hybrid composes."""
    retriever, store, encoder = pipeline.retriever, pipeline.store, pipeline.encoder
    index = retriever.lexical
    cand = pipeline.settings.retrieval.candidates
    steps: dict[str, list[float]] = {k: [] for k in (
        "encode", "chroma nearest ids", "texts from cache", "spacing + morphemes", "bm25 scores", "sort lexical",
        "cosines of lexical-only (unpruned)", "total ask")}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        out = fn()
        steps[name].append((time.perf_counter() - started) * 1000)
        return out

    for q in questions:
        vector = timed("encode", lambda: encoder.encode_questions([q])[0])
        nearest = timed("chroma nearest ids", lambda: store.nearest(vector, cand))
        ids = timed("texts from cache", lambda: retriever.dense_hits(index, nearest))
        forget_analyses()  # the latency table asked these questions: time a new question's Kiwi analysis
        tokens = timed("spacing + morphemes", lambda: index.query_tokens(retriever.lexical_text(q)))  # beside the encoder
        scores = timed("bm25 scores", lambda: index.scores(tokens))
        top = timed("sort lexical", lambda: top_positions(scores, cand))
        missing = [index.records.ids[i] for i in top if index.records.ids[i] not in ids]
        timed("cosines of lexical-only (unpruned)", lambda: retriever.cosines(missing, vector))
        timed("total ask", lambda: pipeline.answerer.ask(q, mode="hybrid"))
    return {k: percentile(v, 50) for k, v in steps.items()}


def refresh_cost(pipeline: Pipeline) -> dict[str, float]:
    """What the lexical cache's periodic check costs at this size (it runs inside some question)."""
    out = {}
    started = time.perf_counter()
    pipeline.store.fingerprint()
    out["store.fingerprint()"] = (time.perf_counter() - started) * 1000
    pipeline.retriever.refresh()
    current = pipeline.retriever.lexical  # up to date with the store (add_one_faq changed it)
    started = time.perf_counter()
    load_or_build(pipeline.store, pipeline.settings.lexical, pipeline.settings.text.typo_tolerant, current=current)
    out["load_or_build (store unchanged)"] = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    pipeline.store.ids()
    out["store.ids() (listed by an update)"] = (time.perf_counter() - started) * 1000
    return out


def latency(pipeline: Pipeline, questions: list[str], torch_encoder: Encoder | None = None, block: int = 10
            ) -> tuple[list[float], list[float], list[float]]:
    """Ask (hybrid) and the configured encoder alone for each question, and (when another backend is
    configured) the torch encoder alone, in alternating blocks of `block` questions: all see the same
    machine load over the run, but a torch call never runs right before an ask. Interleaving them call by
    call made each slower (torch's worker threads still spin for a few ms after a call and compete with
    ONNX Runtime's: ask p50 +3–5 ms, torch +3 ms on the sample), which the app, which never runs torch
    per question, does not see."""
    ask_ms, encode_ms, torch_ms = [], [], []
    for start in range(0, len(questions), block):
        part = questions[start:start + block]
        for q in part:
            ask_ms.append(timed(lambda: pipeline.answerer.ask(q, mode="hybrid"))[1] * 1000)
            encode_ms.append(timed(lambda: pipeline.encoder.encode_questions([q]))[1] * 1000)
        if torch_encoder is not None:
            torch_ms += [timed(lambda: torch_encoder.encode_questions([q]))[1] * 1000 for q in part]
    return ask_ms, encode_ms, torch_ms or encode_ms


def add_one_faq(pipeline: Pipeline) -> float:
    """Seconds from upserting one new FAQ to the lexical cache answering it (the incremental update)."""
    text = "적립 포인트는 언제 소멸되나요?"
    record = Record("faq-speed-new", text, "faq", "speed.csv", {"faq_id": "speed-new", "category": "포인트"})
    started = time.perf_counter()
    pipeline.store.upsert([record], pipeline.encoder.encode_questions([text]))
    index = load_or_build(pipeline.store, pipeline.settings.lexical, pipeline.settings.text.typo_tolerant,
                          current=pipeline.retriever.lexical)
    seconds = time.perf_counter() - started
    assert index.search(text, 1)[0].record_id == record.id, "the new FAQ was not found"
    return seconds


def goal(size: int) -> str:
    return "≤ 0.80" if size <= 100_000 else "≤ 1.00"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="questions for the throughput comparison")
    parser.add_argument("--sizes", default="10000,100000", help="store sizes for the latency comparison")
    parser.add_argument("--questions", type=int, default=100, help="questions asked per size")
    parser.add_argument("--real-cap", type=int, default=10000, help="records really encoded per store; the rest random vectors")
    parser.add_argument("--quick", action="store_true", help="--n 200 --sizes 2000,10000 --questions 50 --real-cap 2000")
    parser.add_argument("--model", default=None, help="encoder folder (default: the configured one; e5 → offline export)")
    parser.add_argument("--profile", action="store_true", help="cProfile the asks at the largest size (top 25 by cumulative time)")
    parser.add_argument("--out", type=Path, default=None, help="also write the tables (markdown) here")
    parser.add_argument("--chroma-cap", type=int, default=100_000,
                        help="larger sizes are measured for the BM25 cache only (Chroma ingest ~1k records/s here)")
    parser.add_argument("--distinct-texts", type=int, default=50_000,
                        help="BM25-only sizes: distinct synthetic texts (each tokenised by kiwi once), repeated")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.sizes, args.questions, args.real_cap = 200, "2000,10000", 50, 2000
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    logging.basicConfig(level=logging.WARNING)
    name_threads()  # before the encoder's lanes start: the throughput table splits the CPU by thread

    # No recent-question cache: the encoder alone is timed on the questions the ask just encoded, and would
    # answer them from it in ~0 ms (the ask's own encode, first in each pair, never hits it).
    encoder_overrides: dict[str, Any] = {"question_cache": 0, **({"model": args.model} if args.model else {})}
    settings = e5_settings(encoder=encoder_overrides)
    encoder = load_encoder(settings.encoder)
    if encoder.onnx is not None:
        encoder.onnx.wait_fused()  # a first export makes its fused graph in the background: time what is served after it
    torch_encoder = None
    if encoder.backend != "torch":
        torch_encoder = load_encoder(settings.encoder.model_copy(update={"backend": "torch", "micro_batch_max": 1}))
    encoder.encode_questions(["워밍업 질문입니다"])
    sections = [f"Encoder {encoder.model_id}, backend {encoder.backend} (torch baseline: "
                f"{'also timed' if torch_encoder else 'the same'}), torch threads "
                f"{__import__('torch').get_num_threads()}, RSS of this process with the encoder(s) loaded "
                f"{rss_mb():.0f} MB, load average at start {load_average()}"]
    workdir = Path(tempfile.mkdtemp(prefix="faqbot-speed-"))
    try:
        rows, cpu_rows = throughput(settings, encoder, args.n, workdir)
        sections.append("### Throughput\n" + markdown_table(["what", "records", "per second", "ratio"], rows))
        sections.append("### Where the throughput runs' CPU went (ms per record, both cores together)\n" + markdown_table(
            ["run", "ONNX Runtime lanes", "Chroma's threads", "the rest (Python, ingestion's own threads)", "all"], cpu_rows))

        questions = asked_questions(args.questions, seed=3)
        encoder.encode_questions(questions)  # warm-up: torch kernels for these lengths
        # other questions than the timed ones (asking the same question twice in a row is ~1.5 ms faster at 100k)
        warm_up = asked_questions(args.questions, seed=4)
        vectors_cache: dict[str, np.ndarray] = {}
        latency_rows, step_rows, refresh_rows, scale_rows = [], [], [], []
        for size in (s for s in sizes if s <= args.chroma_cap):
            started = time.perf_counter()
            pipeline, real = build_store(settings, encoder, size, args.real_cap, vectors_cache, workdir)
            ingest_s = time.perf_counter() - started
            started = time.perf_counter()
            pipeline.retriever.lexical  # builds (and caches) the BM25 index
            build_s = time.perf_counter() - started
            log(f"BM25 index of {size} records in {build_s:.0f}s")
            if pipeline.answerer.decision is not None:  # trained in the background on first use: not during the timings
                started = time.perf_counter()
                pipeline.answerer.decision.wait()
                log(f"decision model for {size} records in {time.perf_counter() - started:.0f}s")
            _, load_s = timed(lambda: LexicalIndex.load(cache_folder(pipeline.store.settings)))
            for q in warm_up:  # a serving process is warm: its index pages and caches have been touched
                pipeline.answerer.ask(q, mode="hybrid")
            if args.profile and size == sizes[-1]:
                profiler = cProfile.Profile()
                profiler.enable()
            ask_ms, encode_ms, torch_ms = latency(pipeline, questions, torch_encoder)
            if args.profile and size == sizes[-1]:
                profiler.disable()
                buffer = io.StringIO()
                pstats.Stats(profiler, stream=buffer).sort_stats("cumulative").print_stats(25)
                sections.append(f"### cProfile of {len(questions)} hybrid asks at {size}\n```\n{buffer.getvalue()[:6000]}\n```")
            p50_ask, p95_ask = percentile(ask_ms, 50), percentile(ask_ms, 95)
            p50_enc, p95_enc = percentile(encode_ms, 50), percentile(encode_ms, 95)
            p50_torch = percentile(torch_ms, 50)
            latency_rows.append([f"{size:,}", f"{real:,} encoded + {size - real:,} random", f"{p50_ask:.1f}", f"{p95_ask:.1f}",
                                 f"{p50_enc:.1f}", f"{p95_enc:.1f}", f"{p50_ask / p50_enc:.2f}",
                                 f"{p50_torch:.1f}", f"{p50_ask / p50_torch:.2f} (goal {goal(size)})", load_average()])
            scale_rows.append([f"{size:,}", f"{ingest_s:.0f}", f"{build_s:.1f}", f"{load_s:.2f}",
                               f"{add_one_faq(pipeline):.2f} (goal ≤ 5)", f"{rss_mb():.0f}"])
            steps = step_times(pipeline, questions[: min(50, len(questions))])
            step_rows.append([f"{size:,}", *[f"{v:.1f}" for v in steps.values()]])
            step_header = ["records", *steps.keys()]
            refresh = refresh_cost(pipeline)
            refresh_rows.append([f"{size:,}", *[f"{v:.0f}" for v in refresh.values()]])
            refresh_header = ["records", *[f"{k} ms" for k in refresh]]
            pipeline.store.close()  # frees this size's embedded Chroma before the next
            del pipeline
        if latency_rows:  # some size was stored in Chroma (`--sizes ""` measures the throughput only)
            sections.append("### Question latency (hybrid `answerer.ask`) vs the encoder alone, ms\n" + markdown_table(
                ["records", "store", "ask p50", "ask p95", "encoder p50", "encoder p95", "p50 ratio", "torch encoder p50",
                 "ask / torch p50", "load avg"], latency_rows))
            sections.append("### Store sizes in Chroma: ingest, BM25 cache, one new FAQ, memory\n" + markdown_table(
                ["records", "ingest s (random vectors beyond the cap)", "BM25 build s", "BM25 cache load s",
                 "one new FAQ answerable s", "process RSS MB"], scale_rows))
        lexical_rows = []
        texts = generate_questions(args.distinct_texts, seed=2)
        for size in sizes:
            row = measure_lexical(size, texts, questions, settings.lexical)
            log(f"BM25 cache alone at {size}: {row}")
            lexical_rows.append([f"{v:,}" if isinstance(v, int) else f"{v:.2f}" for v in row.values()])
            lexical_header = list(row)
        if lexical_rows:
            sections.append("### BM25 cache alone (synthetic records, no Chroma)\n" + markdown_table(lexical_header, lexical_rows))
        if step_rows:  # some size was stored in Chroma
            sections.append("### Where a hybrid question's time goes (p50 ms per step)\n" + markdown_table(step_header, step_rows))
            sections.append("### Lexical cache refresh check (runs inside a question every refresh_s = 30 s)\n"
                            + markdown_table(refresh_header, refresh_rows))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    emit("\n\n".join(sections), args.out)
    return 0


if __name__ == "__main__":
    random.seed(0)
    sys.exit(main())
