"""One app process for the multiprocess metrics test: ``python -m tests.integration._metrics_app PORT INDEX_DIR``.

The whole app (``create_app``) over services on the fake embedder (a real embedded Chroma in INDEX_DIR),
served by uvicorn on 127.0.0.1:PORT; PROMETHEUS_MULTIPROC_DIR comes from the environment, as a worker's does."""

from __future__ import annotations

import sys
from pathlib import Path


def main(port: int, index_dir: Path) -> None:
    import uvicorn

    from app.web.server import create_app
    from tests.fakes import FakeFeedbackLog, fake_services

    app = create_app(fake_services(index_dir), FakeFeedbackLog())
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
