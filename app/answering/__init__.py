"""Answering: the policy that turns look-up and retrieval into an answer
(``answerer``) and the services a command or the server is built from
(``services``); all user-visible wording is in ``data/wording.yaml``."""
