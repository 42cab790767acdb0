"""The BM25 cache at 10k–1M records without Chroma: full build, save, load, RSS, one-record update, query.

Used by bench/speed.py for every size (sizes above its --chroma-cap get only this part). Texts are
synthesised cheaply: `distinct` generated questions repeated (kiwi tokenises each distinct text
once, ~2k texts/s on two shared cores, so 1M distinct texts would take ~10 minutes); the records
are nevertheless all distinct (own id, FAQ id, answer, content hash) and the BM25 matrix has the
size a real 1M store gives.
"""
from __future__ import annotations

import gc
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chatbot.evaluation import percentile
from chatbot.lexical import LexicalIndex, top_positions
from chatbot.records import content_hash
from chatbot.settings import LexicalSettings
from chatbot.store import StoredRecords

CATEGORIES = ["배송", "환불", "교환", "주문", "결제", "회원", "쿠폰", "포인트", "설치", "수리", "예약", "기타"]


def rss_mb() -> float:
    """This process's resident memory (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def array_mb(index: LexicalIndex) -> float:
    """Memory of the loaded index's numpy arrays (RSS deltas are blurred by the allocator reusing freed pages)."""
    arrays = [*index.columns.arrays().values(), index.tokens.ptr, index.tokens.ids, index.matrix.data,
              index.matrix.indices, index.matrix.indptr, index.position.order, index.position.sorted]
    return sum(a.nbytes for a in arrays) / 2**20


def synthetic_records(texts: list[str], size: int, start: int = 0) -> StoredRecords:
    """`size` FAQ variant records over the given texts (cycled), metadata shaped like ingest's."""
    ids, out_texts, metas = [], [], []
    for i in range(start, start + size):
        text = texts[i % len(texts)]
        digest = content_hash("speed", str(i), text)
        ids.append(f"faq-{digest}")
        out_texts.append(text)
        metas.append({"faq_id": f"faq-{i // 2}", "variant": i % 2, "question": text, "answer": f"답변 {i // 2}",
                      "category": CATEGORIES[i % len(CATEGORIES)], "content_hash": digest, "kind": "faq",
                      "source": "speed.csv"})
    return StoredRecords(ids, out_texts, metas)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def measure(size: int, texts: list[str], questions: list[str], settings: LexicalSettings) -> dict[str, Any]:
    """Build, save, load (in this process, the built copy freed first), add one record, ask."""
    records = synthetic_records(texts, size)
    built, build_s = timed(lambda: LexicalIndex.build(records, settings, f"bench-{size}"))
    folder = Path(tempfile.mkdtemp(prefix="faqbot-bm25-scale-")) / "cache"
    try:
        _, save_s = timed(lambda: built.save(folder))
        disk_mb = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
        del built, records
        gc.collect()
        index, load_s = timed(lambda: LexicalIndex.load(folder))
        assert index is not None, "the cache just saved did not load"
        assert "probe" not in index.position  # lookups ready, as a question needs them
        loaded_mb = array_mb(index)
        new = synthetic_records(["적립 포인트는 언제 소멸되나요?"], 1, start=size)
        ids = [*index.records.ids, *new.ids]
        updated, update_s = timed(lambda: index.updated(ids, lambda wanted: new, settings, f"bench-{size}+1"))
        assert updated.search("포인트 소멸", 1)[0].record_id == new.ids[0]
        plain, filtered = [], []
        for q in questions:
            for where, sink in ((None, plain), ({"category": "환불"}, filtered)):
                _, seconds = timed(lambda: top_positions(_scores(updated, q, where), 50))
                sink.append(seconds * 1000)
        return {"records": size, "distinct texts": min(size, len(texts)), "build s": build_s, "save s": save_s,
                "cache MB on disk": disk_mb, "load s": load_s, "index arrays MB": loaded_mb, "process RSS MB": rss_mb(),
                "add 1 record s": update_s, "query p50 ms": percentile(plain, 50), "query p95 ms": percentile(plain, 95),
                "category query p50 ms": percentile(filtered, 50), "category query p95 ms": percentile(filtered, 95)}
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)


def _scores(index: LexicalIndex, question: str, where: dict[str, Any] | None):
    scores = index.scores(index.query_tokens(question))
    return scores * index.mask(where) if where else scores
