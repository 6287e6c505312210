/* The widget's chat panel (GET /widget, shown in an iframe by widget.js).

   Every answer is built as DOM from the answer contract's JSON fields with textContent:
   nothing typed by the visitor, quoted from the article or written by the bot is ever parsed
   as HTML. The little Markdown in passages (paragraphs, lists, bold, links) is turned into
   elements by hand; links are kept only for http(s) and mailto. */
(function () {
  "use strict";

  var config = {};
  try { config = JSON.parse(document.getElementById("bb-config").textContent) || {}; } catch (e) { config = {}; }
  var params = new URLSearchParams(location.search);
  var hostOrigin = "*"; // the messages carry no data ("ready", "close"); the host's origin when known
  try {
    var h = params.get("host");
    if (h && new URL(h).origin === h) hostOrigin = h;
  } catch (e) { /* keep "*" */ }
  var article = config.article || "the help article";
  var greeting = (params.get("greeting") || "").trim().slice(0, 500) ||
    "Hi! Ask about an email delivery error, such as an error code, or paste the failure message you got.";
  var STORE = "bouncebot:widget:conversation";
  var KEEP = 25;
  var SEVERITY = {
    permanent: "Permanent failure", temporary: "Temporary failure", success: "Success", unknown: "Unknown type"
  };
  var BASIS = {
    provider: "the email provider's own documentation of this code",
    registry: "the official registry of email status codes (IANA)",
    "class-subject": "what this kind of code means in the email standards (RFC 3463)",
    "reply-code": "what this reply code means in the email standard (SMTP)"
  };

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

  // ------------------------------------------------------------------ DOM helpers (text only)

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function safeHref(url) {
    try {
      var u = new URL(String(url), location.href);
      return /^(https?:|mailto:)$/.test(u.protocol) ? u.href : null;
    } catch (e) { return null; }
  }

  function link(text, url) {
    var href = safeHref(url);
    if (!href) return el("span", null, text);
    var a = el("a", null, text);
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }

  // Inline Markdown: [text](url), **bold**, `code`, *emphasis*; everything else is text.
  var INLINE = /\[([^\]\n]+)\]\(([^)\s]+)\)|\*\*([^*\n]+)\*\*|`([^`\n]+)`|\*([^*\n]+)\*/g;
  function inline(parent, text) {
    var last = 0, m;
    text = String(text);
    INLINE.lastIndex = 0;
    while ((m = INLINE.exec(text)) !== null) {
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      if (m[1] !== undefined) parent.appendChild(link(m[1], m[2]));
      else if (m[3] !== undefined) parent.appendChild(el("strong", null, m[3]));
      else if (m[4] !== undefined) parent.appendChild(el("code", null, m[4]));
      else parent.appendChild(el("em", null, m[5]));
      last = INLINE.lastIndex;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
    return parent;
  }

  // Block Markdown: paragraphs, > quotes, - and 1. lists, | tables |, # headings.
  var ITEM = /^\s*(?:[-*+]|(\d+)[.)])\s+/;
  function markdown(parent, text) {
    String(text || "").replace(/\r\n?/g, "\n").split(/\n[ \t]*\n/).forEach(function (block) {
      var lines = block.split("\n").filter(function (l) { return l.trim() !== ""; });
      if (!lines.length) return;
      if (lines.every(function (l) { return /^\s*>/.test(l); })) {
        var q = el("blockquote");
        markdown(q, lines.map(function (l) { return l.replace(/^\s*> ?/, ""); }).join("\n"));
        parent.appendChild(q);
      } else if (lines.every(function (l) { return ITEM.test(l); })) {
        var list = el(ITEM.exec(lines[0])[1] ? "ol" : "ul");
        lines.forEach(function (l) { list.appendChild(inline(el("li"), l.replace(ITEM, ""))); });
        parent.appendChild(list);
      } else if (lines.every(function (l) { return /^\s*\|/.test(l); })) {
        var table = el("table");
        lines.filter(function (l) { return !/^\s*\|[\s|:-]+\|?\s*$/.test(l); }).forEach(function (l, i) {
          var tr = el("tr");
          l.trim().replace(/^\||\|$/g, "").split("|").forEach(function (cell) {
            tr.appendChild(inline(el(i ? "td" : "th"), cell.trim()));
          });
          table.appendChild(tr);
        });
        parent.appendChild(table);
      } else if (/^#{1,6}\s/.test(lines[0]) && lines.length === 1) {
        parent.appendChild(inline(el("p", "md-heading"), lines[0].replace(/^#+\s*/, "")));
      } else {
        parent.appendChild(inline(el("p"), lines.join(" ")));
      }
    });
    return parent;
  }

  // ------------------------------------------------------------------ one answer

  function rowByText(text) {
    var rows = config.rows || [];
    for (var i = 0; i < rows.length; i++) if (rows[i].text === text) return rows[i];
    return null;
  }

  function tableWords(card, row) {
    card.appendChild(el("div", "label", "What it means"));
    card.appendChild(el("p", "meaning", row.meaning));
    card.appendChild(el("div", "label", "What you can do"));
    card.appendChild(el("p", "action", row.action));
  }

  function codeCard(c) {
    var exact = c.match === "exact" && c.row;
    var card = el("section", "card " + (exact ? "exact" : "none"));
    card.setAttribute("data-code", c.code);
    card.setAttribute("aria-label", "Error code " + c.code);
    var head = el("div", "card-head");
    head.appendChild(el("span", "code", c.code));
    head.appendChild(el("span", "badge sev-" + c.severity, SEVERITY[c.severity] || c.severity));
    head.appendChild(el("span", "badge " + (exact ? "intable" : "notintable"),
      exact ? "In the article's table" : "Not in the article's table"));
    card.appendChild(head);
    if (exact) {
      if (c.row.code !== c.code) card.appendChild(el("p", "via", "Matches the table's row for " + c.row.code + "."));
      tableWords(card, c.row);
      return card;
    }
    card.appendChild(el("p", "warn",
      "This code isn't in the article's table, so the article doesn't say what it means."));
    var e = c.explanation;
    if (e) {
      var g = el("div", "general");
      g.appendChild(el("div", "general-label", "General guidance, not from the article"));
      g.appendChild(el("p", "basis", "Based on " + (BASIS[e.basis] || e.basis) + "."));
      g.appendChild(el("p", "general-meaning", e.meaning));
      g.appendChild(el("div", "label", "What you can generally do"));
      g.appendChild(el("p", "general-action", e.action));
      card.appendChild(g);
    }
    if (c.related && c.related.length) {
      var p = el("p", "related", "Similar codes in the article's table (not this code): ");
      p.appendChild(document.createTextNode(c.related.map(function (r) {
        return r.code + " (same " + r.shares + ")";
      }).join(", ") + "."));
      card.appendChild(p);
    }
    return card;
  }

  function cite(parent, sources) {
    var seen = {};
    var p = el("p", "cite", "Source: ");
    sources.forEach(function (s) {
      var key = s.url + "\n" + s.section;
      if (seen[key]) return;
      if (Object.keys(seen).length) p.appendChild(document.createTextNode(", "));
      seen[key] = true;
      p.appendChild(link(s.article + " › " + s.section, s.url));
    });
    parent.appendChild(p);
  }

  function supportBox(parent) {
    var s = config.support;
    if (!s) return;
    var box = el("div", "support");
    var intro = el("p", null, "For anything the article doesn't cover, its section ");
    intro.appendChild(link(s.section, s.url));
    intro.appendChild(document.createTextNode(" says:"));
    box.appendChild(intro);
    box.appendChild(markdown(el("blockquote"), s.text));
    parent.appendChild(box);
  }

  function renderAnswer(a) {
    var bubble = el("article", "msg bot");
    bubble.setAttribute("aria-label", "Answer");
    var codes = a.codes || [], sources = a.sources || [];
    var exactRows = {};
    codes.forEach(function (c) {
      if (c.match === "exact" && c.row) exactRows[c.row.code] = true;
      bubble.appendChild(codeCard(c));
    });
    var rowSources = [], passages = [];
    sources.forEach(function (s) {
      var row = rowByText(s.text);
      if (row && exactRows[row.code]) rowSources.push(s);
      else passages.push({ source: s, row: row });
    });
    if (rowSources.length) cite(bubble, rowSources);
    if (passages.length) {
      bubble.appendChild(el("p", "intro", codes.length
        ? "What the article says about failed replies in general:"
        : "From the article “" + (passages[0].source.article || article) + "”:"));
      passages.forEach(function (item) {
        var s = item.source, box;
        if (item.row) {
          box = el("section", "card exact passage-row");
          box.setAttribute("data-code", item.row.code);
          var head = el("div", "card-head");
          head.appendChild(el("span", "code", item.row.code));
          head.appendChild(el("span", "badge intable", "From the article's table"));
          box.appendChild(head);
          tableWords(box, item.row);
        } else {
          box = markdown(el("blockquote", "passage"), s.text);
        }
        bubble.appendChild(box);
        cite(bubble, [s]);
      });
    }
    if (!sources.length) {
      if (!codes.length) {
        // The bot's own "I don't know" sentence (and the other article it points to, if any).
        var first = String(a.answer || "").split(/\n\s*\n/)[0] ||
          "I don't know: the article “" + article + "” doesn't answer this.";
        bubble.appendChild(markdown(el("div", "dont-know"), first));
      }
      supportBox(bubble);
    }
    return bubble;
  }

  // ------------------------------------------------------------------ the conversation

  function reveal(node) {
    messages.scrollTop = Math.max(0, node.offsetTop - messages.offsetTop - 8);
  }

  function addUser(q) {
    var b = el("div", "msg user");
    b.appendChild(el("span", "sr-only", "You asked: "));
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
      chips.setAttribute("aria-label", "Example questions");
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
    if (!q.trim()) { showError("Type a question first."); input.focus(); return; }
    busy = true;
    send.disabled = true;
    hideError();
    var user = addUser(q);
    input.value = "";
    var pending = el("div", "msg bot pending", "Looking it up in the article…");
    pending.setAttribute("role", "status");
    messages.appendChild(pending);
    messages.setAttribute("aria-busy", "true");
    reveal(user);
    fetch("widget/api/ask", {
      method: "POST", headers: { "Content-Type": "application/json" }, credentials: "omit", cache: "no-store",
      body: JSON.stringify({ question: q })
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) { return { r: r, body: body }; });
    }).then(function (res) {
      pending.remove();
      if (res.r.ok && res.body && Array.isArray(res.body.codes)) {
        var b = renderAnswer(res.body);
        messages.appendChild(b);
        reveal(user);
        turns.push({ q: q, a: res.body });
        save(turns);
      } else if (res.r.status === 429) {
        var wait = parseInt(res.r.headers.get("Retry-After"), 10);
        failedTo(q, user, "You've asked a lot of questions in a short time. Please wait " +
          (wait > 0 ? wait + " second" + (wait === 1 ? "" : "s") : "a moment") + ", then try again.");
      } else {
        failedTo(q, user, (res.body && typeof res.body.error === "string" && res.body.error) ||
          "Sorry, something went wrong on our side (error " + res.r.status + "). Please try again.");
      }
    }).catch(function () {
      pending.remove();
      failedTo(q, user, "Can't reach the help chat right now. Check your connection, then try again.");
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
})();
