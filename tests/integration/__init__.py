"""Integration tests: the real model, real Chroma (temp dirs and `chroma run`), real servers on loopback, the real browser (browser/)."""
