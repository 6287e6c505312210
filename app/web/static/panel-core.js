/* The widget's chat panel (GET /widget, shown in an iframe by widget.js), in four plain scripts that
   panel.html loads in this order, sharing one object (window.BouncebotPanel), with no bundler:

     panel-core.js    the config the page carries, the labels, text-only DOM helpers, passage Markdown
     panel-answer.js  one answer, built from the answer contract's fields
     panel-net.js     asking the server: the request, and the streamed answer (NDJSON) as it comes
     panel.js         the conversation: what is shown and kept, the events, start-up

   Every answer is built as DOM from the answer contract's structured fields with textContent
   (never from its Markdown ``answer``, and no source is recognised by its text: ``kind`` and
   ``code`` say what it is): nothing typed by the visitor, quoted from the article or written by
   the bot is ever parsed as HTML. The little Markdown in the article's own passages (paragraphs,
   lists, bold, links) is turned into elements by hand; links are kept only for http(s) and mailto.
   Every label comes from the server with the config (``labels``, from wording.yaml).
   In the language-model mode (``config.stream``) an answer is read as a stream of events (NDJSON):
   the skeleton's rows and citations at once, the model's tokens as text above them, then the final
   answer in its place; the model's text is only ever set as textContent. */
(function (P) {
  "use strict";

  var config = {};
  try { config = JSON.parse(document.getElementById("bb-config").textContent) || {}; } catch (e) { config = {}; }
  var params = new URLSearchParams(location.search);
  // Labels under wording.yaml's own names: "meaning_label", "labels.in_table", "widget.send"...
  var L = config.labels || {};
  function t(key) {
    var v = key.split(".").reduce(function (o, k) { return o && typeof o === "object" ? o[k] : undefined; }, L);
    return typeof v === "string" ? v : "";
  }
  var article = config.article || "";
  var articles = config.articles || 1; // more than one: "I don't know" and the support line name the help centre's

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

  P.config = config;
  P.params = params;
  P.L = L;
  P.article = article;
  P.articles = articles;
  P.t = t;
  P.fmt = fmt;
  P.fill = fill;
  P.severity = severity;
  P.el = el;
  P.safeHref = safeHref;
  P.link = link;
  P.markdown = markdown;
})(window.BouncebotPanel = window.BouncebotPanel || {});
