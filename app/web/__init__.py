"""The web layer, on top: one FastAPI server (``server``) with the JSON API
(``api``), the agents' Gradio chat (``chat``), the help-centre widget
(``widget``, ``static/``), the security middleware (``security``) and the
agents' feedback log in SQLite (``feedback``)."""
