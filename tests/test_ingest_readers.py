"""FAQ and document readers, chunking and record building, on small Korean files written by the tests.

The PDF and HWPX helpers below build real files by hand (no PDF writer is installed): a PDF with a
Type0 font and a ToUnicode map, so pypdf extracts the exact Korean text, and an OWPML zip.
"""
from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import pytest

from ingest.items import DocumentPart, FaqEntry
from chatbot.text import split_sentences
from ingest.chunking import chunk_document
from ingest.doc_readers import iter_document_files, read_document
from ingest.faq_readers import FaqFormatError, read_faq
from ingest.records import chunk_records, faq_records


# ------------------------------------------------------------------------------------------------
# Hand-made files
# ------------------------------------------------------------------------------------------------
def _utf16_hex(text: str) -> str:
    return "".join(f"{ord(ch):04X}" for ch in text)


def write_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A valid PDF whose pages show the given lines in a Type0 font with a ToUnicode map, so
    pypdf extracts the exact Korean text. Glyph codes are the characters' own UTF-16 values."""
    chars = sorted({ch for page in pages for line in page for ch in line})
    cmap_lines = [
        "/CIDInit /ProcSet findresource begin", "12 dict begin", "begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def", "/CMapType 2 def",
        "1 begincodespacerange", "<0000> <FFFF>", "endcodespacerange",
    ]
    for start in range(0, len(chars), 100):
        block = chars[start : start + 100]
        cmap_lines.append(f"{len(block)} beginbfchar")
        cmap_lines.extend(f"<{ord(c):04X}> <{ord(c):04X}>" for c in block)
        cmap_lines.append("endbfchar")
    cmap_lines += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
    cmap = "\n".join(cmap_lines).encode("ascii")

    objects: list[bytes] = []  # object n is objects[n - 1]

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    def stream(data: bytes) -> bytes:
        return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"

    catalog = add(b"")  # filled in below
    pages_obj = add(b"")
    cid_font = add(
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /NanumGothic "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /DW 1000 >>"
    )
    to_unicode = add(stream(cmap))
    font = add(
        b"<< /Type /Font /Subtype /Type0 /BaseFont /NanumGothic /Encoding /Identity-H "
        b"/DescendantFonts [%d 0 R] /ToUnicode %d 0 R >>" % (cid_font, to_unicode)
    )
    kids = []
    for lines in pages:
        ops = ["BT", "/F1 12 Tf", "72 770 Td", "14 TL"]
        for line in lines:
            ops.append(f"<{_utf16_hex(line)}> Tj T*")
        ops.append("ET")
        contents = add(stream("\n".join(ops).encode("ascii")))
        kids.append(add(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 %d 0 R >> >> "
            b"/Contents %d 0 R >>" % (pages_obj, font, contents)
        ))
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_obj
    objects[pages_obj - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids), len(kids))

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, catalog, xref)
    path.write_bytes(bytes(out))
    return path


HS = "http://www.hancom.co.kr/hwpml/2011/section"
HP = "http://www.hancom.co.kr/hwpml/2011/paragraph"


def _hwpx_paragraph(text: str) -> str:
    return f"<hp:p><hp:run><hp:t>{text}</hp:t></hp:run></hp:p>"


def write_hwpx(path: Path, sections: list[list[str]], table: list[list[str]] | None = None) -> Path:
    """An HWPX archive: mimetype, Contents/section{i}.xml with hp:p/hp:run/hp:t paragraphs.

    `table` (rows of cells) adds, to the first section, a paragraph holding a table whose cells are nested
    paragraphs; a cell text with a newline is written as two paragraphs of that cell.
    Sections are written into the zip in reverse order, so readers must sort them."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/hwp+zip", compress_type=zipfile.ZIP_STORED)
        archive.writestr("version.xml", '<?xml version="1.0" encoding="UTF-8"?><hv:HCFVersion xmlns:hv="urn:x"/>')
        for index in reversed(range(len(sections))):
            body = "".join(_hwpx_paragraph(t) for t in sections[index])
            if index == 0 and table:
                rows = "".join(
                    "<hp:tr>" + "".join(
                        "<hp:tc><hp:subList>" + "".join(_hwpx_paragraph(t) for t in cell.split("\n")) + "</hp:subList></hp:tc>"
                        for cell in row
                    ) + "</hp:tr>"
                    for row in table
                )
                body += f"<hp:p><hp:run><hp:t>요금표</hp:t><hp:tbl>{rows}</hp:tbl></hp:run></hp:p>"
            xml = f'<?xml version="1.0" encoding="UTF-8"?><hs:sec xmlns:hs="{HS}" xmlns:hp="{HP}">{body}</hs:sec>'
            archive.writestr(f"Contents/section{index}.xml", xml)
    return path


def write_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("개인정보 처리방침", level=1)
    document.add_paragraph("회사는 이용자의 개인정보를 소중히 다룹니다. 수집한 정보는 목적 외로 쓰지 않습니다.")
    document.add_heading("보관 기간", level=2)
    table = document.add_table(rows=2, cols=3)
    table.cell(0, 0).text = "항목"
    table.cell(0, 1).text = "보관 기간"
    table.cell(0, 2).text = "근거"
    table.cell(1, 0).text = "주문 기록"
    merged = table.cell(1, 1).merge(table.cell(1, 2))
    merged.text = "5년"
    document.add_paragraph("문의는 고객센터로 해 주세요.")
    document.save(str(path))
    return path


def csv_file(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# ------------------------------------------------------------------------------------------------
# FAQ readers
# ------------------------------------------------------------------------------------------------
FAQ_CSV = (
    "id,category,question,answer,alternatives\n"
    "d-1,배송,배송은 얼마나 걸리나요?,주문 후 2~3일 안에 도착합니다.,배송 기간이 궁금해요 | 언제 도착하나요?\n"
    'd-2,환불,환불은 어떻게 받나요?,"반품이 확인되면, 3영업일 안에 환불됩니다.\n카드 결제는 카드사 사정에 따라 더 걸릴 수 있습니다.","환불 방법\n돈 돌려받기"\n'
    "d-3,,비밀번호를 잊어버렸어요,로그인 화면에서 비밀번호 찾기를 누르세요.,\n"
)


def test_csv_utf8_with_alternatives_multiline_and_category(tmp_path):
    result = read_faq(csv_file(tmp_path, "faq.csv", FAQ_CSV))
    assert result.rejected == []
    first, second, third = result.items
    assert first == FaqEntry(
        question="배송은 얼마나 걸리나요?", answer="주문 후 2~3일 안에 도착합니다.", source="faq.csv", line=2,
        faq_id="d-1", alternatives=("배송 기간이 궁금해요", "언제 도착하나요?"), category="배송",
    )
    assert second.line == 3 and second.alternatives == ("환불 방법", "돈 돌려받기")
    assert second.answer == "반품이 확인되면, 3영업일 안에 환불됩니다.\n카드 결제는 카드사 사정에 따라 더 걸릴 수 있습니다."
    assert third.line == 6  # the quoted answer and alternatives above span three physical lines
    assert third.category is None and third.alternatives == ()


def test_csv_bom_and_korean_headers_any_case_and_spacing(tmp_path):
    text = "번호, 분류 ,질문,답,다른 질문\n7,회원,회원 탈퇴는 어떻게 하나요?,마이페이지에서 할 수 있습니다.,탈퇴 방법|계정 삭제\n"
    result = read_faq(csv_file(tmp_path, "bom.csv", text, "utf-8-sig"))
    (entry,) = result.items
    assert (entry.faq_id, entry.category, entry.alternatives) == ("7", "회원", ("탈퇴 방법", "계정 삭제"))
    upper = "ID,Question ,ANSWER,Alternative Questions (optional),Category\n1,쿠폰은 어디에 입력하나요?,결제 화면에서 입력합니다.,x,이벤트\n"
    # 'Alternative Questions' is not an alias: it is ignored, not mistaken for something else
    (entry,) = read_faq(csv_file(tmp_path, "upper.csv", upper)).items
    assert (entry.faq_id, entry.question, entry.category, entry.alternatives) == ("1", "쿠폰은 어디에 입력하나요?", "이벤트", ())


def test_csv_cp949_is_detected_and_logged(tmp_path, caplog):
    text = "질문,답변,유사질문\n교환 신청은 언제까지 하나요?,상품 수령 후 7일 이내에 가능합니다.,교환 기한\n"
    path = csv_file(tmp_path, "euckr.csv", text, "cp949")
    with caplog.at_level(logging.INFO, logger="ingest"):
        result = read_faq(path)
    assert [e.question for e in result.items] == ["교환 신청은 언제까지 하나요?"]
    assert result.items[0].alternatives == ("교환 기한",)
    assert any("euckr.csv" in m and "CP949" in m for m in caplog.messages)


def test_tsv_and_semicolon_sniffing(tmp_path):
    tsv = "질문\t답변\n고객센터 번호는?\t1588-0000 입니다. 평일 09:00~18:00, 주말 휴무.\n"
    (entry,) = read_faq(csv_file(tmp_path, "faq.tsv", tsv)).items
    assert entry.answer == "1588-0000 입니다. 평일 09:00~18:00, 주말 휴무."
    (entry,) = read_faq(csv_file(tmp_path, "tabs.csv", tsv)).items  # a .csv that was saved with tabs
    assert entry.question == "고객센터 번호는?"
    semicolons = "질문;답변\n영업시간은?;평일 9시~18시, 주말 휴무\n"
    (entry,) = read_faq(csv_file(tmp_path, "semi.csv", semicolons)).items
    assert entry.answer == "평일 9시~18시, 주말 휴무"


def test_malformed_rows_are_rejected_with_line_numbers_and_the_rest_is_read(tmp_path):
    text = (
        "id,question,answer\n"
        "1,배송비는 얼마인가요?,3000원입니다.\n"
        "2,,질문이 없는 행\n"
        "3,답변이 없는 행,\n"
        "4,열이 너무 많아요,답,남는 값\n"
        "5,열이 모자라요\n"
        "1,같은 번호,중복입니다\n"
        "\n"
        "6,정상 행,정상 답변입니다.,,\n"
    )
    result = read_faq(csv_file(tmp_path, "bad.csv", text))
    assert [(e.faq_id, e.line) for e in result.items] == [("1", 2), ("6", 9)]
    reasons = {r.line: r.reason for r in result.rejected}
    assert sorted(reasons) == [3, 4, 5, 6, 7]
    assert "missing question" in reasons[3] and "missing answer" in reasons[4]
    assert "wrong column count" in reasons[5] and "wrong column count" in reasons[6]
    assert "duplicate id" in reasons[7] and "2" in reasons[7]
    assert str(result.rejected[0]) == f"bad.csv:3: {reasons[3]}"


def test_duplicate_question_without_ids_is_rejected(tmp_path):
    text = "질문,답변\n배송 조회는?,마이페이지에서.\n배송 조회는?,다른 답.\n"
    result = read_faq(csv_file(tmp_path, "dup.csv", text))
    assert len(result.items) == 1 and result.rejected[0].line == 3 and "duplicate question" in result.rejected[0].reason


def test_no_question_answer_columns_names_found_and_expected(tmp_path):
    path = csv_file(tmp_path, "wrong.csv", "제목,내용\n가,나\n")
    with pytest.raises(FaqFormatError) as info:
        read_faq(path)
    message = str(info.value)
    assert "wrong.csv" in message and "'제목'" in message and "'내용'" in message
    assert "질문/question" in message and "답변/answer" in message


def test_missing_unsupported_and_undecodable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_faq(tmp_path / "nope.csv")
    with pytest.raises(FaqFormatError, match="unsupported"):
        read_faq(csv_file(tmp_path, "faq.xls", "x"))
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(bytes(range(128, 256)) * 4)
    with pytest.raises(FaqFormatError, match="UTF-8"):
        read_faq(garbage)
    with pytest.raises(FaqFormatError, match="empty"):
        read_faq(csv_file(tmp_path, "empty.csv", "\n\n"))


def test_jsonl_rejects_bad_lines_and_reads_the_rest(tmp_path):
    lines = [
        json.dumps({"id": "a", "질문": "포인트는 언제 사라지나요?", "답변": "적립 후 1년이 지나면 소멸됩니다.",
                    "유사질문": ["포인트 유효기간", "적립금 소멸"], "분류": "적립금"}, ensure_ascii=False),
        "{이건 JSON이 아님",
        json.dumps({"question": "답이 없어요"}, ensure_ascii=False),
        "",
        json.dumps(["배열"], ensure_ascii=False),
        json.dumps({"question": "선물 포장 되나요?", "answer": "주문서에서 선택하세요.", "alternatives": "포장|선물"}, ensure_ascii=False),
    ]
    path = tmp_path / "faq.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    result = read_faq(path)
    assert [(e.line, e.faq_id, e.category) for e in result.items] == [(1, "a", "적립금"), (6, None, None)]
    assert result.items[0].alternatives == ("포인트 유효기간", "적립금 소멸")
    assert result.items[1].alternatives == ("포장", "선물")
    reasons = {r.line: r.reason for r in result.rejected}
    assert sorted(reasons) == [2, 3, 5]
    assert "invalid JSON" in reasons[2] and "answer" in reasons[3] and "not a JSON object" in reasons[5]


def test_jsonl_without_question_fields_is_a_file_error(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"title": "a", "body": "b"}\n', encoding="utf-8")
    with pytest.raises(FaqFormatError, match="'title'"):
        read_faq(path)


def test_json_array_reports_object_lines(tmp_path):
    data = [
        {"id": 1, "question": "주소 변경은?", "answer": "배송 준비 전까지 가능합니다."},
        {"id": 2, "question": "", "answer": "질문 없음"},
    ]
    path = tmp_path / "faq.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    result = read_faq(path)
    assert [(e.faq_id, e.line) for e in result.items] == [("1", 2)]
    assert [r.line for r in result.rejected] == [7]


def test_xlsx_first_sheet_numbered_alternative_columns(tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "FAQ"
    sheet.append(["번호", "질문", "답변", "alt1", "alt2", "분류"])
    sheet.append([1, "적립금은 언제 들어오나요?", "구매 확정 후 바로 적립됩니다.", "적립 시점", None, "적립금"])
    sheet.append([2.0, "현금영수증 발급되나요?", "결제 단계에서 신청하세요.", "현금영수증", "영수증 발급", None])
    sheet.append([3, "답변 없는 질문", None, None, None, None])
    other = workbook.create_sheet("메모")
    other.append(["이 시트는 읽지 않습니다"])
    workbook.active = 1
    path = tmp_path / "faq.xlsx"
    workbook.save(path)
    result = read_faq(path)
    assert [(e.faq_id, e.line, e.alternatives, e.category) for e in result.items] == [
        ("1", 2, ("적립 시점",), "적립금"),
        ("2", 3, ("현금영수증", "영수증 발급"), None),
    ]
    assert [(r.line, "missing answer" in r.reason) for r in result.rejected] == [(4, True)]


def test_corrupt_xlsx_is_a_file_error(tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"not a zip")
    with pytest.raises(FaqFormatError, match="broken.xlsx"):
        read_faq(path)


# ------------------------------------------------------------------------------------------------
# Document readers
# ------------------------------------------------------------------------------------------------
def test_txt_cp949_and_markdown(tmp_path):
    txt = tmp_path / "배송안내.txt"
    txt.write_bytes("배송 안내\n\n평일 오후 2시 전 주문은 당일 발송합니다.\n제주는 3,000원이 추가됩니다.".encode("cp949"))
    (part,) = read_document(txt).items
    assert part.source == "배송안내.txt" and part.page is None
    assert part.text.startswith("배송 안내\n\n평일 오후 2시")

    md = tmp_path / "terms.md"
    md.write_text(
        "---\ntitle: x\n---\n# 이용약관\n제1조 본 약관은 **서비스** 이용 조건을 정합니다.\n"
        "## 제2조 (정의)\n- [회원](https://x.y)이란 가입한 사람입니다.\n- 비회원은 그 외입니다.\n"
        "\n| 구분 | 내용 |\n|---|:---:|\n| 회원 | 가입한 사람 |\n",
        encoding="utf-8",
    )
    (part,) = read_document(md).items
    assert part.text.split("\n\n") == [
        "이용약관", "제1조 본 약관은 서비스 이용 조건을 정합니다.", "제2조 (정의)", "회원이란 가입한 사람입니다.", "비회원은 그 외입니다.",
        "구분 | 내용", "회원 | 가입한 사람",
    ]


def test_docx_paragraphs_headings_and_tables_in_order(tmp_path):
    (part,) = read_document(write_docx(tmp_path / "privacy.docx")).items
    assert part.text.split("\n\n") == [
        "개인정보 처리방침",
        "회사는 이용자의 개인정보를 소중히 다룹니다. 수집한 정보는 목적 외로 쓰지 않습니다.",
        "보관 기간",
        "항목 | 보관 기간 | 근거",
        "주문 기록 | 5년",
        "문의는 고객센터로 해 주세요.",
    ]


def test_html_drops_script_and_style_and_keeps_headings(tmp_path):
    html = tmp_path / "membership.html"
    html.write_bytes(
        '<html><head><meta charset="euc-kr"><title>멤버십</title><style>p{color:red}</style></head><body>'
        "<script>var x = '비밀';</script><h1>멤버십 안내</h1><p>등급은 <b>매월 1일</b> 바뀝니다.</p>"
        "<ul><li>골드: 2% 적립</li><li>VIP: 3% 적립</li></ul>"
        "<table><tr><th>등급</th><th>조건</th></tr><tr><td>VIP</td><td>50만 원 이상</td></tr></table></body></html>".encode("cp949")
    )
    (part,) = read_document(html).items
    assert part.text.split("\n\n") == [
        "멤버십 안내", "등급은 매월 1일 바뀝니다.", "골드: 2% 적립", "VIP: 3% 적립", "등급 | 조건", "VIP | 50만 원 이상",
    ]
    assert "비밀" not in part.text and "color" not in part.text


def test_hwpx_sections_in_order_with_table_cells(tmp_path):
    path = write_hwpx(
        tmp_path / "공지.hwpx",
        [["공지사항", "설 연휴에는 배송이 쉽니다."], ["둘째 구역입니다."], ["셋째 구역입니다."]],
        table=[["기간", "내용"], ["2월 9일~12일", "배송 휴무\n주문은 받습니다"], ["2월 13일", ""]],
    )
    (part,) = read_document(path).items
    # a table row is one line, as in DOCX and HTML: the row's cells stay together in one chunk
    assert part.text.split("\n\n") == [
        "공지사항", "설 연휴에는 배송이 쉽니다.", "요금표", "기간 | 내용", "2월 9일~12일 | 배송 휴무 주문은 받습니다", "2월 13일",
        "둘째 구역입니다.", "셋째 구역입니다.",
    ]


def test_pdf_one_part_per_page(tmp_path):
    path = write_pdf(tmp_path / "반품.pdf", [["반품 안내", "상품 수령 후 7일 이내에 반품할 수 있습니다."], [], ["교환은 1회 무료입니다."]])
    result = read_document(path)
    assert [(p.page, p.text) for p in result.items] == [
        (1, "반품 안내\n상품 수령 후 7일 이내에 반품할 수 있습니다."), (3, "교환은 1회 무료입니다."),
    ]


def test_unsupported_missing_and_corrupt_documents(tmp_path):
    from ingest.doc_readers import DocumentReadError

    hwp = tmp_path / "old.hwp"
    hwp.write_bytes(b"HWP Document File")
    result = read_document(hwp)
    assert result.items == [] and "unsupported" in result.rejected[0].reason and ".hwpx" in result.rejected[0].reason
    with pytest.raises(FileNotFoundError, match="gone.pdf"):
        read_document(tmp_path / "gone.pdf")
    broken = tmp_path / "broken.docx"
    broken.write_bytes(b"not a docx")
    with pytest.raises(DocumentReadError, match="broken.docx"):
        read_document(broken)
    fake = tmp_path / "fake.hwpx"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("mimetype", "application/hwp+zip")
    with pytest.raises(DocumentReadError, match="section"):
        read_document(fake)


def test_iter_document_files_recurses_sorted_and_skips_hidden(tmp_path):
    (tmp_path / "b" / "c").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    for name in ["z.md", "a.txt", "b/c/x.pdf", "b/y.docx", ".git/h.txt", "b/~$lock.docx", "b/image.png"]:
        (tmp_path / name).write_text("x")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_document_files([tmp_path])]
    assert found == ["a.txt", "b/c/x.pdf", "b/y.docx", "z.md"]
    explicit = tmp_path / "b" / "image.png"
    assert list(iter_document_files([explicit])) == [explicit]  # named explicitly: the reader rejects it


# ------------------------------------------------------------------------------------------------
# Chunking and records
# ------------------------------------------------------------------------------------------------
SENTENCES = [
    "한빛마켓은 평일 오후 2시 이전 결제 건을 당일 발송합니다.",
    "제주와 도서산간 지역은 추가 배송비 3,000원이 붙습니다.",
    "신선식품은 아이스박스에 담아 새벽 배송으로 보내 드립니다.",
    "설치 상품은 설치 기사님이 직접 연락드린 뒤 방문합니다.",
    "해외 배송은 미국, 일본, 중국으로만 가능하며 7~14일 걸립니다.",
    "배송 조회는 마이페이지의 주문 배송 조회 메뉴에서 할 수 있습니다.",
]


def test_chunks_pack_whole_sentences_keep_pages_and_overlap():
    parts = [
        DocumentPart("배송 안내\n\n" + " ".join(SENTENCES[:4]), "guide.pdf", page=1),
        DocumentPart(" ".join(SENTENCES[4:]), "guide.pdf", page=2),
    ]
    chunks = chunk_document(parts, chunk_size=70, chunk_overlap=35)
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    assert {c.title for c in chunks} == {"배송 안내"} and {c.source for c in chunks} == {"guide.pdf"}
    assert all(len(c.text) <= 70 for c in chunks)
    sentences = set(split_sentences(parts[0].text)) | set(split_sentences(parts[1].text))
    for chunk in chunks:
        assert all(line in sentences for line in chunk.text.split("\n")), chunk.text  # whole sentences only
    page_two = [c for c in chunks if c.page == 2]
    assert page_two and all(c.text.split("\n")[0] in SENTENCES[4:] for c in page_two)  # never across a page
    assert any(a.text.split("\n")[-1] == b.text.split("\n")[0] for a, b in zip(chunks, chunks[1:]) if a.page == b.page)


def test_long_sentence_is_cut_at_spaces():
    long_sentence = "아주 " * 60 + "긴 문장입니다."
    chunks = chunk_document([DocumentPart(long_sentence, "long.txt")], chunk_size=60, chunk_overlap=10)
    assert len(chunks) > 1 and all(len(c.text) <= 60 for c in chunks)


def test_faq_records_one_per_variant_with_stable_content_ids():
    entry = FaqEntry("배송은 얼마나 걸리나요?", "2~3일 걸립니다.", "faq.csv", 2, "d-1", ("배송 기간", "언제 와요?"), "배송")
    records = faq_records([entry])
    assert [r.text for r in records] == ["배송은 얼마나 걸리나요?", "배송 기간", "언제 와요?"]
    assert {r.metadata["faq_id"] for r in records} == {"d-1"}
    assert [r.metadata["variant"] for r in records] == [0, 1, 2]
    assert all(r.metadata["main_question"] == entry.question and r.metadata["answer"] == entry.answer for r in records)
    assert all(r.id.startswith("faq-") and r.kind == "faq" and r.source == "faq.csv" for r in records)
    assert [r.id for r in faq_records([entry])] == [r.id for r in records]  # same content, same ids
    moved = FaqEntry(**{**entry.__dict__, "line": 40})
    assert [r.id for r in faq_records([moved])] == [r.id for r in records]  # a row that moved keeps its ids
    edited = FaqEntry(**{**entry.__dict__, "answer": "3~4일 걸립니다."})
    assert not {r.id for r in faq_records([edited])} & {r.id for r in records}
    no_id = FaqEntry("질문", "답", "faq.csv", 3)
    (record,) = faq_records([no_id])
    assert record.metadata["faq_id"] and "category" not in record.metadata
    assert faq_records([FaqEntry("질문", "답", "other.csv", 3)])[0].metadata["faq_id"] != record.metadata["faq_id"]


def test_chunk_records_carry_page_index_and_title():
    chunks = chunk_document([DocumentPart("제목\n\n본문 문장입니다.", "a.pdf", page=3)], 500, 80)
    (record,) = chunk_records(chunks)
    assert record.id.startswith("doc-") and record.kind == "doc" and record.source == "a.pdf"
    assert {k: record.metadata[k] for k in ("page", "chunk_index", "title")} == {"page": 3, "chunk_index": 0, "title": "제목"}
    assert record.content_hash == record.id.removeprefix("doc-")
