"""Ingest limits against real bomb files built in tmp: each is refused quickly, with bounded memory, with a
message that names the limit and the setting to raise, and a refused file leaves the store untouched."""
from __future__ import annotations

import dataclasses
import re
import resource
import struct
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest

from chatbot.settings import load_settings
from ingest.doc_readers import DocumentReadError, read_document
from ingest.faq_readers import read_faq
from ingest.limits import FileTooLargeError, ReadLimits, default_limits
from ingest.sync import ingest_paths
from tests.test_ingest_readers import HP, HS, write_docx, write_pdf
from tests.test_ingest_sync import stored, write_faq

MB = 1024 * 1024


def limits(**changes) -> ReadLimits:
    return dataclasses.replace(default_limits(), **changes)


@contextmanager
def quick_and_small(seconds: float = 10, megabytes: int = 400):
    """The block must finish within `seconds` and raise the process's peak RSS by less than `megabytes`."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.perf_counter()
    yield
    assert time.perf_counter() - started < seconds
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024 < megabytes


def write_zip(path: Path, members: dict[str, bytes | int]) -> Path:
    """A zip whose members are bytes, or an int: that many zero bytes, streamed (compresses ~1000:1)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            if isinstance(content, bytes):
                archive.writestr(name, content)
                continue
            with archive.open(name, "w", force_zip64=True) as handle:
                chunk = bytes(MB)
                for _ in range(content // MB):
                    handle.write(chunk)
    return path


def hwpx_xml(paragraphs: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?><hs:sec xmlns:hs="{HS}" xmlns:hp="{HP}">{paragraphs}</hs:sec>'.encode()


def para(text: str) -> str:
    return f"<hp:p><hp:run><hp:t>{text}</hp:t></hp:run></hp:p>"


def assert_names_setting(error: pytest.ExceptionInfo, name: str, source: str) -> None:
    message = str(error.value)
    assert message.startswith(f"{source}: ")
    assert f"FAQBOT_INGEST__{name.upper()}" in message and f"ingest.{name}" in message
    assert "한도" in message and "exceeds the limit" in message


# --- zip archives ----------------------------------------------------------------------------------
def test_hwpx_member_bomb_is_refused_from_its_declared_size(tmp_path):
    bomb = write_zip(tmp_path / "bomb.hwpx", {"mimetype": b"application/hwp+zip", "Contents/section0.xml": 150 * MB})
    assert bomb.stat().st_size < MB
    with quick_and_small(), pytest.raises(FileTooLargeError) as error:
        read_document(bomb)
    assert_names_setting(error, "max_zip_member_mb", "bomb.hwpx")


def test_hwpx_total_unzipped_size_is_limited(tmp_path):
    members = {f"Contents/section{i}.xml": 80 * MB for i in range(3)}  # each under 100 MB, 240 MB in all
    bomb = write_zip(tmp_path / "many.hwpx", {"mimetype": b"application/hwp+zip", **members})
    with quick_and_small(), pytest.raises(FileTooLargeError) as error:
        read_document(bomb)
    assert_names_setting(error, "max_unzipped_mb", "many.hwpx")


def _lie_about_size(path: Path, name: str, declared: int) -> None:
    """Patch the member's uncompressed size in its local header and in its central directory entry."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        local, entry = archive.getinfo(name).header_offset, archive.start_dir
    struct.pack_into("<I", data, local + 22, declared)
    while data[entry + 46 : entry + 46 + len(name)] != name.encode():  # walk the central directory to the member
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, entry + 28)
        entry += 46 + name_len + extra_len + comment_len
    struct.pack_into("<I", data, entry + 24, declared)
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo(name).file_size == declared


def test_a_member_that_lies_about_its_size_is_not_expanded(tmp_path):
    xml = hwpx_xml(para("가" * 1000) * 20_000)  # 60 MB of text, claimed to be 1 KB
    path = write_zip(tmp_path / "liar.hwpx", {"mimetype": b"application/hwp+zip", "Contents/section0.xml": xml})
    _lie_about_size(path, "Contents/section0.xml", 1024)
    with quick_and_small(), pytest.raises((DocumentReadError, FileTooLargeError)):
        read_document(path)


def test_hwpx_text_stops_at_the_character_limit_while_streaming(tmp_path):
    xml = hwpx_xml(para("가나다라마" * 200) * 3_000)  # 3,000,000 characters > 2,000,000
    path = write_zip(tmp_path / "long.hwpx", {"mimetype": b"application/hwp+zip", "Contents/section0.xml": xml})
    with quick_and_small(), pytest.raises(FileTooLargeError) as error:
        read_document(path)
    assert_names_setting(error, "max_chars_per_document", "long.hwpx")


def test_hwpx_millions_of_empty_elements_count_too(tmp_path):
    xml = hwpx_xml("<hp:p/>" * 300_000)
    path = write_zip(tmp_path / "empty.hwpx", {"mimetype": b"application/hwp+zip", "Contents/section0.xml": xml})
    with quick_and_small(), pytest.raises(FileTooLargeError, match="XML"):
        read_document(path, limits(max_chars_per_document=100_000))


def test_hwpx_tables_keep_document_order_when_streamed(tmp_path):
    cells = "".join(f"<hp:tc><hp:subList>{para(c)}</hp:subList></hp:tc>" for c in ("셀1", "셀2"))
    body = para("앞") + f"<hp:p><hp:run><hp:t>표 제목</hp:t><hp:tbl><hp:tr>{cells}</hp:tr></hp:tbl></hp:run></hp:p>" + para("뒤")
    path = write_zip(tmp_path / "t.hwpx", {"mimetype": b"application/hwp+zip", "Contents/section0.xml": hwpx_xml(body)})
    (part,) = read_document(path).items
    assert part.text.split("\n\n") == ["앞", "표 제목", "셀1 | 셀2", "뒤"]  # the row's cells on one line


def _replace_member(path: Path, name: str, content: bytes | int) -> Path:
    with zipfile.ZipFile(path) as archive:
        members: dict[str, bytes | int] = {n: archive.read(n) for n in archive.namelist() if n != name}
    members[name] = content
    return write_zip(path, members)


def test_docx_with_a_huge_document_xml_is_refused_before_python_docx_parses_it(tmp_path):
    path = write_docx(tmp_path / "huge.docx")
    with zipfile.ZipFile(path) as archive:
        xml = archive.read("word/document.xml").decode()
    paragraph = f"<w:p><w:r><w:t>{'개인정보 처리방침 ' * 100}</w:t></w:r></w:p>"
    huge = re.sub(r"<w:body>", "<w:body>" + paragraph * 3_000, xml, count=1)  # ~3,000,000 characters
    _replace_member(path, "word/document.xml", huge.encode())
    assert path.stat().st_size < MB
    with quick_and_small(), pytest.raises(FileTooLargeError) as error:
        read_document(path)
    assert_names_setting(error, "max_chars_per_document", "huge.docx")


def test_docx_with_a_zero_filled_member_is_refused(tmp_path):
    path = _replace_member(write_docx(tmp_path / "zeros.docx"), "word/media/image1.png", 150 * MB)
    with quick_and_small(), pytest.raises(FileTooLargeError) as error:
        read_document(path)
    assert_names_setting(error, "max_zip_member_mb", "zeros.docx")


def test_normal_documents_still_read(tmp_path):
    (part,) = read_document(write_docx(tmp_path / "ok.docx")).items
    assert "보관 기간" in part.text


# --- workbooks, tables, PDF, any file ----------------------------------------------------------------
def test_xlsx_claiming_a_million_rows_and_every_column_is_refused_quickly(tmp_path):
    from openpyxl import Workbook

    path = tmp_path / "claims.xlsx"
    book = Workbook()
    book.active.append(["question", "answer"])
    book.active.append(["배송은 얼마나 걸리나요?", "2~3일"])
    book.save(path)
    with zipfile.ZipFile(path) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    sheet = re.sub(r'<dimension ref="[^"]*"/>', '<dimension ref="A1:XFD1048576"/>', sheet)
    sheet = sheet.replace("</sheetData>", '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row></sheetData>')
    _replace_member(path, "xl/worksheets/sheet1.xml", sheet.encode())
    with quick_and_small(seconds=15), pytest.raises(FileTooLargeError) as error:
        read_faq(path)
    assert_names_setting(error, "max_rows", "claims.xlsx")


def test_xlsx_rows_over_the_limit(tmp_path):
    from openpyxl import Workbook

    path = tmp_path / "rows.xlsx"
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["question", "answer"])
    for i in range(1_500):
        sheet.append([f"질문 {i}", f"답변 {i}"])
    book.save(path)
    assert len(read_faq(path).items) == 1_500
    with pytest.raises(FileTooLargeError) as error:
        read_faq(path, limits(max_rows=1_000))
    assert_names_setting(error, "max_rows", "rows.xlsx")


@pytest.mark.parametrize("name, body", [
    ("rows.csv", "question,answer\n" + "질문,답변\n" * 1_500),
    ("rows.jsonl", '{"question": "질문", "answer": "답변"}\n' * 1_500),
    ("rows.json", "[" + ",".join(['{"question": "질문", "answer": "답변"}'] * 1_500) + "]"),
])
def test_text_tables_rows_over_the_limit(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    with pytest.raises(FileTooLargeError) as error:
        read_faq(path, limits(max_rows=1_000))
    assert_names_setting(error, "max_rows", name)


def test_file_size_limit_for_faq_files_and_documents(tmp_path):
    faq = write_faq(tmp_path / "faq.csv")
    doc = tmp_path / "doc.txt"
    doc.write_text("가" * 2_000, encoding="utf-8")
    tiny = limits(max_file_mb=0.0001)  # 104 bytes
    for path, read in ((faq, read_faq), (doc, read_document)):
        with pytest.raises(FileTooLargeError) as error:
            read(path, tiny)
        assert_names_setting(error, "max_file_mb", path.name)


def test_plain_text_over_the_character_limit(tmp_path):
    doc = tmp_path / "long.md"
    doc.write_text("# 제목\n\n" + "가나다라마 " * 400_000, encoding="utf-8")
    with quick_and_small(), pytest.raises(FileTooLargeError) as error:
        read_document(doc)
    assert_names_setting(error, "max_chars_per_document", "long.md")


def test_pdf_page_limit(tmp_path):
    pdf = write_pdf(tmp_path / "pages.pdf", [["첫 쪽"], ["둘째 쪽"], ["셋째 쪽"]])
    assert len(read_document(pdf).items) == 3
    with pytest.raises(FileTooLargeError) as error:
        read_document(pdf, limits(max_pdf_pages=2))
    assert_names_setting(error, "max_pdf_pages", "pages.pdf")


def test_limits_come_from_settings_and_environment(monkeypatch):
    monkeypatch.setenv("FAQBOT_INGEST__MAX_ROWS", "123")
    settings = load_settings()
    assert ReadLimits.from_settings(settings.ingest).max_rows == 123
    assert default_limits() == ReadLimits(50, 200, 100, 2_000_000, 100_000, 2_000)


# --- CSV fields -------------------------------------------------------------------------------------
def test_csv_field_longer_than_the_csv_modules_default_is_read(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(f'question,answer\n긴 답변,"{"가" * 200_000}"\n', encoding="utf-8")
    (entry,) = read_faq(path).items
    assert len(entry.answer) == 200_000


def test_csv_field_over_the_limit_is_one_clear_rejection_without_a_doubled_prefix(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(f'question,answer\n긴 답변,"{"가" * 200_000}"\n', encoding="utf-8")
    settings = load_settings(store={"path": str(tmp_path / "chroma")}, ingest={"max_chars_per_document": 150_000})
    report = ingest_paths(settings, "faq", [path])
    (rejection,) = report.rejected
    text = str(rejection)
    assert text.startswith("long.csv: ") and text.count("long.csv") == 1
    assert "FAQBOT_INGEST__MAX_CHARS_PER_DOCUMENT" in text and "2행" in text
    assert report.store_count is None  # nothing readable: the store was not even opened


def test_malformed_json_message_has_one_prefix(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[{"question": "q", "answer": "a"},\n{oops}]', encoding="utf-8")
    report = ingest_paths(load_settings(store={"path": str(tmp_path / "chroma")}), "faq", [path])
    (rejection,) = report.rejected
    assert str(rejection).startswith("bad.json: 2행 (line 2)") and str(rejection).count("bad.json") == 1


# --- a refused file leaves the store untouched ------------------------------------------------------
def test_refused_reupload_keeps_the_stored_records(make_settings, tmp_path):
    settings = make_settings(ingest={"max_rows": 100})
    faq = write_faq(tmp_path / "up" / "faq.csv")
    ingest_paths(settings, "faq", [faq])
    before = stored(settings)
    faq.write_text("id,question,answer\n" + "".join(f"n-{i},새 질문 {i},새 답변 {i}\n" for i in range(200)), encoding="utf-8")
    report = ingest_paths(settings, "faq", [faq])
    assert not report.ok and "FAQBOT_INGEST__MAX_ROWS" in str(report.rejected[0])
    assert report.sources["faq.csv"].error and report.sources["faq.csv"].deleted == 0
    assert stored(settings) == before


# --- cancelling ------------------------------------------------------------------------------------
def test_cancel_before_anything_touches_nothing(tmp_path):
    from ingest.sync import IngestCancelled

    settings = load_settings(store={"path": str(tmp_path / "chroma")})
    with pytest.raises(IngestCancelled, match="rerun"):
        ingest_paths(settings, "faq", [write_faq(tmp_path / "faq.csv")], should_stop=lambda: True)
    assert not (tmp_path / "chroma").exists()


def test_cancel_mid_write_deletes_nothing_and_a_rerun_finishes(make_settings, tmp_path):
    from ingest.sync import IngestCancelled

    settings = make_settings(ingest={"batch_size": 1})
    faq = write_faq(tmp_path / "faq.csv")
    ingest_paths(settings, "faq", [faq])
    old = set(stored(settings))
    faq.write_text(faq.read_text(encoding="utf-8").replace(".", "!"), encoding="utf-8")  # every answer changes
    calls = []

    def stop_after_two_batches() -> bool:
        calls.append(1)
        return len(calls) > 4  # the file, before the model, two batches; then stop

    with pytest.raises(IngestCancelled):
        ingest_paths(settings, "faq", [faq], should_stop=stop_after_two_batches)
    partly = set(stored(settings))
    assert old <= partly and len(partly - old) == 2  # two new records written, nothing deleted
    report = ingest_paths(settings, "faq", [faq])
    assert report.ok and report.sources["faq.csv"].deleted == len(old)
    assert set(stored(settings)).isdisjoint(old) and len(stored(settings)) == len(old)


def test_stop_after_is_a_deadline():
    from ingest.sync import stop_after

    assert stop_after(0)() and not stop_after(60)()


# --- the same FAQ id in two files -----------------------------------------------------------------
def test_same_faq_id_in_two_files_is_a_warning_naming_both(make_settings, tmp_path, caplog):
    settings = make_settings()
    first = write_faq(tmp_path / "a.csv")
    second = tmp_path / "b.csv"
    second.write_text("id,question,answer\nd-1,택배는 언제 와요?,내일 옵니다.\nz-9,영업시간은요?,9시부터 6시까지입니다.\n", encoding="utf-8")
    report = ingest_paths(settings, "faq", [first, second])  # in one run
    (note,) = [n for n in report.notes if "same FAQ id" in n]
    assert "a.csv · b.csv" in note and "'d-1'" in note and "z-9" not in note
    assert any("same FAQ id" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")

    second_only = ingest_paths(settings, "faq", [second])  # a.csv is only in the store now
    assert any("a.csv · b.csv" in n and "'d-1'" in n for n in second_only.notes)
    assert second_only.ok  # a warning, not a rejection
