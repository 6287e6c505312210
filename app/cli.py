"""The ``bouncebot`` command.

    bouncebot ingest                     build or update the index from the KB
    bouncebot lookup TEXT [--json]       codes in TEXT against the error table (no model)
    bouncebot ask QUESTION [--json]      answer one question
    bouncebot ask --json --batch FILE    answer JSON Lines ({"question": ..., "history": [...]}); '-' is stdin
    bouncebot serve [--host H] [--port P] [--workers N]
    bouncebot insights --since 7d [--json]   what the conversation log says (--eval-case ID: one eval case)

Exit codes: 0 done; 1 failure; 2 bad input (empty or too long a question,
bad arguments); 3 the index is missing, stale or unreadable; 4 a malformed article;
5 search is unavailable (the vector store did not answer in time).
Only the modules a command needs are imported: ``lookup`` never loads torch, nor pydantic
(``app.answering.lookup_plain``), and as a process it ends without the interpreter's tear-down
(``_end_now``): its answer is printed and flushed, and nothing is left to save.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from app.config import Settings
from app.errors import BadQuestion, BouncebotError, CannotReadFile, NoFeedbackYet


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _read_text(args_text: list[str]) -> str:
    if args_text == ["-"]:
        return sys.stdin.read()
    return " ".join(args_text)


def cmd_ingest(settings: Settings, args) -> int:
    from ingest.indexer import ingest

    from app.search.embeddings import Embedder
    from app.search.chroma import make_client, where

    # embedding is nearly all of an ingest's time: all cores, unless BOUNCEBOT_EMBED_THREADS says otherwise
    threads = max(1, settings.ingest_threads)
    print(f"Ingesting {settings.kb_dir} into {where(settings)} (embedding on {threads} thread(s)) ...", file=sys.stderr)
    embedder = Embedder.from_settings(settings, threads=threads)
    report = ingest(settings, make_client(settings), embedder, progress=True)
    embedder.prepare_files()  # the queries' file too (mixed by default): made now, not on the first question
    print(report.summary())
    return 0


def _read_file(path: str, limit: int) -> str:
    """A bounce message from a file, as text (undecodable bytes replaced)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as e:
        raise CannotReadFile(path, e.strerror) from None
    if len(raw) > limit:
        raise BadQuestion(f"{path} is larger than {limit:,} bytes; pass only the bounce message "
                          "(or raise BOUNCEBOT_MAX_QUESTION_BYTES).")
    return raw.decode("utf-8", "replace")


def _print_lookup(data: dict) -> None:
    """A look-up's JSON object (``lookup_plain.lookup_data``) as ``render.lookup_text``'s plain-text
    lines (wording: wording.yaml's ``cli:``), read through the contract's field names."""
    from app.answering.lookup_plain import LookupView
    from app.answering.render import lookup_text

    print(lookup_text(LookupView(data)))


def _one_shot() -> None:
    """A command that answers and exits skips pydantic's plugin discovery (it reads every installed
    package's entry points, ~10 ms, for plugins this project never installs); set
    PYDANTIC_DISABLE_PLUGINS yourself (e.g. to an empty value) to have them loaded."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def cmd_lookup(settings: Settings, args) -> int:
    _one_shot()
    from app.answering.lookup_plain import lookup_data
    from app.answering.services import load_kb
    from app.codes.table import CodeTable

    table = CodeTable.from_articles(load_kb(settings))
    inputs: list[tuple[str | None, str]] = []
    if args.file:
        for path in args.file:
            inputs.append((path, _read_file(path, settings.max_question_bytes)))
    if args.text:
        inputs.append((None, _read_text(args.text)))
    if not inputs:
        raise BadQuestion("Give text to look up, '-' for standard input, or --file PATH.")
    for path, text in inputs:
        data = lookup_data(table, text)  # contract.Lookup's JSON object, key for key (no pydantic)
        if args.json:
            _print_json(data if path is None else {"file": path, **{k: v for k, v in data.items() if k != "text"}})
        else:
            if path is not None:
                from app.answering.render import WORDING

                print(WORDING["cli"]["file"].format(path=path))
            _print_lookup(data)
    return 0


def _end_now(code: int) -> int:
    """End a one-shot process now, skipping the interpreter's tear-down (freeing every module and
    object one by one: measured 7-8 ms of a `bouncebot lookup`, 25 ms once pydantic is loaded). Only
    when nothing needs it:
    the output flushes cleanly, no exit handler is registered (logging, coverage...), no profiler
    or tracer runs and no other thread is alive; otherwise the code is returned for a normal exit."""
    import atexit
    import threading

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: the normal exit reports it as it always did
        return code
    handlers = getattr(atexit, "_ncallbacks", lambda: 1)()
    if handlers or sys.getprofile() or sys.gettrace() or threading.active_count() > 1:
        return code
    os._exit(code)


def _preload_model(settings: Settings) -> None:
    """The model's session starts loading in a thread while the command imports the rest (store, web stack)."""
    from app.search.embeddings import preload

    preload(settings)


def cmd_ask(settings: Settings, args) -> int:
    _one_shot()
    _preload_model(settings)
    from app.answering.services import build

    services = build(settings)
    answerer = services.answerer
    if args.batch is not None:
        return _ask_batch(answerer, args)
    if args.file:
        questions = [_read_file(path, settings.max_question_bytes) for path in args.file]
    else:
        questions = [_read_text(args.question)]
    for question in questions:
        answer = answerer.ask(question)
        if args.json:
            _print_json(answer.to_dict())
        else:
            print(answer.answer)
    return 0


def _ask_batch(answerer, args) -> int:
    if not args.json:
        raise BadQuestion("--batch prints JSON Lines: add --json.")
    try:
        stream = sys.stdin if args.batch == "-" else open(args.batch, encoding="utf-8")
    except OSError as e:
        raise CannotReadFile(args.batch, e.strerror) from None
    failed = 0
    with stream:
        for lineno, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                if not isinstance(item, dict) or "question" not in item:
                    raise BadQuestion('each line must be a JSON object with a "question" field')
                request = _request(item)
                _print_json(answerer.ask(request.question, request.history).to_dict())
            except (json.JSONDecodeError, BadQuestion) as e:
                failed += 1
                _print_json({"line": lineno, "error": str(e)})
    if failed:
        print(f"{failed} line(s) could not be answered; see the error objects in the output.", file=sys.stderr)
        return 2
    return 0


def _request(item: dict):
    """A batch line as the API's request ({"question", "history"}); a malformed one is bad input."""
    from pydantic import ValidationError

    from app.answering.contract import AskRequest

    try:
        return AskRequest.model_validate(item)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in x.get('loc', ())) or 'line'}: {x.get('msg')}" for x in e.errors())
        raise BadQuestion(f"malformed line ({problems})") from None


def cmd_serve(settings: Settings, args) -> int:
    settings = settings.with_(host=args.host or settings.host, port=args.port or settings.port,
                              workers=args.workers or settings.workers)
    if settings.workers == 1:  # N workers each load their own
        _preload_model(settings)
    from app.web.server import serve

    serve(settings)
    return 0


def cmd_feedback(settings: Settings, args) -> int:
    from app.web.feedback import FeedbackLog, export_down

    if not settings.database_url and not settings.feedback_db.exists():  # PostgreSQL: the log says if it has none
        raise NoFeedbackYet(settings.feedback_db)
    feedback_log = FeedbackLog.from_settings(settings, read_only=True)  # BOUNCEBOT_DATABASE_URL: PostgreSQL
    if args.out in (None, "-"):
        n = export_down(feedback_log, sys.stdout)
    else:
        with open(args.out, "w", encoding="utf-8") as f:
            n = export_down(feedback_log, f)
    print(f"Exported {n} thumbs-down answer(s) as eval cases.", file=sys.stderr)
    return 0


def cmd_insights(settings: Settings, args) -> int:
    from app.insights.command import run

    return run(settings, since=args.since, as_json=args.json, eval_case_id=args.eval_case,
               use_model=not args.no_model)


def _workers(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of worker processes, at least 1")
    return n


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bouncebot", description="Answers questions about bounced email replies.")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("ingest", help="build or update the vector index from the knowledge base")

    lk = sub.add_parser("lookup", help="find SMTP codes in text and match them to the error table")
    lk.add_argument("text", nargs="*", help="text containing codes ('-' reads standard input)")
    lk.add_argument("--file", nargs="+", metavar="PATH", help="bounce messages (.eml or pasted text), one result each")
    lk.add_argument("--json", action="store_true", help="print JSON")

    ask = sub.add_parser("ask", help="answer a question from the help article")
    ask.add_argument("question", nargs="*", help="the question ('-' reads standard input)")
    ask.add_argument("--json", action="store_true", help="print the answer contract as JSON")
    ask.add_argument("--file", nargs="+", metavar="PATH", help="answer for each bounce message file, in order")
    ask.add_argument("--batch", metavar="FILE",
                     help="JSON Lines of {\"question\": ..., \"history\": [{\"role\", \"content\"}]}; '-' is standard input")

    sv = sub.add_parser("serve", help="start the web chat")
    sv.add_argument("--host", help="interface to listen on (default BOUNCEBOT_HOST or 127.0.0.1)")
    sv.add_argument("--port", type=int, help="port (default BOUNCEBOT_PORT or 7860)")
    sv.add_argument("--workers", type=_workers, help="worker processes (default BOUNCEBOT_WORKERS or 1; "
                    "more than 1 needs a Chroma server: BOUNCEBOT_CHROMA_URL)")
    fb = sub.add_parser("feedback", help="work with agents' feedback")
    fb_sub = fb.add_subparsers(dest="action", required=True)
    ex = fb_sub.add_parser("export", help="write thumbs-down answers as eval cases (JSON Lines)")
    ex.add_argument("--out", help="file to write (default: standard output)")

    ins = sub.add_parser("insights", help="what agents asked, what the article lacks, how answers landed")
    ins.add_argument("--since", default="7d", help="the period: 7d, 24h or 2026-11-01..2026-11-30 (default 7d)")
    ins.add_argument("--json", action="store_true", help="print the insights as one JSON object")
    ins.add_argument("--eval-case", type=int, metavar="ID", help="print logged message ID as an eval case line")
    ins.add_argument("--no-model", action="store_true", help="group refused questions by shared words, "
                     "without the embedding model")

    sub.add_parser("eval", help="measure answer accuracy against baselines (bouncebot eval --help)")
    return p


def main(argv: list[str] | None = None) -> int:
    """The command for ``argv``; None: this process's own arguments (the console script, ``python -m
    app.cli``), and then a look-up ends the process itself when it is done (``_end_now``)."""
    as_process = argv is None
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["eval"]:  # its own options live in evals/run.py
        from evals.run import main as eval_main

        return eval_main(argv[1:])
    args = parser().parse_args(argv)
    if args.command == "ask" and args.batch is None and not args.file and not args.question:
        args.question = [""]
    try:
        settings = Settings.from_env()
        handler = {"ingest": cmd_ingest, "lookup": cmd_lookup, "ask": cmd_ask, "serve": cmd_serve,
                   "feedback": cmd_feedback, "insights": cmd_insights}[args.command]
        code = handler(settings, args)
    except BouncebotError as e:
        print(f"bouncebot: {e}", file=sys.stderr)
        code = e.exit_code
    except KeyboardInterrupt:
        return 130
    return _end_now(code) if as_process and args.command == "lookup" else code


if __name__ == "__main__":
    sys.exit(main())
