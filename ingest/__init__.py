"""Ingestion: files → readers → records → idempotent sync into the store.

One module per step, following the data flow:

- `faq_readers`  CSV / TSV / JSONL / JSON / XLSX FAQ files → FaqEntry rows (+ rejected rows)
- `doc_readers`  TXT / MD / PDF / DOCX / HTML / HWPX documents → DocumentPart pages
- `chunking`     DocumentPart → Chunk on kiwi sentence boundaries
- `records`      FaqEntry / Chunk → Record (content-derived ids)
- `sync`         Records → store (write new first, delete stale last) and `ingest_paths`, the one
                 function the CLI, the web app and the tests call
- `cli`          `python -m ingest faq FILE…` / `python -m ingest docs PATH…`
"""
