"""Micro-batching: concurrent single questions share encoder calls, get their own vectors and errors."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from chatbot.batching import BatcherClosedError, MicroBatcher
from chatbot.encoder import Encoder, load_encoder
from chatbot.settings import EncoderSettings

THREADS = 32


def _rows(items: list[int]) -> np.ndarray:
    time.sleep(0.01)  # a real encoder call takes time, during which other callers queue up
    return np.array([[i, i * 2] for i in items], dtype=np.float32)


def _ask_concurrently(call, items: list) -> list:
    barrier = threading.Barrier(len(items))

    def one(item):
        barrier.wait()
        return call(item)

    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(one, items))


def test_each_caller_gets_its_own_row_and_calls_are_shared():
    with MicroBatcher(_rows, max_items=8, wait_ms=2) as batcher:
        results = _ask_concurrently(batcher, list(range(THREADS)))
    assert [r.tolist() for r in results] == [[i, i * 2] for i in range(THREADS)]
    assert batcher.items == THREADS and batcher.calls < THREADS
    assert batcher.calls >= THREADS // 8  # never more than max_items in one call


def test_a_lone_item_does_not_wait():
    with MicroBatcher(lambda items: np.zeros((len(items), 1)), max_items=32, wait_ms=500) as batcher:
        started = time.perf_counter()
        batcher(1)
        assert time.perf_counter() - started < 0.25  # far below the 500 ms a forming batch may wait


def test_errors_reach_every_caller_and_the_worker_survives():
    def failing(items):
        time.sleep(0.01)
        if any(i < 0 for i in items):
            raise ValueError("bad item")
        return np.zeros((len(items), 1))

    with MicroBatcher(failing, max_items=64) as batcher:
        futures = [batcher.submit(-1 if i == 3 else i) for i in range(10)]
        outcomes = [type(f.exception(timeout=5)).__name__ if f.exception(timeout=5) else "ok" for f in futures]
        assert "ValueError" in outcomes
        assert batcher(5).shape == (1,)  # later calls still work


def test_wrong_row_count_is_an_error():
    with MicroBatcher(lambda items: np.zeros((len(items) + 1, 1))) as batcher:
        with pytest.raises(RuntimeError, match="rows for"):
            batcher(1)


def test_close_finishes_queued_work_then_refuses():
    batcher = MicroBatcher(_rows, max_items=4)
    futures = [batcher.submit(i) for i in range(10)]
    batcher.close()
    assert [f.result(timeout=5)[0] for f in futures] == list(range(10))
    with pytest.raises(BatcherClosedError):
        batcher.submit(1)
    batcher.close()  # twice is fine


class _SlowEncoder(Encoder):
    """The real tiny encoder with a few ms added per call, as a real model has, and a call count."""

    calls = 0

    def _encode(self, texts, show_progress):
        type(self).calls += 1
        time.sleep(0.005)
        return super()._encode(texts, show_progress)


def test_encoder_batches_single_questions_from_many_threads(tiny_model_dir):
    loaded = load_encoder(EncoderSettings(model=str(tiny_model_dir), device="cpu", micro_batch_max=32))
    encoder = _SlowEncoder(loaded.model, loaded.resolved, loaded.settings, loaded.onnx)
    questions = [f"{i}번 주문 배송은 언제 오나요?" for i in range(THREADS)]
    unbatched = encoder._encode([encoder.settings.question_prefix + encoder.prepare(q) for q in questions], False)
    _SlowEncoder.calls = 0
    vectors = _ask_concurrently(lambda q: encoder.encode_questions([q]), questions)
    encoder.close()
    assert all(v.shape == (1, encoder.dimension) for v in vectors)
    assert np.allclose(np.vstack(vectors), unbatched, atol=1e-5)
    assert _SlowEncoder.calls < THREADS


def test_micro_batching_can_be_turned_off(tiny_model_dir):
    loaded = load_encoder(EncoderSettings(model=str(tiny_model_dir), device="cpu", micro_batch_max=1, question_cache=0))
    encoder = _SlowEncoder(loaded.model, loaded.resolved, loaded.settings, loaded.onnx)
    _SlowEncoder.calls = 0
    _ask_concurrently(lambda q: encoder.encode_questions([q]), ["배송 문의"] * 8)
    assert _SlowEncoder.calls == 8 and encoder._batcher is None


@pytest.mark.parametrize("micro_batch_max", [1, 32])
def test_a_repeated_question_skips_the_encoder(tiny_model_dir, micro_batch_max):
    """A question asked again (or a clicked suggestion) reuses its vector; the cache keeps the most recent
    `question_cache` questions, and its rows cannot be changed by one asker under another's feet."""
    settings = EncoderSettings(model=str(tiny_model_dir), device="cpu", micro_batch_max=micro_batch_max, question_cache=2)
    loaded = load_encoder(settings)
    encoder = _SlowEncoder(loaded.model, loaded.resolved, loaded.settings, loaded.onnx)
    expected = encoder._encode([settings.question_prefix + encoder.prepare("배송비 얼마예요?")], False)
    _SlowEncoder.calls = 0
    first = encoder.encode_questions(["배송비 얼마예요?"])
    again = encoder.encode_questions(["배송비 얼마예요?"])
    assert _SlowEncoder.calls == 1 and np.array_equal(first, again) and np.allclose(first, expected, atol=1e-5)
    with pytest.raises(ValueError):
        again[0, 0] = 1.0
    encoder.encode_questions(["환불은 언제 되나요?"])
    encoder.encode_questions(["쿠폰이 안 써져요"])  # the first question is now the least recent of three: dropped
    encoder.encode_questions(["배송비 얼마예요?"])
    assert _SlowEncoder.calls == 4
    encoder.close()


def test_a_lone_item_runs_on_its_callers_thread_and_a_crowd_on_the_worker():
    threads: list[str] = []

    def rows(items):
        threads.append(threading.current_thread().name)
        return _rows(items)

    with MicroBatcher(rows, max_items=8, wait_ms=2, name="the-worker") as batcher:
        assert batcher(7).tolist() == [7, 14]
        assert threads == [threading.current_thread().name]  # idle batcher: no hand-off
        _ask_concurrently(batcher, list(range(THREADS)))
    assert "the-worker" in threads[1:] and batcher.items == THREADS + 1
