"""The store source name of the operator's FAQs (a module of its own: the search core imports it cheaply).

Its FAQ with id X shadows FAQ X of every other source in search (chatbot.fusion.group_hits), so an
edited copy of a spreadsheet's FAQ replaces it without touching the spreadsheet.
"""
OPERATOR_SOURCE = "operator-edits.jsonl"
