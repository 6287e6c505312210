"""Fast tests: no embedding model, no server, no browser (fakes in tests/fakes.py). `make test-fast`."""
