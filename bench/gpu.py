"""What a CUDA GPU does for the encoder: the product's GPU paths checked, and e5-small-shaped speed.

    python bench/gpu.py [--shape FOLDER | --model FOLDER] [--batch-sizes 32,128] [--seconds 5] [--device cuda] [--out FILE]

Nothing in the product needs a GPU; where one is present, `encoder.backend: auto` encodes with torch on it
and `chatbot.train` trains on it in mixed precision. This checks those paths on the machine it runs on:

1. the tiny test BERT (tests/tiny_model.py) gives the same vectors on the GPU as on the CPU (the sample's 257
   evaluation questions, lowest cosine);
2. `chatbot.train` runs a few steps on the GPU (bf16 where supported, else fp16) and writes a model that loads;
3. the product's Encoder, e5-small-shaped: one question p50 and batches of 64 / 512 questions per second,
   on the GPU (torch, as `auto` serves there; per `encoder.batch_size`, the texts of one forward pass) against
   torch and ONNX Runtime on this machine's CPU cores.
   --model: a sentence-transformers folder (the real e5 export where it is installed); --shape: a folder with
   a model's config.json and tokenizer only, filled with random weights (speed does not depend on the
   values), for machines where the weights cannot be brought.

Prints a Markdown table; exits 2 when no GPU is present.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.tables import emit, markdown_table  # noqa: E402
from chatbot.encoder import Encoder, load_encoder  # noqa: E402
from chatbot.settings import EncoderSettings  # noqa: E402

DATA = ROOT / "data"
TRAINING_CSV = "Q,A\n" + "".join(
    f"{q},{a}\n" for a, qs in {
        "주문 후 2~3일 안에 도착합니다.": ["배송은 얼마나 걸리나요?", "배송 기간이 궁금해요", "택배 언제 와요?"],
        "반품이 확인되면 환불됩니다.": ["환불은 어떻게 받나요?", "환불 받고 싶어요"],
        "비밀번호 찾기를 누르세요.": ["비밀번호를 잊어버렸어요", "비번 분실했어요"],
        "결제 화면에서 입력합니다.": ["쿠폰은 어디에서 입력하나요?", "쿠폰 코드 입력"],
        "마이페이지에서 할 수 있습니다.": ["회원 탈퇴 방법", "탈퇴하고 싶어요"],
        "1588-0000 입니다.": ["고객센터 전화번호", "상담원 연결해 주세요"],
    }.items() for q in qs
)


def sample_questions() -> list[str]:
    """The sample's evaluation questions (in scope, out of scope, about documents): varied Korean lengths."""
    out: list[str] = []
    for name in ("questions.csv", "questions_oos.csv", "doc_questions.csv"):
        with open(DATA / name, encoding="utf-8-sig", newline="") as handle:
            out += [row["question"] for row in csv.DictReader(handle)]
    return out


def encoder(model: Path, device: str, backend: str = "torch", batch_size: int = 32) -> Encoder:
    """The product's Encoder, with the ONNX one-question graph made before anything is timed."""
    loaded = load_encoder(EncoderSettings(model=str(model), device=device, backend=backend, question_cache=0,
                                          batch_size=batch_size))
    if loaded.onnx is not None:
        loaded.onnx.wait_fused()
    return loaded


def same_vectors(model: Path, device: str, questions: list[str]) -> str:
    """Lowest cosine between the GPU's and the CPU's vector of each question, and what served on the GPU
    (what /api/health reports)."""
    on_gpu = encoder(model, device)
    gpu = on_gpu.encode_questions(questions)
    cpu = encoder(model, "cpu").encode_questions(questions)
    return f"{float(np.min(np.sum(gpu * cpu, axis=1))):.6f} (served by backend {on_gpu.backend} on {on_gpu.device})"


def train_on_gpu(model: Path, device: str, work: Path) -> str:
    """A few training steps on the GPU through chatbot.train; the model it writes must load and encode."""
    import torch

    from chatbot import train

    data = work / "grouped.csv"
    data.write_text(TRAINING_CSV, encoding="utf-8")
    target = work / "adapted"
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # its report and next steps: not this bench's output
            code = train.main(["--base", str(model), "--grouped", str(data), "--answer-pairs", "--eval-split", "0.3",
                               "--output", str(target), "--max-steps", "5", "--batch-size", "4", "--quiet",
                               "--device", device])
        vectors = encoder(target, device).encode_questions(["배송 언제 와요?"])
    except Exception as exc:  # noqa: BLE001 - reported: this bench exists to find such failures
        return f"failed: {exc!r}"
    if code != 0:
        return f"failed (exit {code})"
    precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if device.startswith("cuda") else "fp32"
    return (f"ok ({precision}; the trained model encodes: {vectors.shape[1]} dimensions, "
            f"all finite: {bool(np.isfinite(vectors).all())})")


def shaped_model(shape: Path, work: Path) -> Path:
    """A sentence-transformers folder of the config and tokenizer in `shape`, with random weights."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    raw = work / "shaped-raw"
    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.from_pretrained(shape)).save_pretrained(raw)
    AutoTokenizer.from_pretrained(shape).save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=512)
    folder = work / "shaped"
    SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode="mean"),
                                 Normalize()], device="cpu").save(str(folder))
    return folder


def speed(enc: Encoder, questions: list[str], seconds: float) -> list[str]:
    """One question p50 (ms) and questions per second in batches of 64 and 512."""
    for q in questions[:20]:
        enc.encode_questions([q])
    single = []
    for q in questions[:200]:
        started = time.perf_counter()
        enc.encode_questions([q])
        single.append(time.perf_counter() - started)
    cells = [f"{statistics.median(single) * 1000:.1f}"]
    for size in (64, 512):
        batch = (questions * (size // len(questions) + 1))[:size]
        enc.encode_questions(batch)
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            enc.encode_questions(batch)
            done += size
        cells.append(f"{done / (time.perf_counter() - started):,.0f}")
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="the GPU to check (cpu checks this script itself)")
    parser.add_argument("--model", type=Path, help="a sentence-transformers folder to time (e.g. the e5 export)")
    parser.add_argument("--shape", type=Path, help="a folder with config.json and tokenizer files: random weights")
    parser.add_argument("--seconds", type=float, default=5.0, help="per batch-size measurement")
    parser.add_argument("--batch-sizes", type=lambda v: [int(x) for x in v.split(",")], default=[32, 128],
                        help="encoder.batch_size values to time on the GPU (the texts of one forward pass)")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime CPU row (its export takes a while)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA GPU here: nothing to check (the product runs on the CPU)", file=sys.stderr)
        return 2
    from tests.tiny_model import build_tiny_model

    questions = sample_questions()
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    lines = [f"device: {name}; torch {torch.__version__}; CPU threads {torch.get_num_threads()}"]
    with tempfile.TemporaryDirectory(prefix="faqbot-gpu-") as tmp:
        work = Path(tmp)
        tiny = build_tiny_model(work / "tiny")
        lines.append(f"tiny BERT, {len(questions)} questions, lowest cosine GPU vs CPU: "
                     f"{same_vectors(tiny, args.device, questions)}")
        lines.append(f"chatbot.train on {args.device}: {train_on_gpu(tiny, args.device, work)}")
        model = args.model or (shaped_model(args.shape, work) if args.shape else None)
        if model is not None:
            rows = [[f"torch on {args.device}, encoder.batch_size {size}",
                     *speed(encoder(model, args.device, batch_size=size), questions, args.seconds)]
                    for size in args.batch_sizes]
            rows.append(["torch on the CPU", *speed(encoder(model, "cpu"), questions, args.seconds)])
            if not args.no_onnx:
                rows.append(["ONNX Runtime on the CPU", *speed(encoder(model, "cpu", "onnx"), questions, args.seconds)])
            what = "random weights, the shape of " + args.shape.name if model != args.model else str(model)
            lines.append(f"\nEncoder speed ({what}; questions/s of the sample's questions):\n")
            lines.append(markdown_table(["encoder", "one question p50 (ms)", "batches of 64", "batches of 512"], rows))
    emit("\n".join(lines), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
