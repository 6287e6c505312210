"""An OpenAI-compatible HTTP server over the verified GGUF: ``python -m app.llm.serve --port 8080``.

It is xllamacpp's own server (llama.cpp's C++ HTTP server, built into the wheel: nothing
compiles), so ``BOUNCEBOT_LLM=openai BOUNCEBOT_LLM_URL=http://127.0.0.1:8080/v1`` talks to
the same model as ``local`` does, over HTTP. ``/health`` answers 200 once the model is
loaded; ``/v1/chat/completions`` streams with ``"stream": true``. It listens on 127.0.0.1
unless told otherwise and stops on SIGTERM or Ctrl+C.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from app.errors import BadSetting

from app.errors import LLMError
from .runtime import BATCH_THREADS, server_params
from .model_file import ensure_model
from .settings import DEFAULT_MODEL, LLMSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.llm.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--threads", type=int, help="CPU threads (default: BOUNCEBOT_LLM_THREADS or 1)")
    parser.add_argument("--batch-threads", type=int, help="prompt processing's threads (default: at least 2 "
                                                          "on 2 cores or more, as in-process)")
    parser.add_argument("--api-key", help="require this key (default: BOUNCEBOT_LLM_API_KEY, or none)")
    parser.add_argument("--alias", default=DEFAULT_MODEL, help="the model name the server answers to")
    args = parser.parse_args(argv)
    try:
        settings = LLMSettings.from_env()
        path = ensure_model(settings.model_cache).path
        threads = args.threads or settings.threads
        batch = args.batch_threads or max(threads, BATCH_THREADS)
        xlc, params = server_params(path, threads=threads, batch_threads=batch, host=args.host, port=args.port,
                                    api_key=args.api_key or settings.api_key, alias=args.alias, http_threads=2)
        server = xlc.Server(params)
    except (LLMError, BadSetting) as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except RuntimeError as e:  # xllamacpp: the port is taken, or the file cannot be loaded
        print(f"error: the server did not start on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"serving {args.alias} ({path.name}) at {server.listening_address}/v1", flush=True)
    stop.wait()
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main())
