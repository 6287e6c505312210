/* The widget's panel, part 3 of 4 (see panel-core.js): asking the server. ``request`` posts a question
   and gives back the response with its body read: the answer, or the error body; in the language-model
   mode (an NDJSON response) the answer is shown as it streams, and ``live`` is what is shown. */
(function (P) {
  "use strict";

  var t = P.t, el = P.el, renderAnswer = P.renderAnswer, lead = P.lead;
  var messages = document.getElementById("messages");

  // A stream event's answer object (the contract), not its Markdown.
  function answerIn(e) { return e && e.answer && typeof e.answer === "object" ? e.answer : null; }

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

  // POST ``payload`` (the question and the conversation, as JSON) to ``url``: {r, body} once the body is
  // read (an unreadable one is {}), with ``live`` when the answer was streamed in place of ``pending``.
  function request(url, payload, pending) {
    return fetch(url, {
      method: "POST", headers: { "Content-Type": "application/json" }, credentials: "omit", cache: "no-store",
      body: payload
    }).then(function (r) {
      if (r.ok && r.body && /ndjson/.test(r.headers.get("Content-Type") || "")) {
        return streamed(r, pending).then(function (s) { return { r: r, body: s.body, live: s.live }; });
      }
      return r.json().catch(function () { return {}; }).then(function (body) { return { r: r, body: body }; });
    });
  }

  P.request = request;
})(window.BouncebotPanel);
