/* The widget's panel, part 2 of 4 (see panel-core.js): one answer, built from the answer contract's
   fields with textContent: code cards (each of a code's rows with its citation), a pasted bounce's
   recipients and verdicts, sources, the article's support section, drafts and hand-offs, and the
   language model's lead. ``renderAnswer`` is what the conversation (panel.js) and the stream
   (panel-net.js) use. */
(function (P) {
  "use strict";

  var L = P.L, article = P.article, t = P.t, fmt = P.fmt, fill = P.fill, severity = P.severity;
  var el = P.el, safeHref = P.safeHref, link = P.link, markdown = P.markdown;

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

  var HOLDERS_SHOWN = 3;  // as app/answering/render.py's

  // A code's rows (``cited``) in groups of the same words (code, meaning, action), in the order each first comes.
  function sameWords(cited) {
    var groups = [], at = {};
    cited.forEach(function (r) {
      var key = JSON.stringify([r.code, r.meaning, r.action]);
      if (!Object.prototype.hasOwnProperty.call(at, key)) { at[key] = groups.length; groups.push([]); }
      groups[at[key]].push(r);
    });
    return groups;
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
      // Every row holding the code (several articles' tables): each with its own citation, never merged;
      // the same words in several tables quoted once, with the first HOLDERS_SHOWN of them and how many more.
      var cited = Array.isArray(c.rows) && c.rows.length ? c.rows : [c.row];
      sameWords(cited).forEach(function (g) {
        var r = g[0];
        if (g.length > 1) {
          var links = document.createDocumentFragment();
          g.slice(0, HOLDERS_SHOWN).forEach(function (h, i) {
            if (i) links.appendChild(document.createTextNode(", "));
            links.appendChild(link(fmt("labels.source_link", { article: h.article || "", section: h.section }), h.url));
          });
          if (g.length > HOLDERS_SHOWN) {
            links.appendChild(document.createTextNode(" " + fmt("labels.row_holders_more", { count: g.length - HOLDERS_SHOWN })));
          }
          fill(card.appendChild(el("p", "cite row-cite row-holders")), "labels.row_holders",
            { count: g.length, table_row: fmt("labels.table_row", { row_code: r.code }), citations: links });
        } else if (cited.length > 1) {  // each row names its code: an enhanced code alone may be several rows' codes
          var cite = card.appendChild(el("p", "cite row-cite"));
          cite.appendChild(link(fmt("labels.source_link", { article: r.article || "", section: r.section }), r.url));
          cite.appendChild(el("span", "row-code", " " + fmt("labels.table_row", { row_code: r.code })));
        }
        tableWords(card, r);
      });
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
    box.appendChild(P.articles > 1
      ? fill(el("p"), "support_intro_many", { section: link(s.section, s.url), article: el("em", null, s.article) })
      : fill(el("p"), "support_intro", { section: link(s.section, s.url) }));
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
        no.appendChild(P.articles > 1
          ? fill(el("p"), "dont_know_many", { count: String(P.articles).replace(/\B(?=(\d{3})+(?!\d))/g, ",") })
          : fill(el("p"), "dont_know", { article: el("em", null, (a.support && a.support.article) || article) }));
        if (a.other_article) no.appendChild(fill(el("p", "other-article"), "other_article", { title: el("em", null, a.other_article) }));
        bubble.appendChild(no);
      }
      if (a.support) supportBox(bubble, a.support);
    }
    return bubble;
  }

  P.markdownOf = markdownOf;
  P.lead = lead;
  P.renderAnswer = renderAnswer;
})(window.BouncebotPanel);
