"""The ONNX Runtime backend gives the torch vectors, caches its export per model content, and falls back cleanly."""
from __future__ import annotations

import itertools
import logging
import random
import threading
from pathlib import Path

import numpy as np
import pytest

from chatbot import onnx_encoder
from chatbot.encoder import Encoder, _load_cached
from chatbot.onnx_encoder import (FUSED_FILE, INT8_FILE, MODEL_FILE, WEIGHTS_SUFFIX, OnnxUnavailableError, fused_graph,
                                  onnx_dir)
from chatbot.settings import EncoderSettings

SUBJECTS = ["배송", "환불", "교환", "쿠폰", "비밀번호", "회원 탈퇴", "적립금", "주문 취소", "영수증", "고객센터",
            "결제 수단", "해외 배송", "선물 포장", "재입고 알림", "앱 로그인"]
ASKS = ["은 언제 되나요?", " 어떻게 하나요", "이 안 돼요 ㅠㅠ", " 관련해서 문의드립니다.", " 방법 좀 알려주세요!!",
        " 가능한가요", "?", " 했는데 아직 처리가 안 됐어요. 확인 부탁드립니다", " 조건이 궁금합니다 (주말 포함?)",
        " is it possible? 영어로 물어봐도 되나요"]
OPENERS = ["", "혹시 ", "안녕하세요. ", "급해요! "]


def korean_sentences(n: int = 320, seed: int = 7) -> list[str]:
    """Varied inputs: short and long, punctuation, English mixed in, emoji, and some past any max length."""
    rng = random.Random(seed)
    base = [o + s + a for o, s, a in itertools.product(OPENERS, SUBJECTS, ASKS)]
    rng.shuffle(base)
    out = base[: n - 20]
    out += [" ".join(rng.sample(base, 12)) for _ in range(10)]  # several hundred tokens: truncation
    out += ["네", "ㅋㅋㅋ", "😀 배송 🚚", "   띄어쓰기   많은   질문  ", "A/S 1588-0000 09:00~18:00", "환불" * 40,
            "Where is my order?", "주문번호 20240101-0001 조회", "가", "?!"]
    return out[:n]


def _load(model: Path, **fields) -> Encoder:
    """A fresh (uncached) encoder, so monkeypatched modules are really used."""
    return _load_cached.__wrapped__(EncoderSettings(model=str(model), device="cpu", **fields).model_dump_json())


def _assert_same_vectors(a: Encoder, b: Encoder, texts: list[str]) -> None:
    for encode in ("encode_questions", "encode_passages"):
        va, vb = getattr(a, encode)(texts), getattr(b, encode)(texts)
        cosines = np.sum(va * vb, axis=1)
        assert cosines.min() >= 0.9999, (encode, float(cosines.min()), texts[int(cosines.argmin())])


def test_tiny_onnx_matches_torch(tiny_model_dir):
    onnx, torch = _load(tiny_model_dir, backend="onnx"), _load(tiny_model_dir, backend="torch")
    assert (onnx.backend, torch.backend) == ("onnx", "torch")
    texts = korean_sentences()
    assert len(set(texts)) >= 300
    _assert_same_vectors(onnx, torch, texts)
    # one text alone (no padding) and inside a padded batch give the same vector
    assert np.allclose(onnx.encode_questions(texts[:1])[0], onnx.encode_questions(texts[:40])[0], atol=1e-5)
    assert onnx.identity() == torch.identity()  # a store built by one backend is read by the other
    assert (onnx_dir(tiny_model_dir) / MODEL_FILE).is_file()


@pytest.mark.e5
def test_e5_onnx_matches_torch(e5_dir):
    onnx, torch = _load(e5_dir, backend="onnx"), _load(e5_dir, backend="torch")
    _assert_same_vectors(onnx, torch, korean_sentences())
    assert onnx.identity() == torch.identity()


def _runs_on_fused(encoder: Encoder) -> list[bool]:
    """Records, for each ONNX run from now on, whether the fused graph's session ran it."""
    runs: list[bool] = []
    original = encoder.onnx._run
    encoder.onnx._run = lambda rows, session=None: runs.append(
        session is not None and session is encoder.onnx.fused_session) or original(rows, session)
    return runs


def test_one_text_runs_on_the_fused_graph_with_the_same_vectors(tiny_model_dir):
    """onnxruntime's transformer fusions make one question faster and batches slower: one-text calls run on
    the fused graph, calls of several on the plain one, and both give the same vectors."""
    encoder = _load(tiny_model_dir, backend="onnx")
    assert encoder.onnx.wait_fused(60) and (onnx_dir(tiny_model_dir) / FUSED_FILE).is_file()
    runs = _runs_on_fused(encoder)
    texts = korean_sentences()
    one_by_one = np.vstack([encoder.encode_questions([t]) for t in texts])
    assert runs == [True] * len(texts)
    runs.clear()
    together = encoder.encode_questions(texts)
    assert runs and not any(runs)
    assert np.sum(one_by_one * together, axis=1).min() >= 0.9999


def test_a_fused_graph_giving_other_vectors_is_not_served(tiny_model_dir, tmp_path, caplog):
    """The fusions match patterns; a graph they misread (here: its weights scaled, as a wrong fusion would
    change them) is caught by the probe at load, and one-text calls stay on the plain graph."""
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy, ignore=shutil.ignore_patterns("onnx"))
    right = _load(copy, backend="onnx")
    assert right.onnx.wait_fused(60)
    assert fused_graph(onnx_dir(copy) / MODEL_FILE, heads=2, hidden=32) == onnx_dir(copy) / FUSED_FILE
    weights = np.memmap(onnx_dir(copy) / (FUSED_FILE + WEIGHTS_SUFFIX), dtype=np.float32, mode="r+")
    weights *= 1.5
    weights.flush()
    del weights
    with caplog.at_level(logging.WARNING, logger="chatbot.onnx_encoder"):
        wrong = _load(copy, backend="onnx")
    assert wrong.onnx.fused_session is None
    assert "gives other vectors" in caplog.text
    texts = korean_sentences(40)
    assert np.allclose(np.vstack([wrong.encode_questions([t]) for t in texts]), right.encode_questions(texts), atol=1e-5)


def test_the_fused_graph_is_made_in_the_background(tiny_model_dir, tmp_path, monkeypatch):
    """A first load does not wait for the optimiser (~14 s for e5-small): one-text calls run on the plain graph
    until the fused one is made and passes its probe, then on it; a later load serves it at once."""
    import shutil
    import threading

    from chatbot import onnx_encoder

    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy, ignore=shutil.ignore_patterns("onnx"))
    release = threading.Event()
    real = onnx_encoder.fused_graph

    def slow_fused_graph(*args, **kwargs):
        release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(onnx_encoder, "fused_graph", slow_fused_graph)
    encoder = _load(copy, backend="onnx")
    runs = _runs_on_fused(encoder)
    first, second = ([t] for t in korean_sentences(2))
    plain = encoder.onnx.encode(first)
    assert runs == [False] and not encoder.onnx.wait_fused(0.1)
    release.set()
    assert encoder.onnx.wait_fused(60) and (onnx_dir(copy) / FUSED_FILE).is_file()
    runs.clear()
    assert np.allclose(encoder.onnx.encode(first), plain, atol=1e-5) and runs == [True]
    encoder.encode_questions(second)  # and a question, through the encoder's micro-batcher
    assert runs == [True, True]
    monkeypatch.setattr(onnx_encoder, "fused_graph", lambda *a, **k: pytest.fail("made again"))
    assert _load(copy, backend="onnx").onnx.fused_session is not None


@pytest.mark.e5
def test_e5_one_question_on_the_fused_graph_matches_torch(e5_dir):
    onnx, torch = _load(e5_dir, backend="onnx"), _load(e5_dir, backend="torch")
    assert onnx.onnx.wait_fused(120)  # e5-small's 12 attention blocks are fused
    texts = korean_sentences()
    cosines = [float(onnx.encode_questions([t])[0] @ torch.encode_questions([t])[0]) for t in texts]
    assert min(cosines) >= 0.9999, (min(cosines), texts[int(np.argmin(cosines))])


@pytest.mark.e5
def test_a_batch_of_long_passages_hands_its_memory_back(e5_dir):
    """ONNX Runtime's arena would keep a long batch's working memory (~1 GB for 64 passages of 256 tokens
    with e5-small) for the process's life; runs that big shrink it when they end."""
    def rss_mb() -> float:
        return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024

    encoder = _load(e5_dir, backend="onnx", max_seq_length=256)  # its own sessions: no arena grown by other tests
    encoder.encode_questions(["배송은 얼마나 걸리나요?"] * 8)
    before = rss_mb()
    vectors = encoder.encode_passages(["주문하신 상품의 교환과 반품, 환불 절차를 단계별로 안내합니다. " * 20] * 64)
    grown = rss_mb() - before
    assert vectors.shape == (64, encoder.dimension)
    assert grown < 400, f"RSS grew {grown:.0f} MB and stayed"
    encoder.close()


def test_served_weights_are_a_memory_mapped_file_beside_the_graph(tiny_model_dir, tmp_path):
    """The export's weights move into a raw file beside the graph once; sessions read it through a map
    (page cache shared by every process) and give the vectors the graph gave with its weights inside."""
    import shutil

    import onnxruntime as ort

    encoder = _load(tiny_model_dir, backend="onnx", onnx_lanes=2)
    graph = onnx_dir(tiny_model_dir) / MODEL_FILE
    weights = graph.with_name(graph.name + WEIGHTS_SUFFIX)
    assert str(weights) in Path("/proc/self/maps").read_text()
    # the same graph with its weights back inside, run by a plain session
    import onnx

    inline = tmp_path / "inline.onnx"
    onnx.save_model(onnx.load(str(graph)), str(inline))
    assert inline.stat().st_size > graph.stat().st_size + weights.stat().st_size // 2
    texts = korean_sentences(40)
    ids = [encoder.onnx.tokenizer.encode(t).ids for t in texts[:1]]
    feed = {"input_ids": np.array(ids, dtype=np.int64), "attention_mask": np.ones((1, len(ids[0])), dtype=np.int64)}
    plain = ort.InferenceSession(str(inline), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    assert np.allclose(encoder.onnx._run(ids), plain, atol=1e-6)
    # bit for bit what the sessions gave when every weight was read into memory and handed to them
    in_memory = onnx_encoder._shared_initializers(inline)
    session = ort.InferenceSession(str(inline), onnx_encoder._options(2, in_memory), providers=["CPUExecutionProvider"])
    assert np.array_equal(encoder.onnx._run(ids, encoder.onnx.session), session.run(None, feed)[0])
    # a folder that still holds an inline graph (an older cache) is converted on its next load
    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy, ignore=shutil.ignore_patterns("onnx"))
    first = _load(copy, backend="onnx")
    moved = onnx_dir(copy) / MODEL_FILE
    moved.with_name(moved.name + WEIGHTS_SUFFIX).unlink()
    shutil.copyfile(inline, moved)
    again = _load(copy, backend="onnx")
    assert moved.with_name(moved.name + WEIGHTS_SUFFIX).is_file() and moved.stat().st_size < inline.stat().st_size
    _assert_same_vectors(again, first, texts)


@pytest.mark.e5
def test_e5_weights_are_not_private_memory(e5_dir):
    """Two sessions (lanes) over e5-small's 470 MB of weights added ~0.55-1.1 GB of private memory per
    process (measured 553 MB here with the weights read into arrays); mapped, ~110 MB: the graph's own
    working memory and the packed copies ORT makes of some weights."""
    def anon_mb() -> float:
        return int(Path("/proc/self/status").read_text().split("RssAnon:")[1].split()[0]) / 1024

    _load(e5_dir, backend="onnx").onnx.wait_fused(120)  # exported, its weights moved out, its fused graph made
    before = anon_mb()
    encoder = _load(e5_dir, backend="onnx", onnx_lanes=2)
    encoder.encode_questions(["배송은 얼마나 걸리나요?"] * 16)
    grown = anon_mb() - before
    assert grown < 300, f"private memory grew {grown:.0f} MB"
    encoder.close()


def test_export_is_reused(tiny_model_dir, monkeypatch):
    _load(tiny_model_dir, backend="onnx")  # exported at most once per model content

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the file is cached")

    monkeypatch.setattr(onnx_encoder, "export_onnx", no_export)
    assert _load(tiny_model_dir, backend="onnx").backend == "onnx"


def test_later_loads_serve_from_the_export_without_torch(tiny_model_dir, tmp_path):
    """After the first export a CPU/ONNX process starts from the cached graph and tokenizer alone: same
    vectors (the configured length cap included), torch loaded only when something asks for it."""
    import shutil
    import subprocess
    import sys

    from chatbot.onnx_encoder import SERVING_FILE
    from chatbot.settings import PROJECT_ROOT

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder, ignore=shutil.ignore_patterns("onnx"))
    first = _load(folder, backend="auto")
    assert first._model is not None and (onnx_dir(folder) / SERVING_FILE).is_file()
    second = _load(folder, backend="auto")
    assert second._model is None and second.backend == "onnx" and second.dimension == first.dimension
    _assert_same_vectors(second, first, korean_sentences(80))
    _assert_same_vectors(_load(folder, backend="auto", max_seq_length=8), _load(folder, backend="torch", max_seq_length=8),
                         korean_sentences(40))
    assert second.model is not None  # torch on first use (training, the static mode, benches)
    assert _load(folder, backend="torch")._model is not None
    assert _load(folder, backend="onnx", onnx_max_batch=4)._model is not None  # large calls need torch

    code = ("import sys; from chatbot.encoder import load_encoder; from chatbot.settings import EncoderSettings; "
            f"e = load_encoder(EncoderSettings(model={str(folder)!r}, device='cpu')); e.encode_questions(['배송 언제 와요?']); "
            "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_retrained_folder_gets_its_own_export(tiny_model_dir, tmp_path):
    """A chatbot.train output is just another folder: exported on first use, with its own weights."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    tuned = tmp_path / "tuned"
    model.save(str(tuned))
    onnx, torch_encoder = _load(tuned, backend="onnx"), _load(tuned, backend="torch")
    texts = korean_sentences(60)
    _assert_same_vectors(onnx, torch_encoder, texts)
    assert onnx_dir(tuned) != onnx_dir(tiny_model_dir) and (onnx_dir(tuned) / MODEL_FILE).is_file()
    base = _load(tiny_model_dir, backend="onnx").encode_questions(texts[:5])
    assert not np.allclose(base, onnx.encode_questions(texts[:5]), atol=1e-3)


@pytest.mark.slow
def test_read_only_folder_exports_into_the_cache(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FAQBOT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(onnx_encoder.os, "access", lambda path, mode: False)
    encoder = _load(tiny_model_dir, backend="onnx")
    assert encoder.onnx is not None and encoder.onnx.path.is_relative_to(tmp_path / "cache" / "onnx")


def test_auto_falls_back_to_torch_with_a_log_line(tiny_model_dir, monkeypatch, caplog):
    monkeypatch.setattr(onnx_encoder, "onnx_runtime_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="chatbot.encoder"):
        encoder = _load(tiny_model_dir, backend="auto")
    assert encoder.backend == "torch" and "using torch" in caplog.text
    assert encoder.encode_questions(["배송 언제 와요?"]).shape == (1, encoder.dimension)
    with pytest.raises(OnnxUnavailableError):
        _load(tiny_model_dir, backend="onnx")


def test_failed_export_falls_back(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_encoder, "onnx_dir", lambda folder: tmp_path / "fresh")

    def broken(model, target):
        raise OnnxUnavailableError("this model's forward cannot be exported")

    monkeypatch.setattr(onnx_encoder, "export_onnx", broken)
    assert _load(tiny_model_dir, backend="auto").backend == "torch"


def test_large_calls_can_go_to_torch(tiny_model_dir):
    encoder = _load(tiny_model_dir, backend="onnx", onnx_max_batch=4)
    calls = []
    original = encoder.onnx.encode
    encoder.onnx.encode = lambda texts, *a: calls.append(len(texts)) or original(texts, *a)
    encoder.encode_passages(["짧은 문서"] * 3)
    encoder.encode_passages(["긴 배치"] * 10)
    assert calls == [3]


def test_int8_option(tiny_model_dir):
    fp32 = _load(tiny_model_dir, backend="onnx")
    assert fp32.onnx.wait_fused(60)
    int8 = _load(tiny_model_dir, backend="onnx", onnx_int8=True)
    assert int8.onnx.path.name == INT8_FILE
    assert not int8.onnx.wait_fused(5)  # the fused graph beside it is the fp32 model's: one-text calls stay on int8
    texts = korean_sentences(40)
    cosines = np.sum(int8.encode_questions(texts) * fp32.encode_questions(texts), axis=1)
    assert cosines.min() > 0.9  # close, not identical: the quality cost is measured in bench/encoder_backends.py


def test_lanes_split_calls_and_give_the_same_vectors(tiny_model_dir):
    lanes, single = _load(tiny_model_dir, backend="onnx", onnx_lanes=2), _load(tiny_model_dir, backend="onnx", onnx_lanes=1)
    assert (lanes.onnx.lanes, single.onnx.lanes) == (2, 1)
    _assert_same_vectors(lanes, single, korean_sentences())
    runs: list[tuple[int, object]] = []
    original = lanes.onnx._run
    lanes.onnx._run = lambda rows, session=None: runs.append((len(rows), session)) or original(rows, session)
    texts = korean_sentences(80)
    for n in (1, 7, 20, 80):
        runs.clear()
        lanes.encode_passages(texts[:n])
        if n == 1:  # one text: the fused graph (all cores)
            assert runs == [(1, lanes.onnx.fused_session)] and lanes.onnx.fused_session is not None
        elif n < 8:  # too few to split: one run on the main (all-core) session
            assert runs == [(n, None)], n
        else:  # cut into at least one batch per lane, at most batch_size (32) each, all on the one-thread session
            assert sum(size for size, _ in runs) == n and all(s is lanes.onnx._lane_session for _, s in runs), runs
            assert len(runs) == max(2, -(-n // 32)) and max(size for size, _ in runs) <= 32, runs


def test_close_stops_the_lane_threads_and_a_later_call_restarts_them(tiny_model_dir):
    def lane_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("onnx-lane")}

    encoder = _load(tiny_model_dir, backend="onnx", onnx_lanes=2)
    texts = korean_sentences(20)
    others = lane_threads()  # other tests' encoders may still hold theirs
    before = encoder.encode_passages(texts)
    ours = lane_threads() - others
    assert ours
    encoder.close()
    assert not any(t.is_alive() for t in ours)
    again = encoder.encode_passages(texts)  # the encoder stays usable: the lanes start again
    assert np.allclose(before, again, atol=1e-5)
    encoder.close()


def test_a_new_export_deletes_the_exports_nobody_loaded_for_days(tiny_model_dir, tmp_path):
    """A retrained model or a new export format leaves the old export behind (~1 GB for e5); the next export
    deletes the finished ones beside it that no process loaded within encoder.onnx_unused_days, and no other."""
    import os
    import shutil
    import time

    from chatbot.onnx_cache import EXPORT_MARK, USED_MARK, prune_unused

    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy, ignore=shutil.ignore_patterns("onnx"))
    month_ago = time.time() - 30 * 86_400

    def old_export(name: str, finished: bool = True, used_now: bool = False) -> Path:
        folder = copy / "onnx" / name
        folder.mkdir(parents=True)
        (folder / MODEL_FILE).write_bytes(b"\0" * 1024)
        if finished:
            (folder / EXPORT_MARK).write_text("{}\n")
        if used_now:
            (folder / USED_MARK).touch()
        for path in folder.iterdir():
            if path.name != USED_MARK:
                os.utime(path, (month_ago, month_ago))
        return folder

    stale, in_use, unfinished = old_export("0ld0format0000a"), old_export("0ld0format0000b", used_now=True), \
        old_export("0ld0format0000c", finished=False)
    encoder = _load(copy, backend="onnx")
    assert encoder.onnx.wait_fused(60)
    assert not stale.exists() and in_use.is_dir() and unfinished.is_dir()
    assert (onnx_dir(copy) / USED_MARK).is_file()  # this load counts as a use
    kept = old_export("0ld0format0000d")
    assert prune_unused(onnx_dir(copy), 0) == [] and kept.is_dir()  # 0 days: keep everything
    assert prune_unused(onnx_dir(copy), 14) == [kept]


def test_the_folder_fingerprint_never_walks_into_the_onnx_cache(tiny_model_dir, monkeypatch):
    """A fused graph made in the background puts a temporary folder under onnx/ and removes it; a second load of
    the same model that walked into it half-way failed with FileNotFoundError. The walk leaves onnx/ alone and
    reads the same files as before (no export is made again after an upgrade)."""
    import os

    from chatbot.onnx_encoder import _is_ours, folder_fingerprint

    (onnx_dir(tiny_model_dir) / ".fuse-in-progress").mkdir(parents=True, exist_ok=True)
    before = sorted(p for p in tiny_model_dir.rglob("*") if p.is_file() and not _is_ours(p.relative_to(tiny_model_dir)))
    real_scandir = os.scandir

    def vanishing(path="."):
        if ".fuse-" in str(path):
            raise FileNotFoundError(path)
        return real_scandir(path)

    key = onnx_dir(tiny_model_dir).name
    monkeypatch.setattr(os, "scandir", vanishing)
    assert folder_fingerprint(tiny_model_dir) == key  # walked past the vanishing folder, same key as before
    assert sorted(onnx_encoder.model_files(tiny_model_dir)) == before
    (onnx_dir(tiny_model_dir) / ".fuse-in-progress").rmdir()
