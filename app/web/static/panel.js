/* The widget's chat panel (GET /widget, shown in an iframe by widget.js).

   Every answer is built as DOM from the answer contract's structured fields with textContent
   (never from its Markdown ``answer``, and no source is recognised by its text: ``kind`` and
   ``code`` say what it is): nothing typed by the visitor, quoted from the article or written by
   the bot is ever parsed as HTML. The little Markdown in the article's own passages (paragraphs,
   lists, bold, links) is turned into elements by hand; links are kept only for http(s) and mailto.
   Every label comes from the server with the config (``labels``, from wording.yaml).
   In the language-model mode (``config.stream``) an answer is read as a stream of events (NDJSON):
   the skeleton's rows and citations at once, the model's tokens as text above them, then the final
   answer in its place; the model's text is only ever set as textContent. */
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
  // Labels under wording.yaml's own names: "meaning_label", "labels.in_table", "widget.send"...
  var L = config.labels || {};
  function t(key) {
    var v = key.split(".").reduce(function (o, k) { return o && typeof o === "object" ? o[k] : undefined; }, L);
    return typeof v === "string" ? v : "";
  }
  var article = config.article || "";
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
    var href = url ? safeHref(url) : null;
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

  // ------------------------------------------------------------------ labels (all from the server)

  // A label's template with its {placeholders} filled in, as text.
  function fmt(key, values) {
    return t(key).replace(/\{(\w+)\}/g, function (m, name) {
      return values && Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : m;
    });
  }

  // The same into ``parent``: a placeholder's value may be a node (a link, emphasis); the rest is text.
  function fill(parent, key, values) {
    t(key).split(/(\{\w+\})/).forEach(function (part) {
      var name = /^\{(\w+)\}$/.exec(part), v = name && values ? values[name[1]] : undefined;
      if (v === undefined || v === null) { if (part) parent.appendChild(document.createTextNode(part)); }
      else parent.appendChild(v instanceof Node ? v : document.createTextNode(String(v)));
    });
    return parent;
  }

  function severity(s) { return (L.severity_labels || {})[s] || s; }

  // ------------------------------------------------------------------ one answer (from its fields, never its Markdown)

  function tableWords(card, row) {
    card.appendChild(el("div", "label", t("meaning_label")));
    card.appendChild(el("p", "meaning", row.meaning));
    card.appendChild(el("div", "label", t("action_label")));
    card.appendChild(el("p", "action", row.action));
  }

  function cardHead(card, code, badges) {
    card.setAttribute("data-code", code);
    card.setAttribute("aria-label", fmt("widget.code_card", { code: code }));
    var head = el("div", "card-head");
    head.appendChild(el("span", "code", code));
    badges.forEach(function (b) { head.appendChild(el("span", b[0], b[1])); });
    card.appendChild(head);
    return card;
  }

  function codeCard(c) {
    var exact = c.match === "exact" && c.row;
    var badges = [["badge sev sev-" + c.severity, severity(c.severity)],
      exact ? ["badge intable", t("labels.in_table")] : ["badge notintable", t("labels.not_in_table")]];
    if (exact && c.row.code !== c.code) badges.push(["via", fmt("labels.table_row", { row_code: c.row.code })]);
    if (c.from_history === true) badges.push(["badge from-history", t("labels.from_history")]);
    var card = cardHead(el("section", "card " + (exact ? "exact" : "none") + (c.from_history === true ? " carried" : "")),
      c.code, badges);
    if (exact) {
      tableWords(card, c.row);
      return card;
    }
    card.appendChild(el("p", "warn", fmt("not_in_table", { code: c.code, severity_label: severity(c.severity) })));
    var e = c.explanation;
    if (e) {
      var g = el("div", "general");
      g.appendChild(el("div", "general-label",
        fmt("general_heading", { basis_label: (L.basis_labels || {})[e.basis] || e.basis })));
      g.appendChild(el("p", "general-meaning", e.meaning));
      g.appendChild(el("div", "label", t("general_action_label")));
      g.appendChild(el("p", "general-action", e.action));
      card.appendChild(g);
    } else {
      card.appendChild(el("p", "no-general", t("no_general")));
    }
    if (c.related && c.related.length) {
      var codes = document.createDocumentFragment();
      c.related.forEach(function (r, i) {
        if (i) codes.appendChild(document.createTextNode(", "));
        codes.appendChild(link(r.code, r.url));
        codes.appendChild(document.createTextNode(" (" + r.shares + ")"));
      });
      card.appendChild(fill(el("p", "related"), "related_line", { codes: codes }));
    }
    return card;
  }

  // A pasted message: what it is when it is not a failure (``message_kind``), and each recipient of a
  // bounce with Bouncebot's reading (``verdict``): badges (hard or soft bounce, or the recipient's action;
  // suppress or keep) and one sentence, under the label saying it is not the article's. Fields and labels
  // only (``verdict.*``, ``message_kinds.*``); null when there is nothing to show.
  function verdictBadges(r, v) {
    var action = /^[a-z]+$/.test(r.action || "") ? r.action : "failed";
    var first = !v || action !== "failed" ? [action, t("verdict.actions." + action)]
      : (v.hard === true ? ["hard", t("verdict.hard")] : ["soft", t("verdict.soft")]);
    var out = [first];
    if (v) out.push(v.suppress === true ? ["suppress", t("verdict.suppress")] : ["keep", t("verdict.keep")]);
    return out;
  }

  function recipientItem(r) {
    var v = r.verdict && typeof r.verdict === "object" ? r.verdict : null;
    var li = el("li", "recipient");
    if (/^[a-z]+$/.test(r.action || "")) li.setAttribute("data-action", r.action);
    var head = el("div", "recipient-head");
    head.appendChild(el("span", "rcpt", r.recipient || t("labels.recipient_not_named")));
    head.appendChild(el("span", "code", [r.reply_code, r.status].filter(Boolean).join(" ") || t("labels.no_code")));
    verdictBadges(r, v).forEach(function (b) { head.appendChild(el("span", "badge verdict verdict-" + b[0], b[1])); });
    li.appendChild(head);
    if (!v) return li;
    var reasons = (L.verdict && L.verdict.reasons) || {};
    li.appendChild(el("p", "verdict-sentence", typeof reasons[v.reason] === "string" ? reasons[v.reason]
      : fmt("verdict.unknown_reason", { reason: v.reason })));
    var next = el("p", "verdict-next");
    next.appendChild(el("span", "label", t("verdict.next_label") + ":"));
    next.appendChild(document.createTextNode(" " + t("verdict.retry." + v.retry)));
    li.appendChild(next);
    if (typeof v.evidence === "string" && v.evidence) {
      var basis = ((L.verdict && L.verdict.basis_labels) || {})[v.basis] || v.basis;
      var ev = el("p", "evidence", fmt("verdict.evidence_label", { basis_label: basis }) + ": ");
      ev.appendChild(el("code", null, v.evidence));
      li.appendChild(ev);
    }
    return li;
  }

  function recipientsBox(a) {
    var kind = typeof a.message_kind === "string" && a.message_kind !== "failure" ? t("message_kinds." + a.message_kind) : "";
    var list = (Array.isArray(a.recipients) ? a.recipients : []).filter(function (r) { return r && typeof r === "object"; });
    // As the answer's Markdown: a lone unnamed recipient is a code quoted in a question (its card says it all).
    var shown = !(list.length === 1 && !list[0].recipient) &&
      list.some(function (r) { return r.verdict || (r.action && r.action !== "failed"); });
    if (!kind && !shown) return null;
    var box = el("section", "recipients");
    if (kind) box.appendChild(el("p", "message-kind", kind));
    if (!shown) return box;
    box.appendChild(el("p", "recipients-label", t(a.message_kind === "delay" ? "labels.recipients_delayed" : "labels.recipients")));
    box.appendChild(el("p", "verdict-label", t("verdict.label")));
    var ul = el("ul", "recipient-list");
    list.forEach(function (r) { ul.appendChild(recipientItem(r)); });
    box.appendChild(ul);
    return box;
  }

  // A table row the search found for a question without that code: the row's own words, as a card.
  function rowPassage(s) {
    var card = cardHead(el("section", "card exact passage-row"), s.code, [["badge intable", t("widget.from_table")]]);
    if (s.row) tableWords(card, s.row);
    else card.appendChild(el("p", "row-text", s.text)); // the passage as it is, when no row came with it
    return card;
  }

  function cite(parent, sources) {
    var seen = {};
    var p = el("p", "cite", t("widget.source"));
    sources.forEach(function (s) {
      var key = s.url + "\n" + s.section;
      if (seen[key]) return;
      if (Object.keys(seen).length) p.appendChild(document.createTextNode(", "));
      seen[key] = true;
      p.appendChild(link(fmt("labels.source_link", { article: s.article, section: s.section }), s.url));
    });
    parent.appendChild(p);
  }

  function supportBox(parent, s) {
    var box = el("div", "support");
    box.appendChild(fill(el("p"), "support_intro", { section: link(s.section, s.url) }));
    box.appendChild(markdown(el("blockquote"), s.text));
    parent.appendChild(box);
  }

  // A Copy button for ``text``: the clipboard when the browser allows it, else the text selected to copy by hand.
  function copyButton(text, what) {
    var b = el("button", "copy", t("widget.copy"));
    b.type = "button";
    b.setAttribute("aria-label", fmt("widget.copy_what", { what: what }));
    var status = el("span", "copy-status");
    status.setAttribute("role", "status");
    function done(ok) {
      status.textContent = ok ? t("widget.copied") : t("widget.copy_failed");
      setTimeout(function () { status.textContent = ""; }, 4000);
    }
    function byHand() {
      var area = el("textarea", "copy-area");
      area.value = text;
      area.setAttribute("readonly", "");
      area.setAttribute("aria-hidden", "true");
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      area.remove();
      done(ok);
    }
    b.addEventListener("click", function () {
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () { done(true); }, byHand);
      } else byHand();
    });
    var bar = el("div", "copy-bar");
    bar.appendChild(b);
    bar.appendChild(status);
    return bar;
  }

  // A message for the customer: Bouncebot's words, not the article's, in a box that says so.
  function draftBox(d) {
    var box = el("section", "draft");
    var label = (typeof d.label === "string" && d.label) || t("draft.label");
    box.setAttribute("aria-label", label);
    box.appendChild(el("p", "draft-label", label));
    var channel = t(d.channel === "email" ? "draft.channel_email" : "draft.channel_message");
    if (channel) box.appendChild(el("p", "draft-channel", channel));
    box.appendChild(el("p", "draft-text", d.text));
    box.appendChild(copyButton(String(d.text || ""), label));
    return box;
  }

  // A support request prefilled from the conversation: each field the article asks for, those missing
  // marked for the visitor to add; Copy always, a mailto: link only when the server has the address.
  function handoffBox(h) {
    var box = el("section", "handoff");
    var label = t("handoff.request");
    box.setAttribute("aria-label", label);
    box.appendChild(el("p", "handoff-label", label));
    if (h.subject) box.appendChild(el("p", "handoff-subject", h.subject));
    var list = el("ul", "handoff-fields");
    (h.fields || []).forEach(function (f) {
      var missing = f.value === null || f.value === undefined || f.value === "";
      var li = el("li", missing ? "field missing" : "field");
      li.appendChild(el("span", "field-name", f.name));
      li.appendChild(document.createTextNode(": "));
      li.appendChild(missing ? el("span", "field-add", fmt("handoff.add", { name: f.name }))
        : el("span", "field-value", f.value));
      list.appendChild(li);
    });
    box.appendChild(list);
    var text = el("details", "handoff-text");
    text.appendChild(el("summary", null, t("widget.request_text")));
    text.appendChild(el("p", null, h.text));
    box.appendChild(text);
    box.appendChild(copyButton(String(h.text || ""), label));
    var href = h.mailto && /^mailto:/i.test(String(h.mailto)) ? safeHref(h.mailto) : null;
    if (href) {
      var a = link(fmt("handoff.mailto", { to: h.to || "", mailto: "" }), href);
      a.className = "mailto";
      box.appendChild(el("p", "handoff-mailto")).appendChild(a);
    } else if (t("handoff.no_address")) {
      box.appendChild(el("p", "handoff-no-address", t("handoff.no_address")));
    }
    return box;
  }

  // The answer's Markdown, read in two places only: small talk (it has no other field) and the
  // conversation sent back with the next question.
  function markdownOf(a) { return a && typeof a.answer === "string" ? a.answer : ""; }
  // A stream event's answer object (the contract), not its Markdown.
  function answerIn(e) { return e && e.answer && typeof e.answer === "object" ? e.answer : null; }

  // A cited passage: what answers the question (``focused``, when the answer has it) with the whole
  // passage one click away; else the passage itself.
  function passage(s) {
    var focused = typeof s.focused === "string" && s.focused.trim() && s.focused !== s.text ? s.focused : null;
    if (!focused) return markdown(el("blockquote", "passage"), s.text);
    var q = markdown(el("blockquote", "passage focused"), focused);
    var more = el("details", "whole");
    more.appendChild(el("summary", null, t("widget.whole_passage")));
    markdown(more, s.text);
    q.appendChild(more);
    return q;
  }

  // The language model's text kept by the guard (``llm.generated``, ``mode: llm``): untrusted, so text only,
  // never Markdown. Null when the answer has none (the default mode, a fallback, a draft's own text).
  function modelText(a) {
    var r = a.llm && typeof a.llm === "object" ? a.llm : null;
    var text = r && a.mode === "llm" && typeof r.generated === "string" ? r.generated : "";
    return text && !(a.draft && a.draft.text === text) ? text : null;
  }

  function lead(text) {
    var p = el("p", "lead", text);
    p.setAttribute("aria-label", t("widget.llm_lead"));
    return p;
  }

  // The model's lead above the rows, or the mark of an answer shown without it (as the Markdown says why);
  // a model's refusal of a question without codes is the default mode's refusal, unmarked.
  function llmMark(bubble, a) {
    var text = modelText(a), r = a.llm && typeof a.llm === "object" ? a.llm : {};
    if (text) bubble.appendChild(lead(text));
    else if (typeof r.fallback === "string" && r.fallback &&
      !(r.fallback === "refused" && a.answered === false && !(a.codes || []).length)) {
      bubble.appendChild(el("p", "llm-fallback",
        fmt("llm.fallback", { why: t("llm.fallback_reasons." + r.fallback) || r.fallback })));
    }
  }

  function renderAnswer(a) {
    if (a.intent === "small_talk") { // a plain bubble: no codes, no sources
      var talk = el("article", "msg bot small-talk"), said = markdownOf(a), own = modelText(a);
      talk.setAttribute("aria-label", t("widget.answer"));
      if (own && said.indexOf(own) === 0) { talk.appendChild(el("p", null, own)); said = said.slice(own.length); }
      markdown(talk, said);
      return talk;
    }
    var bubble = el("article", "msg bot");
    bubble.setAttribute("aria-label", t("widget.answer"));
    llmMark(bubble, a);
    if (a.draft && typeof a.draft === "object") bubble.appendChild(draftBox(a.draft));
    if (a.handoff && typeof a.handoff === "object") bubble.appendChild(handoffBox(a.handoff));
    var pasted = recipientsBox(a);
    if (pasted) bubble.appendChild(pasted);
    var codes = a.codes || [], sources = a.sources || [];
    var exactRows = {};
    codes.forEach(function (c) {
      if (c.match === "exact" && c.row) exactRows[c.row.code] = true;
      bubble.appendChild(codeCard(c));
    });
    var isRow = function (s) { return s.kind === "row" && typeof s.code === "string" && s.code !== ""; };
    // A row source for a code answered above is that card's source; every other source is a passage.
    var rowCites = sources.filter(function (s) { return isRow(s) && exactRows[s.code]; });
    var passages = sources.filter(function (s) { return !(isRow(s) && exactRows[s.code]); });
    if (rowCites.length) cite(bubble, rowCites);
    (a.notices || []).forEach(function (n) {
      var note = el("p", "notice", n.text);
      if (/^[a-z_]+$/.test(n.kind || "")) note.setAttribute("data-kind", n.kind);
      bubble.appendChild(note);
    });
    if (passages.length) {
      bubble.appendChild(codes.length ? el("p", "intro", t("passages_intro_after_codes"))
        : fill(el("p", "intro"), "passages_intro", { article: el("em", null, passages[0].article || article) }));
      passages.forEach(function (s) {
        bubble.appendChild(isRow(s) ? rowPassage(s) : passage(s));
        cite(bubble, [s]);
      });
    }
    if (a.answered === false) {
      if (!codes.length) { // the article has no answer: say so, and name the article it seems to belong to
        var no = el("div", "dont-know");
        no.appendChild(fill(el("p"), "dont_know", { article: el("em", null, (a.support && a.support.article) || article) }));
        if (a.other_article) no.appendChild(fill(el("p", "other-article"), "other_article", { title: el("em", null, a.other_article) }));
        bubble.appendChild(no);
      }
      if (a.support) supportBox(bubble, a.support);
    }
    return bubble;
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

  // A streamed answer (NDJSON, one event a line): ``on`` gets each event as it is read.
  function readEvents(response, on) {
    var reader = response.body.getReader(), decoder = new TextDecoder(), buffer = "";
    function line(text) { if (text.trim()) on(JSON.parse(text)); }
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) { line(buffer + decoder.decode()); return; }
        buffer += decoder.decode(chunk.value, { stream: true });
        var lines = buffer.split("\n");
        buffer = lines.pop();
        lines.forEach(line);
        return pump();
      });
    }
    return pump();
  }

  // The answer while it streams: the skeleton's rows and citations at once, the model's text (as text)
  // above them as it comes; ``done`` gives the final answer, or an error body.
  function streamed(response, pending) {
    var live = null, draft = null, text = "", final = null, problem = "";
    function show(node) {
      if (live) live.replaceWith(node); else { pending.remove(); messages.appendChild(node); }
      live = node;
    }
    return readEvents(response, function (e) {
      var carried = answerIn(e);
      if (e.type === "answer_skeleton" && carried) {
        var b = renderAnswer(carried);
        b.classList.add("streaming");
        draft = el("div", "drafting");
        draft.appendChild(lead(text));
        draft.appendChild(el("p", "writing", t("widget.llm_writing")));
        b.insertBefore(draft, b.firstChild);
        show(b);
      } else if (e.type === "token" && draft) {
        text += String(e.text || "");
        draft.firstChild.textContent = text;
      } else if (e.type === "final") {
        final = answerIn(e);
      } else if (e.type === "error") {
        problem = String(e.error || "");
      }
    }).then(function () { return { live: live, body: final || { error: problem || t("widget.offline") } }; },
      function () { return { live: live, body: { error: problem || t("widget.offline") } }; });
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
    fetch(config.stream === true ? "widget/api/ask/stream" : "widget/api/ask", {
      method: "POST", headers: { "Content-Type": "application/json" }, credentials: "omit", cache: "no-store",
      body: JSON.stringify({ question: q, history: history() })
    }).then(function (r) {
      if (r.ok && r.body && /ndjson/.test(r.headers.get("Content-Type") || "")) {
        return streamed(r, pending).then(function (s) { return { r: r, body: s.body, live: s.live }; });
      }
      return r.json().catch(function () { return {}; }).then(function (body) { return { r: r, body: body }; });
    }).then(function (res) {
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
})();
