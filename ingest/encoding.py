"""Bytes of a text file → text, the way Korean users' files come: UTF-8 (BOM or not), Excel's UTF-16, CP949/EUC-KR."""
from __future__ import annotations


class UndecodableError(ValueError):
    """None of the encodings fits; the message names the file and says to save it as UTF-8."""


def decode_text(data: bytes, source: str) -> tuple[str, str]:
    """Bytes → (text, encoding name): UTF-8 (with or without BOM), UTF-16 with BOM (Excel 'Unicode text'), then CP949/EUC-KR."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "UTF-16"
    try:
        text = data.decode("utf-8-sig")
        return text, "UTF-8 (BOM)" if data.startswith(b"\xef\xbb\xbf") else "UTF-8"
    except UnicodeDecodeError as utf8_error:
        try:
            return data.decode("cp949"), "CP949"
        except UnicodeDecodeError:
            raise UndecodableError(
                f"{source}: UTF-8로도 CP949(EUC-KR)로도 읽을 수 없습니다 (cannot decode as UTF-8 or CP949; "
                f"first bad byte at offset {utf8_error.start}). UTF-8로 저장해 주세요."
            ) from None
