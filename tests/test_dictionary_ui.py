"""The 📖 동의어 tab: table ↔ entries, and a save through the real app that lexical search uses at once."""
from __future__ import annotations

import json

import httpx
import pytest
import yaml

from chatbot.web.dictionary_ui import entries_from_table
from tests.helpers import app_env, call_event, component_of, event_output, find_event, page_config, running_app, write_faq

PASSWORD = "사전-비밀-1"


def test_editor_rows_become_entries_and_blank_rows_are_deleted():
    table = [["환불", "리턴 | 돈 돌려받기", ""], ["", "무시", ""], ["한빛마켓", "", "NNP"], [None, None, None]]
    assert entries_from_table(table) == [
        {"canonical": "환불", "variants": "리턴 | 돈 돌려받기", "tag": None},
        {"canonical": "한빛마켓", "variants": "", "tag": "NNP"},
    ]


@pytest.mark.app
def test_saving_the_table_needs_the_password_and_changes_lexical_search_at_once(tmp_path, tiny_model_dir):
    dictionary = tmp_path / "synonyms.yaml"
    dictionary.write_text("entries: []\n", encoding="utf-8")
    faq = write_faq(tmp_path / "faq.csv", [("refund-1", "환불", "환불 규정이 궁금합니다", "7일 안에 환불됩니다.", "")])
    env = app_env(tmp_path, tiny_model_dir, faq, app__password=PASSWORD, text__synonyms=str(dictionary),
                  retrieval__mode="lexical", answer__lexical_threshold="0.5")
    with running_app(tmp_path, env) as server:
        base = server["base"]
        before = httpx.post(f"{base}/api/ask", json={"question": "리턴 규정"}, timeout=30).json()
        config = page_config(base)
        save = find_event(config, target=component_of(config, "dictionary-save"), trigger="click")
        table = {"headers": ["a", "b", "c"], "data": [["환불", "리턴 | 돈 돌려받기", ""]], "metadata": None}
        refused = event_output(call_event(base, save, [table, "wrong"]))
        assert refused is not None and not refused.get("success")
        assert "리턴" not in dictionary.read_text(encoding="utf-8")
        saved = event_output(call_event(base, save, [table, PASSWORD], timeout_s=60))
        assert saved is not None and saved.get("success"), saved
        assert "저장했습니다" in json.dumps(saved["output"]["data"], ensure_ascii=False)
        stored = yaml.safe_load(dictionary.read_text(encoding="utf-8"))
        assert "리턴" in json.dumps(stored, ensure_ascii=False)
        after = httpx.post(f"{base}/api/ask", json={"question": "리턴 규정"}, timeout=30).json()
        assert after["type"] == "faq" and after["faq_id"] == "refund-1", (before, after)
        assert before["type"] == "fallback" or before["score"] < after["score"]
