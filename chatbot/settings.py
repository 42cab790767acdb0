"""One typed settings object: configs/default.yaml, optionally layered with FAQBOT_CONFIG, then FAQBOT_* env vars.

Every entry point builds its objects from a Settings instance, so a test or a replica can run with
different folders or models without touching globals.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from chatbot.modes import Mode

ENV_PREFIX = "FAQBOT_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "default.yaml"


class EncoderSettings(BaseModel):
    model: str = "intfloat/multilingual-e5-small"
    device: str | None = None
    batch_size: int = Field(32, ge=1)
    max_seq_length: int = Field(256, ge=8)
    question_prefix: str = "query: "
    passage_prefix: str = "passage: "
    input: Literal["raw", "normalised"] = "raw"
    hub_timeout_s: float = 5.0
    # auto = ONNX Runtime when importable and the model exports, else torch (logged); see chatbot/onnx_encoder.py
    backend: Literal["auto", "torch", "onnx"] = "auto"
    onnx_int8: bool = False  # dynamic int8 ONNX weights: faster, lower quality (bench/encoder_backends.py)
    onnx_max_batch: int = Field(0, ge=0)  # calls with more texts than this go to torch; 0 = ONNX for all sizes
    onnx_lanes: int = Field(0, ge=0)  # calls of several texts run as this many one-thread runs at once; 0 = one per core, 1 = off
    # a new ONNX export deletes the exports beside it that no process loaded for this many days (a retrained model or a
    # new export format leaves ~1 GB behind); 0 = keep them all. See chatbot/onnx_cache.py
    onnx_unused_days: float = Field(14.0, ge=0.0)
    micro_batch_max: int = Field(32, ge=1)  # concurrent 1-question calls encoded together; 1 = off
    micro_batch_wait_ms: float = Field(2.0, ge=0.0)  # how long a forming batch waits for more (a lone call never waits)
    # vectors of this many recently asked questions are kept (same text after normalising: a repeated question or a
    # clicked suggestion skips the encoder, ~6 ms of CPU); 0 = off. ~1.5 KB each for e5-small
    question_cache: int = Field(4096, ge=0)


class TextSettings(BaseModel):
    spacing_correction: bool = True  # a question typed without spaces is respaced for the keyword side (chatbot/retrieval.py)
    respace_unspaced: bool = True  # a question typed without spaces goes to the encoder respaced (chatbot/retrieval.py)
    typo_tolerant: bool = False
    typo_repair: bool = True  # an unknown word one key from exactly one store word is read as it (chatbot/spelling.py)
    # Synonym/user dictionary (chatbot/dictionary.py) for the lexical side; null (or "" in the env) = none
    synonyms: Path | None = Path("configs/synonyms.yaml")
    synonyms_reload_s: float = Field(5.0, ge=0.0)  # how often the file is rechecked for an edit by another process

    @field_validator("synonyms", mode="before")
    @classmethod
    def _off_words(cls, value: Any) -> Any:
        """FAQBOT_TEXT__SYNONYMS= (empty), null or none switches the dictionary off."""
        return None if isinstance(value, str) and value.strip().lower() in ("", "null", "none") else value


class StoreSettings(BaseModel):
    path: Path = Path("var/chroma")
    collection: str = Field("faq", min_length=3)
    host: str | None = None
    port: int = 8000
    ssl: bool = False
    auth_header: str | None = None
    auth_token: str | None = None
    cache_dir: Path = Path("var/cache")
    timeout_s: float = Field(5.0, gt=0)  # server mode: connect/read time-out of every Chroma call (a frozen server fails, not hangs)


class LexicalSettings(BaseModel):
    k1: float = 1.2
    b: float = 0.75
    # How often a retriever compares its BM25 cache with the store's fingerprint: a replica answers an FAQ
    # added through another process (or `python -m ingest` in server mode) within about this long.
    refresh_s: float = Field(30.0, ge=0.0)


class RetrievalSettings(BaseModel):
    mode: Mode = "hybrid"
    top_k: int = Field(10, ge=1, le=100)
    candidates: int = Field(50, ge=1)
    lexical_weight: float = Field(0.05, ge=0.0, le=1.0)
    doc_offset: float = Field(0.045, ge=-1.0, le=1.0)


class AnswerSettings(BaseModel):
    threshold: float = 0.865
    dense_threshold: float = 0.9
    lexical_threshold: float = 0.59
    static_threshold: float = 0.43
    doc_threshold: float | None = None
    # Hybrid mode decides with a model trained from the store (chatbot/decision/), not a raw cosine:
    decision_model: bool = True  # false = the thresholds above decide in every mode
    # a question asked while the store's first decision model is being built (after the first upload into an empty
    # store) waits this long for it before the threshold decides; later builds leave the previous model deciding
    first_model_wait_s: float = Field(15.0, ge=0.0)
    # P is calibrated for traffic where this share of questions is in scope (the training rows are mostly not)
    in_scope_share: float = Field(0.8, gt=0.0, lt=1.0)
    wrong_cost: float = Field(1.0, gt=0.0)  # answer level = cost / (1 + cost): answer when P(right) beats it
    min_precision: float | None = Field(None, gt=0.0, le=1.0)  # instead: lowest P reaching this precision on calibration rows
    answer_p: float | None = Field(None, ge=0.0, le=1.0)  # a fixed answer level instead of either
    clarify_min_p: float = Field(0.4, ge=0.0, le=1.0)  # P band [clarify_min_p, answer level): "혹시 이 질문을 찾으셨나요?"
    clarify_gap: float = Field(0.15, ge=0.0, le=1.0)  # two candidates with P closer than this: clarify
    clarify_candidates: int = Field(3, ge=1, le=10)
    rerank: bool = True  # the scored candidate with the highest P goes first (answer.likeliest_first) ...
    rerank_margin: float = Field(0.3, ge=0.0, le=1.0)  # ... when its P beats the top's by more than this
    clarify: str = "혹시 이 질문을 찾으셨나요?"
    clarify_passage: str = "혹시 이 내용을 찾으셨나요?"  # a document passage in the band, quoted as "maybe this"
    decision_max_variants: int = Field(1500, ge=10)  # training questions sampled from big stores
    # labelled question files (the evaluation format) the decision model also learns from, beside the
    # operators' labels (chatbot/decision/calibration.py); relative paths from the working directory
    calibration_files: list[str] = Field(default_factory=list)
    verifier: bool = False  # also a cross-encoder fine-tuned from the store (chatbot/decision/verifier.py) as a feature
    suggestions: int = Field(3, ge=0, le=10)
    fallback: str = "죄송합니다. 질문에 딱 맞는 답을 찾지 못했습니다. 아래 질문 중에 찾으시는 내용이 있나요?"
    # the fallback with nothing to suggest (no FAQ near the question, a category with no FAQ): no "below"
    fallback_alone: str = "죄송합니다. 질문에 딱 맞는 답을 찾지 못했습니다. 다른 말로 바꾸어 다시 물어봐 주세요."
    # the same for a question with no Hangul: the FAQ is Korean, so say so in English too
    fallback_foreign: str = ("Sorry, no exact answer was found. This FAQ is written in Korean, so a question in Korean "
                             "works best. (한국어로 물어보시면 더 잘 찾아 드립니다.)")
    # a message that is nothing but courtesy (chatbot/message.py): a word back, as a fallback without suggestions
    greeting_reply: str = "안녕하세요! 궁금한 점을 질문으로 적어 주시면 FAQ와 안내 문서에서 찾아 드릴게요."
    thanks_reply: str = "도움이 되었다니 다행입니다. 더 궁금한 점이 있으면 언제든 물어보세요."
    # a question that names nothing to look up (text.names_a_topic: "언제요?", "모르겠어요"): asked for its topic
    no_topic_reply: str = "무엇에 관한 질문인지 조금 더 자세히 적어 주세요. (Please say what your question is about.)"
    max_question_chars: int = 2000


class IngestSettings(BaseModel):
    chunk_size: int = Field(500, ge=50)
    chunk_overlap: int = Field(80, ge=0)
    batch_size: int = Field(256, ge=1)
    # Size limits (ingest/limits.py): a file over one is rejected whole, its stored records kept.
    max_file_mb: float = Field(50, gt=0)  # bytes on disk of any FAQ file or document
    max_unzipped_mb: float = Field(200, gt=0)  # .docx/.hwpx/.xlsx: all zip members together, uncompressed
    max_zip_member_mb: float = Field(100, gt=0)  # ... one member (an XML part is parsed whole by some readers)
    max_chars_per_document: int = Field(2_000_000, ge=1)  # extracted text of one document; also one CSV field
    max_rows: int = Field(100_000, ge=1)  # rows (lines, objects) of one FAQ file / first sheet
    max_pdf_pages: int = Field(2_000, ge=1)


class AppSettings(BaseModel):
    """The web server, and the limits on what an anonymous client can make it do (README: Security)."""

    host: str = "127.0.0.1"
    port: int = 7860
    password: str | None = None
    feedback_log: Path = Path("var/feedback.jsonl")
    feedback_log_max_mb: int = Field(50, ge=1)  # rotated to .1 … .3 beyond this
    sample_faq: list[Path] = [Path("data/faq.csv")]
    sample_docs: list[Path] = [Path("data/docs")]
    upload_dir: Path = Path("var/uploads")  # the page's own upload folder; events may name files only here
    max_upload_mb: int = Field(20, ge=1)
    upload_dir_max_mb: int = Field(500, ge=1)  # uploads are refused (507) while the folder is this full
    upload_max_age_s: int = Field(3600, ge=2)  # uploaded files are deleted after this
    max_api_body_kb: int = Field(64, ge=1)
    max_event_body_kb: int = Field(1024, ge=16)  # page events carry the chat history
    ask_per_minute: int = Field(120, ge=0)  # per client address; 0 = unlimited
    feedback_per_minute: int = Field(30, ge=0)
    uploads_per_minute: int = Field(10, ge=0)
    events_per_minute: int = Field(240, ge=0)
    queue_max_size: int = Field(200, ge=1)  # page events waiting beyond this are refused
    request_threads: int = Field(64, ge=1)  # API requests handled at once (the rest wait); bounds the threads a flood makes
    ingest_timeout_s: int = Field(900, ge=10)  # a web ingestion is stopped (nothing lost) after this
    ingest_lock_timeout_s: float = Field(10.0, ge=0)
    # a start with no decision model for its store yet waits this long for the first one (seconds on the sample)
    # before it answers: until then only the raw score threshold could decide, which answers off-topic questions
    decision_wait_s: float = Field(120.0, ge=0)
    operator_token: str | None = None  # Bearer token of /api/operator/*; unset = those endpoints answer 403


MaskPattern = Literal["rrn", "card", "phone", "email", "account"]


class LogSettings(BaseModel):
    """The question log (chatbot.questionlog): where it lives, what is masked, how long rows are kept."""

    enabled: bool = True
    url: str = "sqlite:///var/questions.db"
    retention_days: int = Field(180, ge=1)
    mask: bool = True
    mask_patterns: list[MaskPattern] = ["rrn", "card", "phone", "email", "account"]
    mask_extra: dict[str, str] = {}
    batch_size: int = Field(100, ge=1)
    flush_interval_ms: int = Field(200, ge=1)
    queue_size: int = Field(10_000, ge=1)
    import_feedback: bool = True


class OperatorSettings(BaseModel):
    """The operator loop (chatbot/operator): which logged questions reach the inbox and how they are grouped."""

    inbox_days: int = Field(7, ge=1)  # default look-back of the inbox
    low_p: float = Field(0.6, ge=0.0, le=1.0)  # answered with P below this: low confidence
    score_margin: float = Field(0.02, ge=0.0)  # no P: answered with a score below threshold + margin is low confidence
    max_questions: int = Field(20_000, ge=1)  # newest inbox questions loaded per view
    cluster_distance: float = Field(0.1, gt=0.0, le=2.0)  # cosine distance that joins two questions (average linkage)
    cluster_sample: int = Field(2_000, ge=10)  # above this many distinct questions: cluster a sample, assign the rest


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the default YAML, then the file named by FAQBOT_CONFIG on top of it."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for path in _config_files():
            merged = _deep_merge(merged, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        return merged


def _config_files() -> list[Path]:
    files = [DEFAULT_CONFIG] if DEFAULT_CONFIG.exists() else []
    extra = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if extra:
        path = Path(extra)
        if not path.exists():
            raise FileNotFoundError(f"{ENV_PREFIX}CONFIG points at {path}, which does not exist")
        files.append(path)
    return files


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


class Settings(BaseSettings):
    """All configuration; env vars such as FAQBOT_ENCODER__MODEL override the YAML."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore")

    encoder: EncoderSettings = EncoderSettings()
    text: TextSettings = TextSettings()
    store: StoreSettings = StoreSettings()
    lexical: LexicalSettings = LexicalSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    answer: AnswerSettings = AnswerSettings()
    ingest: IngestSettings = IngestSettings()
    app: AppSettings = AppSettings()
    log: LogSettings = LogSettings()
    operator: OperatorSettings = OperatorSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _YamlSource(settings_cls)

    def with_overrides(self, **sections: dict[str, Any]) -> "Settings":
        """A copy with some section fields replaced, e.g. with_overrides(store={"path": tmp})."""
        data = self.model_dump()
        return Settings.model_validate(_deep_merge(data, sections))


def load_settings(**overrides: dict[str, Any]) -> Settings:
    """Settings from YAML + environment, with optional per-section overrides from code."""
    settings = Settings()
    return settings.with_overrides(**overrides) if overrides else settings
