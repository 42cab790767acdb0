"""A tiny randomly initialised BERT + a WordPiece tokenizer trained on a few Korean lines.

It goes through the same code path as real models (a sentence-transformers folder loaded by
SentenceTransformer), only small enough for fast unit tests.
"""
from __future__ import annotations

from pathlib import Path

# A random encoder puts any two Korean sentences at cosine ~0.8–0.95, so a wrong FAQ can clear the
# shipped threshold (tuned for real e5). Tests with the tiny model answer only near-exact matches;
# the shipped threshold itself is tested with the real e5 (tests/test_e2e_e5.py).
TINY_THRESHOLD = 0.99

CORPUS = [
    "배송은 얼마나 걸리나요? 주문 후 2~3일 안에 도착합니다.",
    "환불은 어떻게 받나요? 반품이 확인되면 3영업일 안에 환불됩니다.",
    "비밀번호를 잊어버렸어요. 로그인 화면에서 비밀번호 찾기를 누르세요.",
    "쿠폰은 어디에서 입력하나요? 결제 화면에서 쿠폰 code를 입력합니다.",
    "회원 탈퇴는 마이페이지에서 할 수 있습니다. 적립금은 소멸됩니다.",
    "교환 신청은 상품 수령 후 7일 이내에 가능합니다.",
    "고객센터 전화번호는 1588-0000 입니다. 평일 09:00~18:00 운영합니다.",
    "query: passage: hello world order refund delivery coupon password",
]


def build_tiny_model(target: Path) -> Path:
    """Writes an ordinary sentence-transformers folder (BERT 2 layers, hidden 32) into target."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    raw = target / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer.train_from_iterator(CORPUS * 4, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    # transformers 5 rebuilds the BERT normaliser on load: its default (lowercase + strip accents) would
    # NFD-split Hangul into jamo and turn every Korean word into [UNK].
    fast = BertTokenizerFast(tokenizer_object=tokenizer, model_max_length=128, do_lower_case=False, strip_accents=False)
    fast.save_pretrained(raw)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=128)
    tokens = transformer.tokenizer.tokenize(CORPUS[0])
    assert "[UNK]" not in tokens, f"tiny tokenizer lost the Korean vocabulary on reload: {tokens}"
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    model_dir = target / "model"
    SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu").save(str(model_dir))
    return model_dir
