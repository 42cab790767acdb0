"""The web layer: a thin page (Gradio) and JSON API (FastAPI) over the one Pipeline; no scoring here.

    app.py       create_app(settings) → FastAPI with /api/*, the page at "/", the request guard in front
    api.py       the /api routes and their request/response models
    ui.py        the page's layout and wiring
    handlers.py  what the page's events do (plain functions of the Service)
    service.py   the Pipeline plus readiness, ingestion and statistics
    guard.py     body caps, per-client rates, no server paths in page events
    limits.py    rate limiter and password back-off
    render.py    HTML/Markdown shown on the page
    reports.py   ingestion reports as rows and summaries
"""
