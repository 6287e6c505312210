/* Bouncebot help-centre widget: the loader a host page includes.

     <script src="https://BOT/widget.js" data-title="Email delivery help" data-accent="#0f766e"
             data-position="right" data-greeting="Hi! Ask about an error code." async></script>

   It adds a launcher button (inside a Shadow DOM, so no styles leak either way) that opens a
   dialog holding an iframe of BOT/widget: the chat panel, served and answered by the bot. The
   iframe is created on first open and kept while the dialog is closed, so the conversation stays.
   The only global is window.Bouncebot ({open, close, toggle, isOpen}). No cookies, no CDN.
   Its texts (default title, button names, the can't-reach message) are put in by the server when
   it serves this file, from wording.yaml's widget.loader block. */
(function () {
  "use strict";
  if (window.Bouncebot && window.Bouncebot.version) return; // included twice: the first one wins

  var script = document.currentScript;
  if (!script) {
    var found = document.querySelectorAll('script[src*="widget.js"]');
    script = found[found.length - 1];
  }
  if (!script) return;

  var TEXT = /*{{LABELS}}*/{};
  function text(key, title) {
    return (typeof TEXT[key] === "string" ? TEXT[key] : "").replace(/\{title\}/g, function () { return title; });
  }
  var DEFAULT_ACCENT = "#2563eb";
  var panelUrl = new URL("widget", script.src); // next to widget.js, so a path prefix works too
  var botOrigin = panelUrl.origin;

  function attr(name, fallback, max) {
    var v = (script.getAttribute("data-" + name) || "").trim();
    return (v || fallback).slice(0, max);
  }
  var title = attr("title", text("title"), 80);
  var greeting = attr("greeting", "", 500);
  var position = attr("position", "right", 10).toLowerCase() === "left" ? "left" : "right";
  var accent = attr("accent", DEFAULT_ACCENT, 9);
  if (!/^#(?:[0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i.test(accent)) accent = DEFAULT_ACCENT;

  // White or near-black text on the accent, whichever contrasts more (WCAG relative luminance).
  function onAccent(hex) {
    var h = hex.slice(1);
    if (h.length < 6) h = h.split("").map(function (c) { return c + c; }).join("");
    var lum = [0, 2, 4].map(function (i) {
      var c = parseInt(h.substr(i, 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var L = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
    return 1.05 / (L + 0.05) >= (L + 0.05) / 0.05 ? "#ffffff" : "#111827";
  }
  var side = position === "left" ? "left" : "right";

  var CSS = [
    ":host{all:initial !important;--bb-accent:" + accent + ";--bb-on-accent:" + onAccent(accent) + "}",
    "*,*::before,*::after{box-sizing:border-box}",
    ".launcher{position:fixed;bottom:20px;" + side + ":20px;z-index:2147483000;width:58px;height:58px;",
    "margin:0;padding:0;border:0;border-radius:50%;background:var(--bb-accent);color:var(--bb-on-accent);",
    "box-shadow:0 6px 18px rgba(0,0,0,.25);cursor:pointer;display:flex;align-items:center;justify-content:center}",
    ".launcher:hover{filter:brightness(1.08)}",
    ".launcher:focus-visible{outline:3px solid #111827;outline-offset:3px}",
    ".launcher svg{width:28px;height:28px;fill:currentColor}",
    ".panel{position:fixed;bottom:92px;" + side + ":20px;z-index:2147483001;width:380px;max-width:calc(100vw - 40px);",
    "height:min(640px,calc(100vh - 112px));display:flex;flex-direction:column;background:#fff;color:#111827;",
    "border-radius:14px;overflow:hidden;box-shadow:0 12px 40px rgba(0,0,0,.28);",
    "font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;text-align:left}",
    ".panel[hidden]{display:none}",
    ".head{display:flex;align-items:center;gap:8px;padding:10px 8px 10px 16px;background:var(--bb-accent);color:var(--bb-on-accent)}",
    "h2{flex:1;margin:0;font-family:inherit;font-size:16px;font-weight:600;line-height:1.3;",
    "overflow:hidden;text-overflow:ellipsis;white-space:nowrap}",
    ".close{width:40px;height:40px;margin:0;padding:0;border:0;border-radius:8px;background:transparent;color:inherit;",
    "cursor:pointer;display:flex;align-items:center;justify-content:center}",
    ".close:hover{background:rgba(127,127,127,.25)}",
    ".close:focus-visible{outline:3px solid currentColor;outline-offset:-3px}",
    ".close svg{width:22px;height:22px;fill:currentColor}",
    ".body{flex:1;position:relative;min-height:0;display:flex;flex-direction:column}",
    "iframe{flex:1;display:block;width:100%;height:100%;border:0;background:#fff}",
    "iframe.broken{display:none}",
    ".status{margin:16px;padding:12px 14px;border-radius:10px;background:#fef2f2;color:#7f1d1d;border:1px solid #fecaca}",
    ".status[hidden]{display:none}",
    ".status p{margin:0 0 10px}",
    ".status button{font:inherit;padding:6px 12px;border-radius:8px;border:1px solid #7f1d1d;background:#fff;color:#7f1d1d;cursor:pointer}",
    ".trap{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}",
    // A narrow (phone) viewport: the panel takes the whole screen.
    "@media (max-width:599.98px){.panel{top:0;left:0;right:0;bottom:0;width:100%;max-width:none;height:100%;border-radius:0}}",
    "@media (prefers-reduced-motion:no-preference){.panel{animation:bb-in .16s ease-out}",
    "@keyframes bb-in{from{opacity:0;transform:translateY(8px)}to{opacity:1;transform:none}}}"
  ].join("\n");

  var ICON_CHAT = "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 " +
    "3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z";
  var ICON_CLOSE = "M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12 19 17.6 17.6 19 12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z";
  var SVG_NS = "http://www.w3.org/2000/svg";

  function icon(path) {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var p = document.createElementNS(SVG_NS, "path");
    p.setAttribute("d", path);
    svg.appendChild(p);
    return svg;
  }
  function el(tag, props) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (k) {
      if (k === "text") node.textContent = props[k];
      else node.setAttribute(k, props[k]);
    });
    return node;
  }

  var host, root, launcher, panel, closeBtn, body, status, frame;
  var isOpen = false, ready = false, timers = [];

  function build() {
    host = document.createElement("bouncebot-widget");
    root = host.attachShadow({ mode: "open" });
    if (root.adoptedStyleSheets !== undefined && typeof CSSStyleSheet === "function" && CSSStyleSheet.prototype.replaceSync) {
      var sheet = new CSSStyleSheet(); // not subject to the host page's CSP style-src, unlike a <style>
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } else {
      root.appendChild(el("style", { text: CSS }));
    }

    launcher = el("button", {
      type: "button", "class": "launcher", "aria-label": text("open_chat", title), "aria-haspopup": "dialog",
      "aria-expanded": "false", "aria-controls": "bb-dialog", title: title
    });
    launcher.appendChild(icon(ICON_CHAT));

    panel = el("div", { id: "bb-dialog", "class": "panel", role: "dialog", "aria-modal": "true", "aria-labelledby": "bb-title" });
    panel.hidden = true;
    var start = el("span", { "class": "trap", tabindex: "0", "aria-hidden": "true" });
    var end = el("span", { "class": "trap", tabindex: "0", "aria-hidden": "true" });
    var head = el("div", { "class": "head" });
    head.appendChild(el("h2", { id: "bb-title", text: title }));
    closeBtn = el("button", { type: "button", "class": "close", "aria-label": text("close") });
    closeBtn.appendChild(icon(ICON_CLOSE));
    head.appendChild(closeBtn);
    body = el("div", { "class": "body" });
    status = el("div", { "class": "status", role: "alert" });
    status.hidden = true;
    body.appendChild(status);
    panel.appendChild(start);
    panel.appendChild(head);
    panel.appendChild(body);
    panel.appendChild(end);
    root.appendChild(launcher);
    root.appendChild(panel);

    launcher.addEventListener("click", toggle);
    closeBtn.addEventListener("click", close);
    root.addEventListener("keydown", function (e) { // in the dialog or on the launcher
      if (e.key === "Escape" && isOpen) { e.preventDefault(); close(); }
    });
    // Keep Tab inside the dialog: past the end goes back to the close button, before it into the chat.
    end.addEventListener("focus", function () { closeBtn.focus(); });
    start.addEventListener("focus", function () { focusChat("last"); });
    window.addEventListener("message", onMessage);
    document.body.appendChild(host);
  }

  function frameSrc() {
    var q = new URLSearchParams();
    if (greeting) q.set("greeting", greeting);
    q.set("accent", accent);
    q.set("onaccent", onAccent(accent));
    if (location.origin && location.origin !== "null") q.set("host", location.origin);
    return panelUrl.href + "?" + q.toString();
  }

  function ensureFrame() {
    if (frame) return;
    ready = false;
    frame = el("iframe", {
      title: text("frame_title", title), src: frameSrc(),
      // No top navigation, no plugins: the panel can only run its own page and open links in new tabs.
      sandbox: "allow-scripts allow-same-origin allow-forms allow-popups allow-popups-to-escape-sandbox",
      allow: "clipboard-write", // the panel's Copy buttons (a draft, a support request)
      referrerpolicy: "strict-origin-when-cross-origin"
    });
    frame.addEventListener("load", function () {
      // The panel says "ready" before its load event: a frame that loads silently was refused or failed.
      if (!ready) timers.push(setTimeout(failed, 1500));
    });
    timers.push(setTimeout(failed, 15000));
    body.appendChild(frame);
  }

  function clearTimers() {
    timers.forEach(clearTimeout);
    timers = [];
  }

  function failed() {
    if (ready) return;
    clearTimers();
    frame.classList.add("broken");
    status.textContent = "";
    status.appendChild(el("p", { text: text("unreachable") }));
    status.appendChild(el("p", { text: text("unreachable_hint") }));
    var retry = el("button", { type: "button", text: text("try_again") });
    retry.addEventListener("click", function () {
      status.hidden = true;
      frame.remove();
      frame = null;
      ensureFrame();
      closeBtn.focus();
    });
    status.appendChild(retry);
    status.hidden = false;
  }

  function onMessage(e) {
    if (!frame || e.source !== frame.contentWindow || e.origin !== botOrigin) return;
    var d = e.data;
    if (!d || typeof d !== "object" || d.bouncebot !== 1) return;
    if (d.type === "ready") {
      ready = true;
      clearTimers();
      frame.classList.remove("broken");
      status.hidden = true;
      if (isOpen && (root.activeElement === closeBtn || !root.activeElement)) focusChat("first");
    } else if (d.type === "close") {
      close();
    }
  }

  function focusChat(where) {
    if (!frame || !ready) { closeBtn.focus(); return; }
    frame.focus();
    frame.contentWindow.postMessage({ bouncebot: 1, type: "focus", where: where }, botOrigin);
  }

  function open() {
    if (!host || isOpen) return;
    isOpen = true;
    ensureFrame();
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", text("close_chat", title));
    if (ready) focusChat("first");
    else closeBtn.focus(); // inside the dialog until the chat is ready
  }

  function close() {
    if (!host || !isOpen) return;
    isOpen = false;
    panel.hidden = true; // the iframe stays alive: the conversation is kept
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", text("open_chat", title));
    launcher.focus();
  }

  function toggle() {
    if (isOpen) close(); else open();
  }

  window.Bouncebot = Object.freeze({
    version: "1",
    open: open,
    close: close,
    toggle: toggle,
    isOpen: function () { return isOpen; }
  });

  if (document.body) build();
  else document.addEventListener("DOMContentLoaded", build);
})();
