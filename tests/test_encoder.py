"""Model resolution and encoding through the real sentence-transformers path (tiny BERT)."""
from __future__ import annotations

import numpy as np
import pytest

from chatbot.encoder import ModelNotFoundError, load_encoder, resolve_model
from chatbot.settings import EncoderSettings


def test_local_folder_is_used_as_is(tiny_model_dir):
    resolved = resolve_model(str(tiny_model_dir))
    assert resolved.source == "local folder" and resolved.path == tiny_model_dir.resolve()


def test_missing_folder_names_it_and_the_fix(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist.*FAQBOT_ENCODER__MODEL"):
        resolve_model(str(tmp_path / "no-such-model"))


def test_folder_without_model_files(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not a model folder"):
        resolve_model(str(tmp_path))


def test_unknown_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="Unknown model 'nobody/no-such-encoder'.*local sentence-transformers folder"):
        resolve_model("nobody/no-such-encoder", hub_timeout_s=1)


def test_encoder_is_cached_and_normalised(tiny_model_dir):
    settings = EncoderSettings(model=str(tiny_model_dir), device="cpu")
    encoder = load_encoder(settings)
    assert load_encoder(settings) is encoder
    vectors = encoder.encode_questions(["배송 언제 와요?", "환불 해주세요"])
    assert vectors.shape == (2, encoder.dimension)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode_questions([]).shape == (0, encoder.dimension)


def test_prefixes_change_the_vector(tiny_model_dir):
    encoder = load_encoder(EncoderSettings(model=str(tiny_model_dir), device="cpu"))
    q = encoder.encode_questions(["배송 언제 와요?"])[0]
    p = encoder.encode_passages(["배송 언제 와요?"])[0]
    assert not np.allclose(q, p)
    assert encoder.identity()["encoder_question_prefix"] == "query: "


def test_released_torch_weights_come_back_on_demand(make_settings):
    """A serving process on ONNX drops the torch copy; code that needs it (static mode, training) reloads it."""
    from chatbot.encoder import Encoder, load_encoder

    encoder = load_encoder(make_settings().encoder)
    if encoder.onnx is None:
        pytest.skip("ONNX Runtime is not available here")
    mine = Encoder(encoder.model, encoder.resolved, encoder.settings, encoder.onnx)  # not the process-wide cached one
    before = mine.encode_questions(["배송은 얼마나 걸리나요?"])
    assert mine.release_torch() and mine._model is None
    assert np.allclose(mine.encode_questions(["배송은 얼마나 걸리나요?"]), before)  # ONNX needs no torch
    assert mine.model is not None and mine._model is not None  # loaded again when asked for
    assert mine.dimension == encoder.dimension
