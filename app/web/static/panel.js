/* The widget's panel, part 4 of 4, loaded last (see panel-core.js): the conversation. What is shown
   (the greeting, each question and its answer, errors), what is kept (sessionStorage, and the history
   sent with each question), the form's and the host page's events, and start-up. */
(function (P) {
  "use strict";

  var config = P.config, params = P.params, t = P.t, fmt = P.fmt, el = P.el;
  var renderAnswer = P.renderAnswer, markdownOf = P.markdownOf, request = P.request;

  var hostOrigin = "*"; // the messages carry no data ("ready", "close"); the host's origin when known
  try {
    var h = params.get("host");
    if (h && new URL(h).origin === h) hostOrigin = h;
  } catch (e) { /* keep "*" */ }
  var greeting = (params.get("greeting") || "").trim().slice(0, 500) || t("widget.greeting");
  var STORE = "bouncebot:widget:conversation";
  var KEEP = 25;

  var $ = function (id) { return document.getElementById(id); };
  var messages = $("messages"), form = $("ask"), input = $("question"), send = $("send");
  var errorBox = $("error"), clearBtn = $("clear");
  var busy = false;

  // Colours come from widget.js, which picked the text colour that contrasts with the accent.
  var HEX = /^#(?:[0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i;
  var accent = params.get("accent") || "", onAccent = params.get("onaccent") || "";
  if (HEX.test(accent) && HEX.test(onAccent)) {
    document.documentElement.style.setProperty("--accent", accent);
    document.documentElement.style.setProperty("--on-accent", onAccent);
  }

  // ------------------------------------------------------------------ the conversation

  function reveal(node) {
    messages.scrollTop = Math.max(0, node.offsetTop - messages.offsetTop - 8);
  }

  function addUser(q) {
    var b = el("div", "msg user");
    b.appendChild(el("span", "sr-only", t("widget.you_asked")));
    b.appendChild(el("p", "q", q));
    messages.appendChild(b);
    return b;
  }

  function greet() {
    var g = el("div", "msg bot greeting");
    g.appendChild(el("p", null, greeting));
    var ex = (config.examples || []).slice(0, 3);
    if (ex.length) {
      var chips = el("div", "chips");
      chips.setAttribute("role", "group");
      chips.setAttribute("aria-label", t("widget.examples"));
      ex.forEach(function (q) {
        var chip = el("button", "chip", q);
        chip.type = "button";
        chip.addEventListener("click", function () { input.value = q; ask(); });
        chips.appendChild(chip);
      });
      g.appendChild(chips);
    }
    messages.appendChild(g);
  }

  function load() {
    try { return JSON.parse(sessionStorage.getItem(STORE) || "[]") || []; } catch (e) { return []; }
  }

  function save(turns) {
    turns = turns.slice(-KEEP);
    while (turns.length) {
      try { sessionStorage.setItem(STORE, JSON.stringify(turns)); return; } catch (e) { turns = turns.slice(1); }
    }
    try { sessionStorage.removeItem(STORE); } catch (e) { /* storage blocked: the live page still keeps it */ }
  }

  var turns = load();

  // The conversation shown, oldest first, as the API takes it: each question, and each answer's Markdown
  // (what the agents' chat shows too). The newest HISTORY_TURNS turns, within HISTORY_BYTES of text.
  var HISTORY_TURNS = 20, HISTORY_BYTES = 512 * 1024;
  function history() {
    var out = [], bytes = 0;
    for (var i = turns.length - 1; i >= 0 && out.length + 2 <= HISTORY_TURNS; i--) {
      var q = String(turns[i].q || ""), a = markdownOf(turns[i].a);
      bytes += new Blob([q, a]).size;
      if (bytes > HISTORY_BYTES) break; // whole exchanges only, newest first
      out.unshift({ role: "user", content: q }, { role: "assistant", content: a });
    }
    return out;
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
  }

  function hideError() {
    errorBox.hidden = true;
    errorBox.textContent = "";
  }

  function failedTo(q, userBubble, text) {
    userBubble.remove();
    if (!input.value) input.value = q; // kept for another try
    showError(text);
  }

  function ask() {
    var q = input.value;
    if (busy) return;
    if (!q.trim()) { showError(t("widget.empty_question")); input.focus(); return; }
    busy = true;
    send.disabled = true;
    hideError();
    var user = addUser(q);
    input.value = "";
    var pending = el("div", "msg bot pending", t("widget.pending"));
    pending.setAttribute("role", "status");
    messages.appendChild(pending);
    messages.setAttribute("aria-busy", "true");
    reveal(user);
    request(config.stream === true ? "widget/api/ask/stream" : "widget/api/ask",
      JSON.stringify({ question: q, history: history() }), pending).then(function (res) {
      pending.remove();
      if (res.live && !(res.r.ok && res.body && Array.isArray(res.body.codes))) res.live.remove();
      if (res.r.ok && res.body && Array.isArray(res.body.codes)) {
        var b = renderAnswer(res.body);
        if (res.live) res.live.replaceWith(b); else messages.appendChild(b);
        reveal(user);
        turns.push({ q: q, a: res.body });
        save(turns);
      } else if (res.r.status === 429) {
        var wait = parseInt(res.r.headers.get("Retry-After"), 10);
        failedTo(q, user, fmt("widget.rate_limited", {
          wait: wait > 0 ? fmt(wait === 1 ? "widget.wait_second" : "widget.wait_seconds", { n: wait }) : t("widget.wait_moment")
        }));
      } else {
        failedTo(q, user, (res.body && typeof res.body.error === "string" && res.body.error) ||
          fmt("widget.server_error", { status: res.r.status }));
      }
    }).catch(function () {
      pending.remove();
      failedTo(q, user, t("widget.offline"));
    }).then(function () {
      busy = false;
      send.disabled = false;
      messages.removeAttribute("aria-busy");
    });
  }

  function restore() {
    messages.textContent = "";
    greet();
    turns.forEach(function (t) {
      addUser(t.q);
      try { messages.appendChild(renderAnswer(t.a)); } catch (e) { /* a stored turn from another version */ }
    });
    messages.scrollTop = messages.scrollHeight;
  }

  form.addEventListener("submit", function (e) { e.preventDefault(); ask(); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); ask(); }
  });
  input.addEventListener("input", function () { if (!errorBox.hidden && input.value.trim()) hideError(); });
  clearBtn.addEventListener("click", function () {
    turns = [];
    save(turns);
    hideError();
    restore();
    input.focus();
  });

  function post(type) {
    if (window.parent !== window) window.parent.postMessage({ bouncebot: 1, type: type }, hostOrigin);
  }
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { e.preventDefault(); post("close"); }
  });
  window.addEventListener("message", function (e) {
    if (e.source !== window.parent || !e.data || e.data.bouncebot !== 1) return;
    if (e.data.type === "focus") (e.data.where === "last" ? clearBtn : input).focus();
  });

  restore();
  post("ready");
})(window.BouncebotPanel);
