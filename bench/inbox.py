"""How long the inbox takes to cluster 10,000 questions (the issue asks for ≤ 10 s), with e5 vectors.

Questions are made from templates (topic × ask form × filler, plus typos by dropping a character), so
near-duplicates and paraphrases come in realistic proportions. Encoding is timed separately: the desk
caches vectors per text, so a reloaded inbox pays only for new texts.

    python bench/inbox.py [--n 10000] [--model intfloat/multilingual-e5-small]
"""
from __future__ import annotations

import argparse
import random
import time

import bench.common  # noqa: F401 - project root on sys.path, offline hub
from chatbot.operator.clustering import cluster_vectors
from chatbot.settings import load_settings

TOPICS = ["주차", "주차 요금", "포인트 적립", "포인트 소멸", "회원 탈퇴", "영수증 발급", "현금영수증", "해외 배송", "선물 포장",
          "매장 위치", "영업 시간", "예약 취소", "교환 기간", "AS 접수", "쿠폰 중복", "적립금 사용", "배송지 변경", "품절 상품",
          "재입고 알림", "카드 할부", "무이자 할부", "사업자 구매", "대량 구매", "회원 등급", "생일 쿠폰", "리뷰 적립", "앱 오류",
          "비밀번호 변경", "휴대폰 번호 변경", "주문 취소", "부분 환불", "택배사 변경", "새벽 배송", "제주도 배송", "반품 비용"]
FORMS = ["{t} 어떻게 하나요?", "{t} 가능한가요", "{t} 궁금합니다", "{t} 알려주세요", "{t}은 얼마예요?", "{t} 문의드려요",
         "혹시 {t} 되나요?", "{t} 방법", "{t} 안돼요", "{t} 관련 질문이요"]
FILLERS = ["", "", "", "급해요 ", "안녕하세요 ", "저기요 ", "오늘 ", "지금 "]


def questions(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = rng.choice(FILLERS) + rng.choice(FORMS).format(t=rng.choice(TOPICS))
        if rng.random() < 0.2 and len(text) > 4:
            cut = rng.randrange(len(text))
            text = text[:cut] + text[cut + 1 :]
        out.append(text)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    settings = load_settings()
    from chatbot.encoder import load_encoder

    encoder_settings = settings.encoder if not args.model else settings.encoder.model_copy(update={"model": args.model})
    encoder = load_encoder(encoder_settings)
    texts = questions(args.n)
    unique = list(dict.fromkeys(texts))
    started = time.perf_counter()
    vectors = encoder.encode_questions(unique)
    encoded = time.perf_counter() - started
    cfg = settings.operator
    started = time.perf_counter()
    labels = cluster_vectors(vectors, cfg.cluster_distance, cfg.cluster_sample)
    clustered = time.perf_counter() - started
    print(f"{args.n:,} questions ({len(unique):,} distinct): encode {encoded:.1f} s, "
          f"cluster {clustered:.2f} s → {labels.max() + 1:,} clusters "
          f"(distance {cfg.cluster_distance}, sample {cfg.cluster_sample})")


if __name__ == "__main__":
    main()
