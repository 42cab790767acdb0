"""Encoder adaptation: a tiny training run end to end, atomic output, group-aware batches, inputs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chatbot import train
from chatbot.training.negatives import mine
from chatbot.training.output import AtomicOutput
from chatbot.training.pairs import TrainingData, add_grouped, add_pairs, pick_queries, split_data
from chatbot.training.sampler import GroupAwareBatchSampler, group_aware_sampler, plan_batches

GROUPED = """Q,A
배송은 얼마나 걸리나요?,주문 후 2~3일 안에 도착합니다.
배송 기간이 궁금해요,주문 후 2~3일 안에 도착합니다.
택배 언제 와요?,주문 후 2~3일 안에 도착합니다.
환불은 어떻게 받나요?,반품이 확인되면 환불됩니다.
환불 받고 싶어요,반품이 확인되면 환불됩니다.
비밀번호를 잊어버렸어요,비밀번호 찾기를 누르세요.
비번 분실했어요,비밀번호 찾기를 누르세요.
쿠폰은 어디에서 입력하나요?,결제 화면에서 입력합니다.
쿠폰 코드 입력,결제 화면에서 입력합니다.
회원 탈퇴 방법,마이페이지에서 할 수 있습니다.
탈퇴하고 싶어요,마이페이지에서 할 수 있습니다.
교환 신청은 어떻게 하나요?,상품 수령 후 7일 이내에 가능합니다.
교환하고 싶어요,상품 수령 후 7일 이내에 가능합니다.
고객센터 전화번호,1588-0000 입니다.
상담원 연결해 주세요,1588-0000 입니다.
"""


@pytest.fixture()
def grouped_csv(tmp_path: Path) -> Path:
    path = tmp_path / "grouped.csv"
    path.write_text(GROUPED, encoding="utf-8")
    return path


def _no_partials(parent: Path) -> bool:
    return not any(p.name.startswith(".") and ".partial-" in p.name for p in parent.iterdir())


# --- batching -------------------------------------------------------------------------------------
def test_group_aware_batches_never_put_one_group_twice_in_a_batch():
    from datasets import Dataset

    rng = np.random.default_rng(0)
    groups = [f"g{int(g)}" for g in rng.integers(0, 40, size=400)]
    groups[:30] = ["big"] * 30  # one large FAQ with many variants
    anchors = [f"query: 질문 {i}" for i in range(400)]
    positives = [f"query: 답 {g}" for g in groups]  # the shared answer of the group, as in answer pairs
    components = {**dict(zip(anchors, groups)), **dict(zip(positives, groups))}
    dataset = Dataset.from_dict({"anchor": anchors, "positive": positives})
    sampler = group_aware_sampler(components)(dataset, batch_size=16, drop_last=False, seed=3)
    assert isinstance(sampler, GroupAwareBatchSampler)
    for epoch in range(2):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert 0 < len(batches) <= len(sampler)
        for batch in batches:
            batch_groups = [groups[i] for i in batch]
            assert len(batch_groups) == len(set(batch_groups)), batch_groups
        used = {i for b in batches for i in b}
        assert len(used) >= 300  # conflicts only drop a small tail (the 30-variant group)


def test_plan_batches_defers_conflicts_instead_of_dropping_them():
    keys = [frozenset({"a"}), frozenset({"a"}), frozenset({"b"}), frozenset({"c"})]
    batches = plan_batches(keys, 2, [0, 1, 2, 3], drop_last=False)
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3]
    assert all(not ({0, 1} <= set(b)) for b in batches)


# --- data -----------------------------------------------------------------------------------------
def test_split_holds_out_whole_groups_and_pairs_join_groups(tmp_path: Path, grouped_csv: Path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("q1\tq2\tdup\n택배 언제 와요?\t배송 언제 오나요\t0\n환불 받고 싶어요\t회원 탈퇴 방법\t1\n", encoding="utf-8")
    data = TrainingData()
    add_grouped(data, grouped_csv, "Q", "A", group_is_answer=True)
    add_pairs(data, pairs, "q1", "q2", "dup", "0")
    assert len(data.pairs) == 1  # the is_duplicate=1 row is not a positive
    split = split_data(data, eval_fraction=0.5, seed=1)
    held = set(split.eval_groups)
    assert held and split.pairs
    for pair in split.pairs:
        assert split.components.of(pair.anchor) not in held and split.components.of(pair.positive) not in held
    # the labelled pair joined "배송 언제 오나요" to the delivery group; answers joined their questions
    assert split.components.of("배송 언제 오나요") == split.components.of("배송은 얼마나 걸리나요?")
    assert split.components.of("주문 후 2~3일 안에 도착합니다.") == split.components.of("택배 언제 와요?")
    kinds = {p.kind for p in split.pairs}
    assert "answer" in kinds and "paraphrase" in kinds
    queries = pick_queries(split.eval_groups, split.eval_texts)
    assert len({split.eval_groups[i] for i in queries}) == len(queries)


def test_hard_negatives_never_come_from_the_anchors_group(grouped_csv: Path):
    data = TrainingData()
    add_grouped(data, grouped_csv, "Q", "A", group_is_answer=True)
    split = split_data(data, eval_fraction=0.0)

    def encode(texts):  # a deterministic stand-in for the model
        vectors = np.array([[float(ord(ch)) for ch in (t + "      ")[:6]] for t in texts])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    negatives = mine(split.pairs, encode, split.components.of, pool=3)
    assert all(n is not None for n in negatives)
    for pair, negative in zip(split.pairs, negatives):
        assert split.components.of(negative) != split.components.of(pair.anchor)


# --- end to end -----------------------------------------------------------------------------------
def test_training_writes_a_loadable_model_and_a_report(tmp_path: Path, grouped_csv: Path, tiny_model_dir: Path, capsys):
    from sentence_transformers import SentenceTransformer

    target = tmp_path / "models" / "adapted"
    code = train.main([
        "--base", str(tiny_model_dir), "--grouped", str(grouped_csv), "--answer-pairs", "--eval-split", "0.3",
        "--output", str(target), "--max-steps", "3", "--batch-size", "4", "--quiet", "--device", "cpu",
    ])
    assert code == 0
    out = capsys.readouterr().out
    assert f"FAQBOT_ENCODER__MODEL={target}" in out and "--rebuild" in out
    model = SentenceTransformer(str(target), device="cpu")
    vectors = model.encode(["query: 배송 언제 와요?"], normalize_embeddings=True)
    assert vectors.shape == (1, 32) and np.isfinite(vectors).all()
    report = json.loads((target / train.REPORT_JSON).read_text(encoding="utf-8"))
    assert report["steps"] >= 1 and report["rows"]["pairs"] > 0
    assert set(report["metrics"]["before"]) == set(report["metrics"]["after"]) == {"grouped_top1", "grouped_mrr@10"}
    assert str(grouped_csv) in report["files"] and len(report["files"][str(grouped_csv)]) == 64
    assert "--grouped" in report["command"]
    assert (target / train.REPORT_MD).read_text(encoding="utf-8").startswith("# Encoder adaptation report")
    assert _no_partials(target.parent)


def test_interrupted_training_leaves_no_model_at_the_target(
    tmp_path: Path, grouped_csv: Path, tiny_model_dir: Path, monkeypatch
):
    from sentence_transformers import SentenceTransformerTrainer

    original = SentenceTransformerTrainer.train

    def train_then_stop(self, *args, **kwargs):
        from transformers import TrainerCallback

        class StopAfterFirstStep(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                raise KeyboardInterrupt  # as Ctrl-C (or SIGTERM, which the command turns into this) mid-training

        self.add_callback(StopAfterFirstStep())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformerTrainer, "train", train_then_stop)
    target = tmp_path / "adapted"
    argv = ["--base", str(tiny_model_dir), "--grouped", str(grouped_csv), "--eval-split", "0",
            "--output", str(target), "--max-steps", "5", "--batch-size", "4", "--quiet", "--device", "cpu"]
    assert train.main(argv) == 130
    assert not target.exists()
    assert _no_partials(tmp_path)

    # An existing model survives an interrupted --overwrite run untouched.
    target.mkdir()
    (target / "modules.json").write_text("[]", encoding="utf-8")
    assert train.main([*argv, "--overwrite"]) == 130
    assert (target / "modules.json").read_text(encoding="utf-8") == "[]"
    assert _no_partials(tmp_path)
    # ... and without --overwrite the command refuses before training.
    assert train.main(argv) == 2


def test_partial_folder_of_a_killed_run_is_never_the_target(tmp_path: Path):
    target = tmp_path / "adapted"
    stale = tmp_path / ".adapted.partial-999999999-abcdef"
    stale.mkdir()
    (stale / "pid").write_text("999999999")
    with AtomicOutput(target) as out:
        assert not stale.exists()  # leftovers of dead processes are removed
        out.model.mkdir()
        (out.model / "modules.json").write_text("[]")
        assert not target.exists()
        out.commit()
    assert (target / "modules.json").exists() and _no_partials(tmp_path)


def test_faq_files_become_paraphrase_groups(tmp_path: Path):
    faq_readers = pytest.importorskip("ingest.faq_readers", reason="FAQ readers not available")
    path = tmp_path / "faq.csv"
    path.write_text(
        "question,answer,alternatives\n"
        "배송은 얼마나 걸리나요?,주문 후 2~3일 안에 도착합니다.,배송 기간이 궁금해요|택배 언제 와요?\n"
        "환불은 어떻게 받나요?,반품이 확인되면 환불됩니다.,환불 받고 싶어요\n"
        "쿠폰은 어디에서 입력하나요?,결제 화면에서 입력합니다.,\n",
        encoding="utf-8",
    )
    entries = faq_readers.read_faq(path).items
    assert entries, "the FAQ reader read nothing from the test CSV"
    args = train.TrainConfig.from_argv(["--faq", str(path), "--answer-pairs", "--output", str(tmp_path / "m")])
    data, eval_data = train.read_inputs(args)
    assert eval_data is None
    expected = sum(1 + len(e.alternatives) for e in entries)
    assert len(data.groups) == expected
    split = split_data(data, 0.0, answer_pairs=True)
    delivery = split.components.of("배송은 얼마나 걸리나요?")
    if any(e.alternatives for e in entries):
        assert split.components.of("택배 언제 와요?") == delivery
        assert any(p.kind == "paraphrase" for p in split.pairs)
    assert split.components.of("주문 후 2~3일 안에 도착합니다.") == delivery
    assert sum(p.kind == "answer" for p in split.pairs) == expected


def test_config_takes_every_flag_and_the_recipe_leaves_out_files_and_output(tmp_path: Path):
    argv = ["--grouped", "a.csv", "b.csv", "--output", str(tmp_path / "m"), "--sts-dev", "dev.tsv", "--epochs", "2"]
    config = train.TrainConfig.from_argv(argv)
    assert config.grouped == [Path("a.csv"), Path("b.csv")] and config.epochs == 2.0 and config.argv == tuple(argv)
    recipe = config.recipe()
    assert recipe["sts_dev"] == "dev.tsv" and recipe["epochs"] == 2.0 and recipe["batch_size"] is None
    assert not {"output", "overwrite", "quiet", "argv", "grouped", "faq"} & set(recipe)
