/*! Bytchat chat widget: one dependency-free file, no build step (ES2020).
 *
 * Embed it on any page whose origin is in the bot's allowed origins:
 *
 *   <script src="https://chat.example.com/static/bytchat/widget.js" data-bot-key="pk_..." defer></script>
 *
 * Attributes of the script tag:
 *   data-bot-key   (required) the bot's publishable key (pk_...)
 *   data-title     the panel's title (default: the bot's name)
 *   data-open      "true" to start with the panel open (default: closed); after that, as the visitor left it in this tab
 *   data-lang      "en" or "es": the widget's own texts, also sent as Accept-Language (default: the page's language)
 *   data-position  "right" (default) or "left": the corner of the launcher button
 *   data-accent    a CSS color for buttons and the visitor's messages (default #2f5bea)
 *   data-server    the server's base URL, when widget.js is served from elsewhere (default: derived from src)
 *
 * How it works: on first open it creates a session (POST {BASE}/widget/sessions), keeps the session id and
 * the visitor token in localStorage (per bot key) and connects to the session's websocket_url. Answers
 * stream as `chunk` frames (rendered at most once an animation frame) and end with `done` (citations,
 * each a filename and page or a url and title; finish_reason) or `error`. After a dropped connection it
 * reloads the history (GET {BASE}/widget/sessions/<id>/messages), asks for a fresh URL
 * (POST {BASE}/widget/sessions/<id>/websocket) and reconnects, backing off from 0.5 s to 10 s. A message
 * typed while the socket is down, or sent on one that dropped before its answer began (and missing from
 * the reloaded history), stays on screen marked as not sent yet and is sent once connected.
 *
 * Answers outlive connections: each is a run on the server, whose frames carry `run_id` and `seq` (1, 2,
 * 3...). After a dropped connection or a page reload, the answer the history shows as `streaming` is
 * resumed where this tab left it: the greeting (`system`) names the session's running run and the widget
 * sends {"type":"resume","run_id","after"} with the last seq it rendered, kept in memory, and at page hide
 * in sessionStorage with the text it stands for. Frames at or below that seq are ignored, so each renders
 * once; a `snapshot` replaces the text; an `error` with code `interrupted` (the server process died) shows
 * the text kept, marked "Interrupted". Until the resumed text is longer, the history's checkpoint stays
 * on screen. A cancelled answer reads "Stopped" (it was stopped, from this tab or another); one whose
 * server process died reads "Interrupted".
 *
 * Tool approvals: an answer may pause on a tool call the bot asks the visitor about (`approval_request`,
 * live, replayed by a resume, or listed in the greeting's `approvals` after a reload). A card in the answer
 * shows the tool, its arguments (as text) and two buttons; a click sends {"type":"approval","approval_id",
 * "run_id","decision"} (with the socket down: POST {BASE}/runs/<run_id>/approvals/<id>, else at the next
 * connection), and `approval_decided` puts the outcome in place of the buttons. Other tool calls show as
 * a short note ("Used tool X"); their output is never shown.
 *
 * Feedback (docs/feedback.md): each completed answer has two toggle buttons, a good and a bad answer
 * (aria-pressed). A click sends PUT {BASE}/messages/<id>/feedback {"rating"} with the visitor token; a click
 * on the pressed one clears it (DELETE). The history's `feedback` shows them pressed again after a reload.
 *
 * Safety: model and document text is only ever put in the page as text nodes (textContent); the small
 * Markdown renderer builds elements itself, in about linear time even on hostile text; links are http(s)
 * only and without credentials, a link whose label names another host shows the real one ("bank.com
 * (evil.com)"), and images are never loaded. Everything lives in a shadow root, so the page's CSS and
 * the widget's do not meet.
 */
(() => {
  "use strict";

  const VERSION = "1";
  const STATIC_MARK = "/static/bytchat/";
  const FETCH_TIMEOUT_MS = 15000;
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  // Application close codes of the chat socket.
  const CLOSE_EXPIRED = 4000;
  const CLOSE_UNAUTHORIZED = 4401;
  const CLOSE_DELETED = 4404;
  const CLOSE_TOO_MANY = 4429;

  const STRINGS = {
    en: {
      chat: "Chat",
      open: "Open chat",
      close: "Close chat",
      newChat: "New conversation",
      send: "Send",
      stop: "Stop",
      stopLabel: "Stop the answer",
      stopping: "Stopping…",
      message: "Message",
      placeholder: "Type your message…",
      you: "You:",
      assistant: "Assistant:",
      sources: "Sources",
      page: "p.",
      stopped: "Stopped",
      truncated: "The answer was cut short (length limit).",
      interrupted: "Interrupted",
      queued: "Not sent yet: it will be sent when the connection is back.",
      notSent: "Not sent.",
      failed: "The answer failed.",
      thinking: "Writing an answer…",
      connecting: "Connecting…",
      reconnecting: "Connection lost. Reconnecting in {s} s…",
      notAllowed: "This website is not allowed to use this chat.",
      notFound: "This chat is not available.",
      tooMany: "Too many requests. Please try again later.",
      unavailable: "The chat is unavailable right now. Please try again later.",
      deleted: "This conversation was deleted; a new one was started.",
      unauthorized: "This chat session is no longer authorized.",
      approvalTitle: "The assistant asks to use a tool:",
      approvalLabel: "Tool approval: {tool}",
      allow: "Allow",
      deny: "Deny",
      allowLabel: "Allow the call of {tool}",
      denyLabel: "Deny the call of {tool}",
      deciding: "Sending your decision…",
      decisionQueued: "Not sent yet: it will be sent when the connection is back.",
      allowed: "Allowed",
      denied: "Denied",
      expired: "Expired",
      argumentsCut: "… (cut)",
      usedTool: "Used tool {tool}",
      toolFailed: "The tool {tool} failed",
      rateUp: "Good answer",
      rateDown: "Bad answer",
      rateFailed: "Your rating was not saved. Please try again.",
    },
    es: {
      chat: "Chat",
      open: "Abrir el chat",
      close: "Cerrar el chat",
      newChat: "Nueva conversación",
      send: "Enviar",
      stop: "Detener",
      stopLabel: "Detener la respuesta",
      stopping: "Deteniendo…",
      message: "Mensaje",
      placeholder: "Escribe tu mensaje…",
      you: "Tú:",
      assistant: "Asistente:",
      sources: "Fuentes",
      page: "pág.",
      stopped: "Detenida",
      truncated: "La respuesta se cortó (límite de longitud).",
      interrupted: "Interrumpida",
      queued: "Aún no enviado: se enviará cuando vuelva la conexión.",
      notSent: "No enviado.",
      failed: "La respuesta falló.",
      thinking: "Escribiendo una respuesta…",
      connecting: "Conectando…",
      reconnecting: "Se perdió la conexión. Reconectando en {s} s…",
      notAllowed: "Este sitio web no puede usar este chat.",
      notFound: "Este chat no está disponible.",
      tooMany: "Demasiadas solicitudes. Inténtalo más tarde.",
      unavailable: "El chat no está disponible ahora. Inténtalo más tarde.",
      deleted: "Esta conversación se eliminó; se empezó una nueva.",
      unauthorized: "Esta sesión de chat ya no está autorizada.",
      approvalTitle: "El asistente pide usar una herramienta:",
      approvalLabel: "Aprobación de herramienta: {tool}",
      allow: "Permitir",
      deny: "Rechazar",
      allowLabel: "Permitir la llamada a {tool}",
      denyLabel: "Rechazar la llamada a {tool}",
      deciding: "Enviando tu decisión…",
      decisionQueued: "Aún no enviada: se enviará cuando vuelva la conexión.",
      allowed: "Permitida",
      denied: "Rechazada",
      expired: "Caducada",
      argumentsCut: "… (recortado)",
      usedTool: "Herramienta usada: {tool}",
      toolFailed: "La herramienta {tool} falló",
      rateUp: "Buena respuesta",
      rateDown: "Mala respuesta",
      rateFailed: "No se guardó tu valoración. Inténtalo de nuevo.",
    },
  };

  const CSS = `
:host { all: initial; }
.bcw-root {
  --bcw-accent: #2f5bea; --bcw-fg: #1d2330; --bcw-muted: #5d6675; --bcw-bg: #ffffff; --bcw-soft: #f2f4f8;
  --bcw-border: #d9dde5; --bcw-error: #b42318;
  position: fixed; bottom: 20px; right: 20px; z-index: 2147483000;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--bcw-fg); text-align: left; direction: ltr;
  display: flex; flex-direction: column; align-items: flex-end; gap: 12px;
}
.bcw-root.bcw-left { right: auto; left: 20px; align-items: flex-start; }
.bcw-root *, .bcw-root *::before, .bcw-root *::after { box-sizing: border-box; }
.bcw-sr { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
.bcw-launcher { width: 56px; height: 56px; border-radius: 50%; border: 0; cursor: pointer;
  background: var(--bcw-accent); color: #fff; box-shadow: 0 6px 20px rgba(20, 30, 60, .25);
  display: inline-flex; align-items: center; justify-content: center; padding: 0; }
.bcw-launcher svg { width: 26px; height: 26px; fill: currentColor; }
.bcw-panel { width: 370px; max-width: calc(100vw - 40px); height: 540px; max-height: calc(100vh - 110px);
  background: var(--bcw-bg); border: 1px solid var(--bcw-border); border-radius: 14px;
  box-shadow: 0 12px 40px rgba(20, 30, 60, .22); display: flex; flex-direction: column; overflow: hidden; }
.bcw-panel[hidden] { display: none; }
.bcw-header { display: flex; align-items: center; gap: 8px; padding: 12px 14px;
  background: var(--bcw-accent); color: #fff; }
.bcw-title { flex: 1; margin: 0; font-size: 15px; font-weight: 600; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
.bcw-icon-btn { border: 0; background: transparent; color: inherit; cursor: pointer; border-radius: 6px;
  width: 30px; height: 30px; display: inline-flex; align-items: center; justify-content: center; padding: 0;
  font: inherit; font-size: 18px; line-height: 1; }
.bcw-icon-btn:hover { background: rgba(255, 255, 255, .18); }
.bcw-status { padding: 6px 14px; font-size: 12px; color: var(--bcw-muted); background: var(--bcw-soft);
  border-bottom: 1px solid var(--bcw-border); }
.bcw-status:empty { display: none; }
.bcw-log { flex: 1; overflow-y: auto; padding: 14px; display: flex; flex-direction: column; gap: 10px;
  background: var(--bcw-bg); overscroll-behavior: contain; }
.bcw-msg { max-width: 88%; padding: 8px 12px; border-radius: 12px; word-wrap: break-word;
  overflow-wrap: anywhere; }
.bcw-msg--user { align-self: flex-end; background: var(--bcw-accent); color: #fff; white-space: pre-wrap;
  border-bottom-right-radius: 4px; }
.bcw-msg--assistant, .bcw-msg--greeting { align-self: flex-start; background: var(--bcw-soft);
  border-bottom-left-radius: 4px; }
.bcw-msg--greeting { color: var(--bcw-muted); }
.bcw-msg--user .bcw-meta { color: inherit; }
.bcw-msg--user[data-status="queued"], .bcw-msg--user[data-status="failed"] { opacity: .75; }
.bcw-msg--notice { align-self: stretch; max-width: 100%; background: #fdecea; color: var(--bcw-error);
  border: 1px solid #f5c2bd; font-size: 13px; }
.bcw-body > :first-child { margin-top: 0; }
.bcw-body > :last-child { margin-bottom: 0; }
.bcw-body p, .bcw-body ul, .bcw-body ol, .bcw-body pre, .bcw-body blockquote { margin: 0 0 8px; }
.bcw-body h1, .bcw-body h2, .bcw-body h3, .bcw-body h4, .bcw-body h5, .bcw-body h6 {
  margin: 4px 0 6px; font-size: 15px; line-height: 1.3; font-weight: 700; }
.bcw-body h1 { font-size: 17px; } .bcw-body h2 { font-size: 16px; }
.bcw-body ul, .bcw-body ol { padding-left: 20px; }
.bcw-body code { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: rgba(27, 31, 35, .08); padding: 1px 4px; border-radius: 4px; }
.bcw-body pre { background: #1f2430; color: #e6e9ef; padding: 8px 10px; border-radius: 8px; overflow-x: auto; }
.bcw-body pre code { background: none; padding: 0; color: inherit; white-space: pre; }
.bcw-body blockquote { border-left: 3px solid var(--bcw-border); padding-left: 8px; color: var(--bcw-muted); }
.bcw-body a { color: var(--bcw-accent); text-decoration: underline; }
.bcw-body hr { border: 0; border-top: 1px solid var(--bcw-border); margin: 8px 0; }
.bcw-img { color: var(--bcw-muted); font-style: italic; }
.bcw-typing { display: inline-flex; gap: 4px; padding: 4px 0; }
.bcw-typing span { width: 6px; height: 6px; border-radius: 50%; background: var(--bcw-muted);
  animation: bcw-blink 1.2s infinite ease-in-out; }
.bcw-typing span:nth-child(2) { animation-delay: .2s; } .bcw-typing span:nth-child(3) { animation-delay: .4s; }
@keyframes bcw-blink { 0%, 80%, 100% { opacity: .25; } 40% { opacity: 1; } }
.bcw-meta { margin-top: 6px; font-size: 12px; color: var(--bcw-muted); }
.bcw-meta:empty { display: none; }
.bcw-msg[data-status="cancelled"] .bcw-meta::before { content: "■ "; }
.bcw-msg[data-status="error"] .bcw-meta, .bcw-msg[data-status="interrupted"] .bcw-meta { color: var(--bcw-error); }
.bcw-sources { margin-top: 8px; padding-top: 6px; border-top: 1px solid var(--bcw-border); font-size: 12px;
  color: var(--bcw-muted); }
.bcw-sources:empty { display: none; }
.bcw-sources-title { font-weight: 600; margin: 0 0 2px; }
.bcw-sources ol { margin: 0; padding-left: 18px; }
.bcw-sources a { color: var(--bcw-accent); }
.bcw-tools { margin-top: 8px; display: flex; flex-direction: column; gap: 6px; }
.bcw-tools:empty { display: none; }
.bcw-tool-note { font-size: 12px; color: var(--bcw-muted); }
.bcw-approval { padding: 8px 10px; border: 1px solid var(--bcw-border); border-radius: 10px; background: var(--bcw-bg);
  font-size: 13px; }
.bcw-approval:focus { outline: none; }
.bcw-approval:focus-visible { outline: 2px solid #ffbf47; outline-offset: 2px; }
.bcw-approval-title { margin: 0 0 4px; font-weight: 600; }
.bcw-approval-tool { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.bcw-approval-args { margin: 0 0 8px; max-height: 140px; overflow: auto; padding: 6px 8px; border-radius: 6px;
  background: var(--bcw-soft); font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  white-space: pre-wrap; overflow-wrap: anywhere; }
.bcw-approval-actions { display: flex; gap: 8px; }
.bcw-approval-actions[hidden] { display: none; }
.bcw-approval .bcw-btn { height: 32px; padding: 0 12px; }
.bcw-approval .bcw-deny { background: #fff; color: var(--bcw-fg); border-color: var(--bcw-border); }
.bcw-approval-outcome { margin: 6px 0 0; font-size: 12px; color: var(--bcw-muted); }
.bcw-approval-outcome:empty { display: none; }
.bcw-approval[data-state="decided"] .bcw-approval-outcome { margin-top: 0; font-weight: 600; color: #1a7f37; }
.bcw-approval[data-state="decided"][data-decision="reject"] .bcw-approval-outcome { color: var(--bcw-error); }
.bcw-rate { margin-top: 6px; display: flex; align-items: center; gap: 4px; }
.bcw-rate[hidden] { display: none; }
.bcw-rate-btn { border: 1px solid transparent; background: transparent; border-radius: 6px; cursor: pointer;
  width: 28px; height: 26px; padding: 0; font-size: 14px; line-height: 1; opacity: .55; }
.bcw-rate-btn:hover { opacity: 1; background: rgba(27, 31, 35, .06); }
.bcw-rate-btn[aria-pressed="true"] { opacity: 1; border-color: var(--bcw-border); background: var(--bcw-bg); }
.bcw-rate-btn:focus-visible { outline: 2px solid #ffbf47; outline-offset: 2px; opacity: 1; }
.bcw-rate-note { font-size: 12px; color: var(--bcw-error); }
.bcw-rate-note:empty { display: none; }
.bcw-form { display: flex; gap: 8px; align-items: flex-end; padding: 10px; border-top: 1px solid var(--bcw-border);
  background: var(--bcw-bg); }
.bcw-input { flex: 1; resize: none; min-height: 38px; max-height: 120px; padding: 8px 10px; margin: 0;
  border: 1px solid var(--bcw-border); border-radius: 10px; font: inherit; color: var(--bcw-fg);
  background: #fff; outline: none; }
.bcw-input:focus { border-color: var(--bcw-accent); box-shadow: 0 0 0 2px rgba(47, 91, 234, .18); }
.bcw-btn { height: 38px; padding: 0 14px; border-radius: 10px; border: 1px solid var(--bcw-accent);
  background: var(--bcw-accent); color: #fff; font: inherit; font-weight: 600; cursor: pointer; margin: 0; }
.bcw-btn[disabled] { opacity: .5; cursor: default; }
.bcw-btn[hidden] { display: none; }
.bcw-stop { background: #fff; color: var(--bcw-fg); border-color: var(--bcw-border); }
.bcw-launcher:focus-visible, .bcw-btn:focus-visible, .bcw-icon-btn:focus-visible, .bcw-body a:focus-visible {
  outline: 2px solid #ffbf47; outline-offset: 2px; }
@media (max-width: 480px) {
  .bcw-root { bottom: 12px; right: 12px; }
  .bcw-root.bcw-left { left: 12px; }
  .bcw-panel { width: calc(100vw - 24px); max-width: none; height: calc(100vh - 96px); max-height: none; }
}
@media (prefers-reduced-motion: reduce) { .bcw-typing span { animation: none; opacity: .6; } }
`;

  // -- Markdown, rendered as DOM nodes only ---------------------------------------------------
  // Blocks: paragraphs (single newlines are line breaks), # headings, fenced code, - / 1. lists,
  // > quotes, --- rules. Inline: **bold**, *italic*, ~~strike~~, `code`, [links](http(s) only),
  // <https://autolinks> and bare http(s) URLs; ![images](...) become their alt text (or URL).
  // The time it takes grows about linearly with the text (hostile text included): no regex can backtrack
  // over a line, brackets are matched in one pass, a search for a closing delimiter that failed is not
  // made again, and lines longer than MAX_INLINE are shown as text.

  const MAX_DEPTH = 6;
  const MAX_LINK_SCAN = 2000; // the longest link target looked for after "](", "<" or "http"
  const MAX_INLINE = 20000; // a longer line is shown as plain text
  const LINK_TARGET = /^\(\s*<?([^\s()<>]*(?:\([^\s()<>]*\)[^\s()<>]*)*)>?(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/;

  function h(tag, className) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    return node;
  }

  // An http(s) URL without credentials (user:pass@host hides the real host), normalized; else null.
  function safeHref(url) {
    try {
      const parsed = new URL(url);
      const web = parsed.protocol === "http:" || parsed.protocol === "https:";
      if (web && !parsed.username && !parsed.password) return parsed.href;
    } catch (_error) {
      // relative, javascript:, data: and malformed URLs are not links
    }
    return null;
  }

  // The host a link label names, when it reads as an address ("https://bank.com/x", "bank.com"); else null.
  function labelHost(label) {
    const text = label.trim();
    if (!text || /\s/.test(text) || text.length > MAX_LINK_SCAN) return null;
    try {
      const host = new URL(/^[a-z][a-z\d+.-]*:\/\//i.test(text) ? text : `http://${text}`).hostname;
      return /\.[a-z]{2,}$|^[\d.]+$|^\[/i.test(host) ? host : null;
    } catch (_error) {
      return null;
    }
  }

  const sameHost = (a, b) => a.replace(/^www\./, "") === b.replace(/^www\./, "");

  function link(href, label, parent, depth) {
    const anchor = h("a");
    anchor.setAttribute("href", href);
    anchor.setAttribute("target", "_blank");
    anchor.setAttribute("rel", "noopener noreferrer nofollow");
    inline(label, anchor, depth + 1, true);
    // [https://bank.com](https://evil.com) reads "https://bank.com (evil.com)".
    const real = new URL(href).hostname;
    const named = labelHost(anchor.textContent);
    if (named !== null && !sameHost(named, real)) {
      const host = h("span", "bcw-link-host");
      host.textContent = ` (${real})`;
      anchor.append(host);
    }
    parent.append(anchor);
  }

  // For each "[" of the text, the index of its matching "]" (backslash escapes skipped), in one pass.
  function bracketPairs(text) {
    const pairs = new Map();
    const open = [];
    for (let j = 0; j < text.length; j++) {
      const c = text[j];
      if (c === "\\") j++;
      else if (c === "[") open.push(j);
      else if (c === "]" && open.length) pairs.set(open.pop(), j);
    }
    return pairs;
  }

  // [text](url "title") starting at text[start] === "["; null when it is not a link.
  function parseLink(text, start, pairs) {
    const end = pairs.get(start);
    if (end === undefined || text[end + 1] !== "(") return null;
    const match = LINK_TARGET.exec(text.slice(end + 1, end + 1 + MAX_LINK_SCAN));
    if (!match) return null;
    return { label: text.slice(start + 1, end), url: match[1], end: end + 1 + match[0].length };
  }

  // The index of the backtick string closing a code span opened before `from`, or -1.
  function codeClose(text, fence, from) {
    let close = text.indexOf(fence, from);
    while (close >= 0 && text[close + fence.length] === "`") close = text.indexOf(fence, close + fence.length + 1);
    return close;
  }

  // The index of the delimiter closing a `size`-long run of `c` opened before `from`, or -1: the end of a
  // later run (of 2 or more for **, of exactly 1 for *) that follows no space. Each run is looked at once.
  function emphasisClose(text, c, size, from) {
    for (let j = text.indexOf(c, from); j >= 0; j = text.indexOf(c, j)) {
      const start = j;
      while (text[j] === c) j++;
      const run = j - start;
      if (text[start - 1] === c || /\s/.test(text[start - 1]) || (size === 2 ? run < 2 : run !== 1)) continue;
      if (c === "_" && /[\p{L}\p{N}]/u.test(text[j] || "")) continue;
      return j - size;
    }
    return -1;
  }

  function inline(text, parent, depth = 0, inLink = false) {
    if (depth > MAX_DEPTH || text.length > MAX_INLINE) {
      parent.append(document.createTextNode(text));
      return;
    }
    let buffer = "";
    const flush = () => {
      if (buffer) parent.append(document.createTextNode(buffer));
      buffer = "";
    };
    const unclosed = new Set(); // delimiters with no closing one after the current position
    let pairs = null; // of brackets, found on the first "["
    let i = 0;
    while (i < text.length) {
      const c = text[i];
      if (c === "\\" && i + 1 < text.length && /[\\`*_{}[\]()#+\-.!~<>|]/.test(text[i + 1])) {
        buffer += text[i + 1];
        i += 2;
        continue;
      }
      if (c === "`") {
        let n = 1;
        while (text[i + n] === "`") n++;
        const fence = "`".repeat(n);
        const close = unclosed.has(fence) ? -1 : codeClose(text, fence, i + n);
        if (close >= 0) {
          flush();
          const code = h("code");
          let inner = text.slice(i + n, close);
          if (inner.length > 2 && inner[0] === " " && inner[inner.length - 1] === " " && inner.trim()) {
            inner = inner.slice(1, -1);
          }
          code.textContent = inner;
          parent.append(code);
          i = close + n;
        } else {
          unclosed.add(fence);
          buffer += fence;
          i += n;
        }
        continue;
      }
      if (c === "[" || (c === "!" && text[i + 1] === "[")) {
        if (!pairs) pairs = bracketPairs(text);
        const image = c === "!";
        const found = parseLink(text, image ? i + 1 : i, pairs);
        if (found) {
          flush();
          if (image) {
            const alt = h("span", "bcw-img");
            alt.textContent = `[${found.label.trim() || found.url}]`;
            parent.append(alt);
          } else {
            const href = safeHref(found.url);
            if (href && !inLink) link(href, found.label, parent, depth);
            else inline(found.label, parent, depth + 1, inLink);
          }
          i = found.end;
          continue;
        }
      }
      if (c === "<") {
        const auto = /^<(https?:\/\/[^\s<>]+)>/i.exec(text.slice(i, i + MAX_LINK_SCAN));
        const href = auto && safeHref(auto[1]);
        if (href && !inLink) {
          flush();
          link(href, auto[1], parent, depth);
          i += auto[0].length;
          continue;
        }
      }
      if ((c === "h" || c === "H") && !inLink && !/[\w/]/.test(text[i - 1] || "")) {
        const bare = /^https?:\/\/[^\s<>"]*[^\s<>".,;:!?')\]*_~]/i.exec(text.slice(i, i + MAX_LINK_SCAN));
        const href = bare && safeHref(bare[0]);
        if (href) {
          flush();
          link(href, bare[0], parent, depth);
          i += bare[0].length;
          continue;
        }
      }
      if (c === "*" || c === "_" || c === "~") {
        let run = 1;
        while (text[i + run] === c) run++;
        const intraword = c === "_" && /[\p{L}\p{N}]/u.test(text[i - 1] || "");
        const sizes = c === "~" ? (run >= 2 ? [2] : []) : run >= 2 ? [2, 1] : [1];
        let done = false;
        for (const n of intraword ? [] : sizes) {
          const delimiter = c.repeat(n);
          const after = text[i + n];
          if (!after || /\s/.test(after) || unclosed.has(delimiter)) continue;
          const close = emphasisClose(text, c, n, i + n + 1);
          if (close < 0) {
            unclosed.add(delimiter);
            continue;
          }
          flush();
          const node = h(c === "~" ? "del" : n === 2 ? "strong" : "em");
          inline(text.slice(i + n, close), node, depth + 1, inLink);
          parent.append(node);
          i = close + n;
          done = true;
          break;
        }
        if (done) continue;
        buffer += c.repeat(run);
        i += run;
        continue;
      }
      buffer += c;
      i++;
    }
    flush();
  }

  // The `s` flags matter: without them, a line ending in U+2028 makes `(.*)$` backtrack quadratically.
  function listItem(line) {
    let m = /^\s{0,6}[-*+]\s+(.*)$/s.exec(line);
    if (m) return { ordered: false, text: m[1] };
    m = /^\s{0,6}(\d{1,9})[.)]\s+(.*)$/s.exec(line);
    if (m) return { ordered: true, start: Number(m[1]), text: m[2] };
    return null;
  }

  // "## Title ##" -> "Title": closing #s go when a space precedes them (a loop, as a regex would backtrack).
  function headingText(text) {
    let end = text.trimEnd().length;
    let k = end;
    while (k > 0 && text[k - 1] === "#") k--;
    if (k < end && (k === 0 || /\s/.test(text[k - 1]))) end = k;
    return text.slice(0, end).trimEnd();
  }

  function lines(parent, list, depth) {
    list.forEach((line, index) => {
      if (index) parent.append(h("br"));
      inline(line, parent, depth);
    });
  }

  // The lines of a text, and where each starts in it.
  function splitLines(text) {
    const lines = [];
    const starts = [];
    const breaks = /\r\n?|\n/g;
    let start = 0;
    for (let m = breaks.exec(text); m; m = breaks.exec(text)) {
      lines.push(text.slice(start, m.index));
      starts.push(start);
      start = m.index + m[0].length;
    }
    lines.push(text.slice(start));
    starts.push(start);
    return { lines, starts };
  }

  // Renders `text` into `parent`. Returns where the text could be cut without changing what precedes:
  // after its last blank line that ends a block, as an offset in the text and a count of nodes rendered.
  function blocks(text, parent, depth = 0) {
    const { lines: source, starts } = splitLines(text);
    const settled = { chars: 0, nodes: 0 };
    let paragraph = null;
    const flush = () => {
      if (paragraph) {
        const p = h("p");
        lines(p, paragraph, depth);
        parent.append(p);
      }
      paragraph = null;
    };
    let i = 0;
    while (i < source.length) {
      const line = source[i];
      let m;
      if ((m = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)/.exec(line))) {
        flush();
        const closing = new RegExp(`^ {0,3}${m[1][0] === "`" ? "`" : "~"}{${m[1].length},}\\s*$`);
        const code = [];
        for (i++; i < source.length && !closing.test(source[i]); i++) code.push(source[i]);
        i++; // the closing fence (or the end of an answer still streaming)
        const pre = h("pre");
        const inner = h("code");
        if (m[2]) inner.dataset.lang = m[2].slice(0, 40);
        inner.textContent = code.join("\n");
        pre.append(inner);
        parent.append(pre);
        continue;
      }
      if (!line.trim()) {
        flush();
        i++;
        if (i < source.length) Object.assign(settled, { chars: starts[i], nodes: parent.childNodes.length });
        continue;
      }
      if ((m = /^ {0,3}(#{1,6})\s+(.*)$/s.exec(line))) {
        flush();
        const heading = h(`h${m[1].length}`);
        inline(headingText(m[2]), heading, depth);
        parent.append(heading);
        i++;
        continue;
      }
      if (/^ {0,3}([-*_])(?:\s*\1){2,}\s*$/.test(line)) {
        flush();
        parent.append(h("hr"));
        i++;
        continue;
      }
      if (/^ {0,3}>/.test(line)) {
        flush();
        const quoted = [];
        for (; i < source.length && /^ {0,3}>/.test(source[i]); i++) quoted.push(source[i].replace(/^ {0,3}> ?/, ""));
        const quote = h("blockquote");
        if (depth < MAX_DEPTH) blocks(quoted.join("\n"), quote, depth + 1);
        else quote.textContent = quoted.join("\n");
        parent.append(quote);
        continue;
      }
      const first = listItem(line);
      if (first) {
        flush();
        const list = h(first.ordered ? "ol" : "ul");
        if (first.ordered && first.start !== 1) list.setAttribute("start", String(first.start));
        let item;
        while (i < source.length && (item = listItem(source[i])) && item.ordered === first.ordered) {
          const texts = [item.text];
          // Indented lines that are not items themselves continue the item.
          for (i++; i < source.length && /^\s+\S/.test(source[i]) && !listItem(source[i]); i++) {
            texts.push(source[i].trim());
          }
          const li = h("li");
          lines(li, texts, depth);
          list.append(li);
        }
        parent.append(list);
        continue;
      }
      (paragraph ||= []).push(line);
      i++;
    }
    flush();
    return settled;
  }

  // Renders an answer into `body`, again each time its text grows: the blocks that end before its last
  // block-ending blank line are kept (`done` notes them), and only the text after them is parsed again.
  function renderMarkdown(body, text, done) {
    if (done.body !== body || !text.startsWith(done.source)) Object.assign(done, { body, source: "", nodes: 0 });
    while (body.childNodes.length > done.nodes) body.lastChild.remove();
    const rest = document.createDocumentFragment();
    const settled = blocks(text.slice(done.source.length), rest);
    body.append(rest);
    done.source = text.slice(0, done.source.length + settled.chars);
    done.nodes += settled.nodes;
  }

  // -- the server -----------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, detail) {
      super(detail || code || `HTTP ${status}`);
      this.status = status;
      this.code = code || "";
      this.detail = detail || "";
    }
  }

  function storage(kind) {
    try {
      const store = window[kind];
      const probe = "__bytchat_probe__";
      store.setItem(probe, "1");
      store.removeItem(probe);
      return store;
    } catch (_error) {
      const memory = new Map(); // storage disabled (privacy settings, sandboxed frames): this page only
      return {
        getItem: (key) => (memory.has(key) ? memory.get(key) : null),
        setItem: (key, value) => memory.set(key, String(value)),
        removeItem: (key) => memory.delete(key),
      };
    }
  }

  // An answer's text on screen. A resumed answer rebuilds its text from its run's frames while the history's
  // checkpoint of it (`floor`) stays shown until the rebuilt text is longer: both begin the same answer.
  function shownText(item) {
    return item.floor && item.floor.length > item.content.length ? item.floor : item.content;
  }

  // -- tool calls -----------------------------------------------------------------------------

  const MAX_ARGUMENTS_SHOWN = 2000; // characters of a call's arguments on its card; the rest is cut
  const MAX_TOOL_NAME = 100;
  const APPROVAL_STATES = new Set(["pending", "sending", "queued", "waiting", "decided"]);

  const toolName = (value) => (typeof value === "string" && value ? value.slice(0, MAX_TOOL_NAME) : "?");

  // A call's arguments as text for its card: indented JSON, cut after MAX_ARGUMENTS_SHOWN characters.
  function argumentsText(value, cut) {
    let text;
    try {
      text = JSON.stringify(value === undefined ? {} : value, null, 2);
    } catch (_error) {
      text = "";
    }
    if (typeof text !== "string") text = String(value);
    return text.length > MAX_ARGUMENTS_SHOWN ? text.slice(0, MAX_ARGUMENTS_SHOWN) + cut : text;
  }

  // An answer's tool entries without their DOM, to keep in sessionStorage (and read back, checked).
  function toolsKept(tools) {
    const kept = [];
    for (const entry of Array.isArray(tools) ? tools : []) {
      if (!entry || typeof entry !== "object" || typeof entry.id !== "string") continue;
      if (entry.kind === "note" && typeof entry.text === "string") {
        kept.push({ kind: "note", id: entry.id, text: entry.text });
      } else if (entry.kind === "approval") {
        kept.push({
          kind: "approval",
          id: entry.id,
          runId: typeof entry.runId === "string" ? entry.runId : null,
          tool: toolName(entry.tool),
          arguments: entry.arguments,
          state: APPROVAL_STATES.has(entry.state) ? entry.state : "waiting",
          choice: entry.choice === "approve" || entry.choice === "reject" ? entry.choice : "",
          decision: entry.decision === "approve" || entry.decision === "reject" ? entry.decision : "",
          status: typeof entry.status === "string" ? entry.status : "",
          note: typeof entry.note === "string" ? entry.note : "",
        });
      }
    }
    return kept;
  }

  // -- the widget -----------------------------------------------------------------------------

  class BytchatWidget {
    constructor(script) {
      const data = script.dataset;
      this.botKey = (data.botKey || "").trim();
      this.base = BytchatWidget.baseOf(script);
      const lang = (data.lang || document.documentElement.lang || navigator.language || "en").toLowerCase();
      this.lang = lang.startsWith("es") ? "es" : "en";
      this.requestLang = data.lang ? this.lang : "";
      this.t = STRINGS[this.lang];
      this.title = (data.title || "").trim();
      this.position = data.position === "left" ? "left" : "right";
      this.accent = data.accent && window.CSS && CSS.supports("color", data.accent) ? data.accent : "";
      this.local = storage("localStorage");
      this.tab = storage("sessionStorage");
      this.storeKey = `bytchat.widget.v${VERSION}.${this.botKey}`;
      this.state = this.load();
      this.socket = null;
      this.greeting = "";
      this.items = []; // {id, role, content, status, citations, finishReason, note, el, rendered}
      this.answer = null; // the assistant item being streamed
      this.awaiting = false; // this socket asked and its answer has not ended
      this.pending = null; // the visitor's message until an answer to it starts: status "queued" or "sent"
      this.renderQueued = false;
      this.renderAfter = 0; // performance.now() before which the streamed answer is not rendered again
      this.connected = false;
      this.started = false;
      this.stopped = false; // a fatal error: no more reconnects
      this.attempt = 0;
      this.timer = null;
      this.generation = 0; // bumps when a connection is abandoned; stale callbacks check it
      this.endedRuns = new Set(); // runs whose end was shown: a late frame of one is ignored
      this.build();
      const left = this.tab.getItem(`${this.storeKey}.open`); // as the visitor left it in this tab
      if (left === null ? data.open === "true" : left === "1") this.setOpen(true, false);
      window.addEventListener("online", () => {
        if (this.started && !this.connected && !this.stopped) this.reconnectNow();
      });
      window.addEventListener("pagehide", () => this.saveRun()); // a reload resumes the answer from there
    }

    static baseOf(script) {
      if (script.dataset.server) return script.dataset.server.replace(/\/+$/, "");
      const url = new URL(script.getAttribute("src") || "", document.baseURI);
      const index = url.pathname.lastIndexOf(STATIC_MARK);
      return url.origin + (index >= 0 ? url.pathname.slice(0, index) : "");
    }

    load() {
      try {
        const saved = JSON.parse(this.local.getItem(this.storeKey) || "{}");
        return saved && typeof saved === "object" ? saved : {};
      } catch (_error) {
        return {};
      }
    }

    save() {
      this.local.setItem(this.storeKey, JSON.stringify(this.state));
    }

    // -- DOM ----------------------------------------------------------------------------------
    build() {
      this.host = document.createElement("bytchat-widget");
      this.host.setAttribute("data-bot-key", this.botKey);
      const shadow = this.host.attachShadow({ mode: "open" });
      const style = h("style");
      style.textContent = CSS;
      shadow.append(style);

      const root = h("div", `bcw-root${this.position === "left" ? " bcw-left" : ""}`);
      if (this.accent) root.style.setProperty("--bcw-accent", this.accent);
      root.lang = this.lang;

      const panel = h("section", "bcw-panel");
      panel.id = "bcw-panel";
      panel.hidden = true;
      panel.setAttribute("role", "dialog");
      panel.setAttribute("aria-labelledby", "bcw-title");

      const header = h("div", "bcw-header");
      const title = h("h2", "bcw-title");
      title.id = "bcw-title";
      title.textContent = this.title || this.state.botName || this.t.chat;
      const fresh = this.iconButton("bcw-new", this.t.newChat, "+");
      fresh.addEventListener("click", () => this.newConversation());
      const close = this.iconButton("bcw-close", this.t.close, "×");
      close.addEventListener("click", () => this.setOpen(false));
      header.append(title, fresh, close);

      const status = h("div", "bcw-status");
      status.setAttribute("role", "status");

      const log = h("div", "bcw-log");
      log.setAttribute("role", "log");
      log.setAttribute("aria-live", "polite");
      log.setAttribute("aria-relevant", "additions text");
      log.setAttribute("aria-busy", "false");
      log.tabIndex = 0;

      const form = h("form", "bcw-form");
      const label = h("label", "bcw-sr");
      label.htmlFor = "bcw-input";
      label.textContent = this.t.message;
      const input = h("textarea", "bcw-input");
      input.id = "bcw-input";
      input.rows = 1;
      input.placeholder = this.t.placeholder;
      input.maxLength = 8000;
      const send = h("button", "bcw-btn bcw-send");
      send.type = "submit";
      send.textContent = this.t.send;
      send.disabled = true;
      const stop = h("button", "bcw-btn bcw-stop");
      stop.type = "button";
      stop.textContent = this.t.stop;
      stop.setAttribute("aria-label", this.t.stopLabel);
      stop.hidden = true;
      form.append(label, input, stop, send);
      panel.append(header, status, log, form);

      const launcher = h("button", "bcw-launcher");
      launcher.type = "button";
      launcher.setAttribute("aria-label", this.t.open);
      launcher.setAttribute("aria-controls", "bcw-panel");
      launcher.setAttribute("aria-expanded", "false");
      launcher.append(BytchatWidget.chatIcon());
      launcher.addEventListener("click", () => this.setOpen(panel.hidden));

      root.append(panel, launcher);
      shadow.append(root);
      Object.assign(this, { shadow, root, panel, titleEl: title, statusEl: status, log, form, input, send, stop, launcher });

      form.addEventListener("submit", (event) => {
        event.preventDefault();
        this.submit();
      });
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          this.submit();
        }
      });
      input.addEventListener("input", () => {
        input.style.height = "auto";
        input.style.height = `${Math.min(input.scrollHeight, 120)}px`;
        this.updateControls();
      });
      stop.addEventListener("click", () => this.requestStop());
      panel.addEventListener("keydown", (event) => {
        if (event.key === "Escape") this.setOpen(false);
      });
      document.body.append(this.host);
      this.renderAll();
    }

    iconButton(className, label, glyph) {
      const button = h("button", `bcw-icon-btn ${className}`);
      button.type = "button";
      button.setAttribute("aria-label", label);
      button.title = label;
      const mark = h("span");
      mark.setAttribute("aria-hidden", "true");
      mark.textContent = glyph;
      button.append(mark);
      return button;
    }

    static chatIcon() {
      const ns = "http://www.w3.org/2000/svg";
      const svg = document.createElementNS(ns, "svg");
      svg.setAttribute("viewBox", "0 0 24 24");
      svg.setAttribute("aria-hidden", "true");
      const path = document.createElementNS(ns, "path");
      path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6v2h2V9H7zm4 0v2h2V9h-2zm4 0v2h2V9h-2z");
      svg.append(path);
      return svg;
    }

    setOpen(open, focus = true) {
      this.panel.hidden = !open;
      this.launcher.setAttribute("aria-expanded", String(open));
      this.launcher.setAttribute("aria-label", open ? this.t.close : this.t.open);
      this.tab.setItem(`${this.storeKey}.open`, open ? "1" : "0");
      if (open) {
        if (!this.started) this.start();
        if (focus) this.input.focus();
        this.scrollDown(true);
      } else if (focus) {
        this.launcher.focus();
      }
    }

    setStatus(text) {
      this.statusEl.textContent = text || "";
    }

    updateControls() {
      const streaming = this.awaiting;
      const stopping = Boolean(streaming && this.answer && this.answer.stopRequested);
      this.send.disabled = this.stopped || streaming || Boolean(this.pending) || !this.input.value.trim();
      this.input.disabled = this.stopped;
      this.stop.hidden = !streaming;
      this.stop.disabled = stopping || !this.connected; // a stop is sent on a connection (again after a drop)
      this.stop.textContent = stopping ? this.t.stopping : this.t.stop;
      this.log.setAttribute("aria-busy", String(streaming));
    }

    nearBottom() {
      return this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 60;
    }

    scrollDown(force = false) {
      if (force || this.nearBottom()) this.log.scrollTop = this.log.scrollHeight;
    }

    renderAll() {
      const nodes = [];
      if (this.greeting) {
        const greeting = h("div", "bcw-msg bcw-msg--greeting");
        greeting.textContent = this.greeting;
        nodes.push(greeting);
      }
      for (const item of this.items) {
        item.el = this.renderItem(item);
        nodes.push(item.el);
      }
      this.log.replaceChildren(...nodes);
      this.scrollDown(true);
    }

    addItem(item) {
      this.items.push(item);
      const follow = this.nearBottom();
      item.el = this.renderItem(item);
      this.log.append(item.el);
      this.scrollDown(follow);
      return item;
    }

    renderItem(item) {
      const node = h("div", `bcw-msg bcw-msg--${item.role}`);
      node.dataset.role = item.role;
      const who = h("span", "bcw-sr");
      who.textContent = item.role === "user" ? this.t.you : item.role === "assistant" ? this.t.assistant : "";
      const body = h("div", "bcw-body");
      const tools = h("div", "bcw-tools"); // approval cards and tool notes (docs/widget.md)
      const meta = h("div", "bcw-meta");
      const sources = h("div", "bcw-sources");
      const rate = h("div", "bcw-rate"); // the visitor's feedback on an answer (docs/feedback.md)
      node.append(who, body, tools, meta, sources, rate);
      item.el = node;
      this.updateItem(item);
      return node;
    }

    updateItem(item) {
      const node = item.el;
      const [, body, tools, meta, sources, rate] = node.children;
      this.renderTools(item, tools);
      node.dataset.status = item.status || "complete";
      if (item.role === "user" || item.role === "notice") {
        body.textContent = item.content;
        if (item.role === "notice") node.setAttribute("role", "alert");
      } else if (!shownText(item) && item.status === "streaming") {
        const typing = h("span", "bcw-typing");
        typing.setAttribute("aria-label", this.t.thinking);
        typing.setAttribute("role", "img");
        typing.append(h("span"), h("span"), h("span"));
        body.replaceChildren(typing);
      } else {
        if (!item.rendered) item.rendered = {};
        renderMarkdown(body, shownText(item), item.rendered);
      }
      meta.textContent = this.metaText(item);
      this.renderSources(sources, item.citations || []);
      this.paintRating(item, rate);
    }

    // -- feedback on an answer (docs/feedback.md) -----------------------------------------------
    // `item.feedback`: "up", "down" or null, as stored; `item.rateSaving` while a request is on its way.

    paintRating(item, container) {
      const shown = item.role === "assistant" && typeof item.id === "string" && item.id && item.status === "complete";
      container.hidden = !shown;
      if (!shown) return;
      if (!container.children.length) {
        const up = this.rateButton(item, "up", "👍", this.t.rateUp);
        const down = this.rateButton(item, "down", "👎", this.t.rateDown);
        const note = h("span", "bcw-rate-note");
        note.setAttribute("role", "status");
        container.setAttribute("role", "group");
        container.append(up, down, note);
      }
      const [up, down, note] = container.children;
      up.setAttribute("aria-pressed", String(item.feedback === "up"));
      down.setAttribute("aria-pressed", String(item.feedback === "down"));
      up.disabled = down.disabled = Boolean(item.rateSaving);
      note.textContent = item.rateNote || "";
    }

    rateButton(item, rating, glyph, label) {
      const button = h("button", `bcw-rate-btn bcw-rate-${rating}`);
      button.type = "button";
      button.setAttribute("aria-label", label);
      button.title = label;
      const mark = h("span");
      mark.setAttribute("aria-hidden", "true");
      mark.textContent = glyph;
      button.append(mark);
      button.addEventListener("click", () => this.rate(item, rating));
      return button;
    }

    // A click: rate the answer, or clear the rating when its button was already pressed.
    async rate(item, rating) {
      if (!item.id || item.rateSaving) return;
      const previous = item.feedback || null;
      const next = previous === rating ? null : rating;
      const path = `/messages/${encodeURIComponent(item.id)}/feedback`;
      Object.assign(item, { feedback: next, rateSaving: true, rateNote: "" });
      this.repaintRating(item);
      try {
        if (next) await this.api("PUT", path, { rating: next });
        else await this.api("DELETE", path);
      } catch (_error) {
        Object.assign(item, { feedback: previous, rateNote: this.t.rateFailed });
      }
      item.rateSaving = false;
      this.repaintRating(item);
    }

    repaintRating(item) {
      if (item.el) this.paintRating(item, item.el.children[5]);
    }

    metaText(item) {
      if (item.role === "user") return { queued: this.t.queued, failed: this.t.notSent }[item.status] || "";
      if (item.role !== "assistant") return "";
      if (item.status === "cancelled") return this.t.stopped;
      if (item.status === "interrupted") return this.t.interrupted;
      if (item.status === "error") return item.note || this.t.failed;
      if (item.finishReason === "length") return this.t.truncated;
      return "";
    }

    renderSources(container, citations) {
      // One line per document (pages merged), or per web result; in the order first cited.
      const groups = new Map();
      for (const citation of citations) {
        if (!citation || typeof citation !== "object") continue;
        const filename = typeof citation.filename === "string" ? citation.filename.trim() : "";
        const url = typeof citation.url === "string" ? citation.url : "";
        const name = filename || (typeof citation.title === "string" && citation.title.trim()) || url;
        if (!name) continue;
        const key = filename ? `doc:${filename}` : `web:${url || name}`;
        if (!groups.has(key)) groups.set(key, { name, href: filename ? null : safeHref(url), pages: new Set() });
        const page = citation.page;
        if (filename && (typeof page === "number" || (typeof page === "string" && page.trim()))) {
          groups.get(key).pages.add(String(page));
        }
      }
      if (!groups.size) {
        container.replaceChildren();
        return;
      }
      const heading = h("p", "bcw-sources-title");
      heading.textContent = this.t.sources;
      const list = h("ol");
      for (const group of groups.values()) {
        const entry = h("li", "bcw-source");
        const label = h(group.href ? "a" : "span", "bcw-source-name");
        label.textContent = group.name;
        if (group.href) {
          label.setAttribute("href", group.href);
          label.setAttribute("target", "_blank");
          label.setAttribute("rel", "noopener noreferrer nofollow");
        }
        entry.append(label);
        if (group.pages.size) {
          const pages = [...group.pages].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
          entry.append(document.createTextNode(` (${this.t.page} ${pages.join(", ")})`));
        }
        list.append(entry);
      }
      container.replaceChildren(heading, list);
    }

    notice(text) {
      this.addItem({ role: "notice", content: text, status: "error" });
    }

    // -- tool calls in an answer (docs/widget.md) ---------------------------------------------
    // `item.tools`, in the order they came: notes ({kind: "note", id, text}: "Used tool X") and approval
    // cards ({kind: "approval", id, runId, tool, arguments, state, choice, decision, status, note}). A card's
    // state: "pending" (its buttons), "sending" (a decision on its way), "queued" (sent once connected),
    // "waiting" (decided or not, the run will say) or "decided" (its outcome instead of the buttons).

    renderTools(item, container) {
      const tools = item.tools || [];
      for (const child of [...container.children]) {
        if (!tools.some((entry) => entry.el === child)) child.remove(); // of a run no longer shown
      }
      for (const entry of tools) {
        if (entry.el && entry.el.parentNode === container) continue;
        entry.el = entry.kind === "approval" ? this.buildApproval(entry) : h("p", "bcw-tool-note");
        if (entry.kind !== "approval") entry.el.textContent = entry.text;
        container.append(entry.el);
        if (entry.kind === "approval") this.paintApproval(entry);
      }
    }

    refreshTools(item) {
      if (!item.el) return;
      const follow = this.nearBottom();
      this.renderTools(item, item.el.children[2]);
      this.scrollDown(follow);
    }

    buildApproval(entry) {
      const card = h("div", "bcw-approval");
      card.setAttribute("role", "group");
      card.setAttribute("aria-label", this.t.approvalLabel.replace("{tool}", entry.tool));
      card.tabIndex = -1; // focus moves here from a button that goes
      card.dataset.approvalId = entry.id;
      const title = h("p", "bcw-approval-title");
      const tool = h("span", "bcw-approval-tool");
      tool.textContent = entry.tool;
      title.append(document.createTextNode(`${this.t.approvalTitle} `), tool);
      const args = h("pre", "bcw-approval-args");
      const actions = h("div", "bcw-approval-actions");
      const allow = this.approvalButton(entry, "approve");
      const deny = this.approvalButton(entry, "reject");
      actions.append(allow, deny);
      const outcome = h("p", "bcw-approval-outcome");
      card.append(title, args, actions, outcome);
      entry.parts = { args, actions, allow, deny, outcome };
      return card;
    }

    approvalButton(entry, decision) {
      const approve = decision === "approve";
      const button = h("button", `bcw-btn ${approve ? "bcw-allow" : "bcw-deny"}`);
      button.type = "button";
      button.textContent = approve ? this.t.allow : this.t.deny;
      button.setAttribute("aria-label", (approve ? this.t.allowLabel : this.t.denyLabel).replace("{tool}", entry.tool));
      button.addEventListener("click", () => this.decide(entry, decision));
      return button;
    }

    paintApproval(entry) {
      if (!entry.el || !entry.parts) return;
      const { args, actions, allow, deny, outcome } = entry.parts;
      const focused = this.shadow.activeElement === allow || this.shadow.activeElement === deny;
      entry.el.dataset.state = entry.state;
      entry.el.dataset.decision = entry.state === "decided" ? entry.decision : "";
      args.textContent = argumentsText(entry.arguments, this.t.argumentsCut);
      actions.hidden = entry.state === "decided";
      allow.disabled = deny.disabled = entry.state !== "pending";
      outcome.textContent = this.approvalText(entry);
      if (focused && allow.disabled) entry.el.focus({ preventScroll: true });
    }

    approvalText(entry) {
      if (entry.state === "sending") return this.t.deciding;
      if (entry.state === "queued") return this.t.decisionQueued;
      if (entry.state !== "decided") return entry.state === "pending" ? entry.note : "";
      if (entry.status === "expired") return this.t.expired;
      if (entry.decision === "approve") return this.t.allowed;
      if (entry.decision === "reject") return this.t.denied;
      return entry.note; // closed, how the server's message says
    }

    // A tool frame of the answer: an approval asked or decided, a call made or its result.
    onToolFrame(item, frame) {
      if (frame.type === "approval_request") {
        const entry = this.showApproval(item, frame);
        if (entry && entry.state === "waiting") {
          entry.state = "pending"; // asked again by a replay: what follows in it says the rest
          this.paintApproval(entry);
        }
      } else if (frame.type === "approval_decided") {
        const entry = this.showApproval(item, frame);
        if (entry) this.settleApproval(entry, frame);
      } else if (frame.type === "tool_result" && typeof frame.id === "string") {
        const tools = (item.tools ||= []);
        if (tools.some((entry) => entry.id === frame.id)) return; // its card tells already
        const text = { done: this.t.usedTool, failed: this.t.toolFailed }[frame.status];
        if (!text) return;
        tools.push({ kind: "note", id: frame.id, text: text.replace("{tool}", toolName(frame.tool)) });
        this.refreshTools(item);
      }
    }

    // The card of an approval (`data`: a frame or the greeting's entry), shown once.
    showApproval(item, data) {
      const id = typeof data.approval_id === "string" ? data.approval_id : "";
      if (!id) return null;
      const tools = (item.tools ||= []);
      let entry = tools.find((other) => other.kind === "approval" && other.id === id);
      if (!entry) {
        const runId = typeof data.run_id === "string" ? data.run_id : item.runId || null;
        entry = { kind: "approval", id, runId, tool: toolName(data.tool), arguments: data.arguments };
        Object.assign(entry, { state: "pending", choice: "", decision: "", status: "", note: "" });
        tools.push(entry);
        this.refreshTools(item);
      }
      return entry;
    }

    // Decided (an approval_decided frame, or the REST answer): its outcome replaces the buttons.
    settleApproval(entry, data) {
      const status = typeof data.status === "string" ? data.status : "";
      let decision = data.decision;
      if (decision !== "approve" && decision !== "reject") {
        decision = status === "rejected" || status === "expired" ? "reject" : "approve";
      }
      Object.assign(entry, { state: "decided", decision, status, note: "" });
      if (data.arguments && typeof data.arguments === "object") entry.arguments = data.arguments;
      this.paintApproval(entry);
    }

    // The visitor's click: the decision goes on the socket, or over HTTP while it is down.
    decide(entry, decision) {
      if (entry.state !== "pending") return;
      Object.assign(entry, { choice: decision, note: "", state: "sending" });
      if (this.socketOpen()) this.sendDecision(entry);
      else if (entry.runId) this.decideOverHttp(entry);
      else entry.state = "queued";
      this.paintApproval(entry);
    }

    sendDecision(entry) {
      const frame = { type: "approval", approval_id: entry.id, decision: entry.choice };
      if (entry.runId) frame.run_id = entry.runId;
      try {
        this.socket.send(JSON.stringify(frame));
        entry.state = "sending";
      } catch (_error) {
        entry.state = "queued";
      }
    }

    async decideOverHttp(entry) {
      const path = `/runs/${encodeURIComponent(entry.runId)}/approvals/${encodeURIComponent(entry.id)}`;
      try {
        const call = await this.api("POST", path, { decision: entry.choice });
        if (entry.state === "sending") this.settleApproval(entry, call || {});
      } catch (error) {
        if (entry.state !== "sending") return; // the run told its outcome meanwhile
        if (error.status === 0) entry.state = "queued"; // no network (or no CORS for this page): sent once connected
        else if (error.status === 409) Object.assign(entry, { state: "decided", decision: "", note: error.detail || this.t.expired });
        else Object.assign(entry, { state: "pending", note: this.describe(error) });
        this.paintApproval(entry);
      }
    }

    // The greeting lists the approvals the running answer waits on: each shows (again) with its buttons, a
    // decision made while disconnected goes now, and a card not listed waits for the run to tell its outcome.
    syncApprovals(item, listed) {
      const pending = new Set();
      for (const data of listed) {
        const entry = data && typeof data === "object" ? this.showApproval(item, data) : null;
        if (!entry) continue;
        pending.add(entry.id);
        if (entry.state === "queued" && entry.choice) this.sendDecision(entry);
        else entry.state = "pending";
        this.paintApproval(entry);
      }
      for (const entry of item.tools || []) {
        if (entry.kind === "approval" && entry.state !== "decided" && !pending.has(entry.id)) {
          entry.state = "waiting";
          this.paintApproval(entry);
        }
      }
    }

    // An error frame that answers a decision sent on the socket; false when it is about something else.
    approvalError(message, code) {
      const tools = (this.answer && this.answer.tools) || [];
      const entry = tools.find((other) => other.kind === "approval" && other.state === "sending");
      if (!entry) return code === "approval_closed"; // its outcome came first: nothing to add
      if (code === "approval_closed") Object.assign(entry, { state: "decided", decision: "", note: message });
      else Object.assign(entry, { state: "pending", note: message });
      this.paintApproval(entry);
      return true;
    }

    // The answer ended (or can no longer be followed): a card still undecided can no longer be decided.
    closeApprovals(item) {
      for (const entry of item.tools || []) {
        if (entry.kind !== "approval" || entry.state === "decided") continue;
        Object.assign(entry, { state: "decided", decision: "reject", status: "expired" });
        this.paintApproval(entry);
      }
    }

    // -- HTTP ---------------------------------------------------------------------------------
    async api(method, path, body) {
      const headers = { Accept: "application/json" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (this.state.visitorToken && path !== "/widget/sessions") headers.Authorization = `Visitor ${this.state.visitorToken}`;
      if (this.requestLang) headers["Accept-Language"] = this.requestLang;
      const controller = new AbortController();
      const timeout = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
      let response;
      try {
        response = await fetch(this.base + path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          mode: "cors",
          credentials: "omit",
          cache: "no-store",
          signal: controller.signal,
        });
      } catch (_error) {
        throw new ApiError(0, "network_error", "");
      } finally {
        clearTimeout(timeout);
      }
      let data = null;
      try {
        data = await response.json();
      } catch (_error) {
        data = null;
      }
      if (!response.ok) {
        const detail = data && typeof data.detail === "string" ? data.detail : "";
        throw new ApiError(response.status, data && typeof data.code === "string" ? data.code : "", detail);
      }
      return data || {};
    }

    describe(error) {
      if (error.code === "origin_not_allowed") return this.t.notAllowed;
      if (error.code === "bot_not_found") return this.t.notFound;
      if (error.detail) return error.detail;
      if (error.status === 429) return this.t.tooMany;
      return this.t.unavailable;
    }

    // -- the session --------------------------------------------------------------------------
    async start() {
      this.started = true;
      if (!this.botKey) {
        this.fatal(this.t.notFound);
        return;
      }
      await this.reconnectNow();
    }

    // Loads the history (or creates a session), then opens a socket on a fresh URL.
    async reconnectNow() {
      clearTimeout(this.timer);
      this.timer = null;
      const generation = ++this.generation;
      this.dropSocket();
      this.setStatus(this.t.connecting);
      try {
        let url;
        if (this.state.sessionId) {
          try {
            await this.loadHistory();
            url = (await this.api("POST", `/widget/sessions/${encodeURIComponent(this.state.sessionId)}/websocket`)).websocket_url;
          } catch (error) {
            if (error.status !== 404 && error.status !== 401 && error.status !== 403) throw error;
            url = null; // not this visitor's session (or gone): a new one
          }
        }
        if (generation !== this.generation) return;
        if (!url) url = await this.createSession();
        if (generation !== this.generation) return;
        this.connect(url, generation);
      } catch (error) {
        if (generation !== this.generation) return;
        if (error.status === 403 || error.status === 404 || error.status === 400) {
          this.fatal(this.describe(error)); // refused for good: this page, this key
        } else {
          if (error.status === 429 || (error.status >= 400 && error.detail)) this.setStatus(this.describe(error));
          this.scheduleReconnect(error.status === 429);
        }
      }
    }

    async createSession() {
      const body = { bot_key: this.botKey };
      if (this.state.visitorToken) body.visitor_token = this.state.visitorToken;
      const created = await this.api("POST", "/widget/sessions", body);
      const fresh = this.state.sessionId !== created.session_id;
      this.state = {
        ...this.state,
        sessionId: created.session_id,
        visitorToken: created.visitor_token || this.state.visitorToken,
        botName: (created.bot && created.bot.name) || this.state.botName || "",
      };
      this.save();
      if (!this.title && this.state.botName) this.titleEl.textContent = this.state.botName;
      if (fresh) {
        this.items = this.items.filter((item) => item.role === "notice").slice(-1);
        this.answer = null;
        this.forgetRun();
        this.awaiting = false;
        this.restorePending();
        this.renderAll();
      }
      return created.websocket_url;
    }

    // `refresh`: on an open connection, which follows any answer begun since it opened (the greeting was
    // before): an answer in progress there is not resumed, and one that began meanwhile is kept.
    async loadHistory(refresh = false) {
      const id = this.state.sessionId;
      const data = await this.api("GET", `/widget/sessions/${encodeURIComponent(id)}/messages`);
      if (id !== this.state.sessionId || (refresh && this.answer)) return;
      const known = refresh ? null : this.knownRun();
      this.items = [];
      for (const m of Array.isArray(data.messages) ? data.messages : []) {
        if (!m || (m.role !== "user" && m.role !== "assistant")) continue;
        const item = {
          id: m.id,
          role: m.role,
          content: typeof m.content === "string" ? m.content : "",
          status: m.role === "assistant" ? m.status || "complete" : "complete",
          citations: Array.isArray(m.citations) ? m.citations : [],
          feedback: m.feedback === "up" || m.feedback === "down" ? m.feedback : null,
        };
        // `cancelled` is a stop (from any tab); an answer cut by a dead server process is `interrupted`.
        this.items.push(item);
      }
      this.answer = null;
      this.awaiting = false;
      const last = this.items[this.items.length - 1];
      if (last && last.role === "assistant" && last.status === "streaming") this.adopt(last, known);
      this.restorePending();
      this.renderAll();
      this.updateControls();
    }

    async newConversation() {
      if (this.stopped && !this.botKey) return;
      this.stopped = false;
      this.state = { ...this.state, sessionId: null };
      this.save();
      if (this.pending && !this.input.value.trim()) this.input.value = this.pending.content; // to send again
      this.pending = null;
      this.items = [];
      this.greeting = "";
      this.answer = null;
      this.awaiting = false;
      this.forgetRun();
      this.renderAll();
      this.started = true;
      await this.reconnectNow();
      this.input.focus();
    }

    fatal(text) {
      this.stopped = true;
      this.connected = false;
      clearTimeout(this.timer);
      this.dropSocket();
      this.setStatus("");
      if (this.pending) {
        this.pending.status = "failed"; // it never will be
        this.updateItem(this.pending);
        this.pending = null;
      }
      if (this.answer) {
        this.answer.status = "interrupted"; // no connection will resume it
        this.closeApprovals(this.answer);
        this.updateItem(this.answer);
        this.answer = null;
      }
      this.awaiting = false;
      this.notice(text);
      this.updateControls();
    }

    scheduleReconnect(slow = false) {
      if (this.stopped || this.timer) return;
      const base = Math.min(BACKOFF_FIRST_MS * 2 ** this.attempt, BACKOFF_MAX_MS);
      const delay = Math.round(Math.min(slow ? Math.max(base, 5000) : base, BACKOFF_MAX_MS) * (0.85 + Math.random() * 0.3));
      this.attempt++;
      this.setStatus(this.t.reconnecting.replace("{s}", (delay / 1000).toFixed(delay < 1000 ? 1 : 0)));
      this.timer = setTimeout(() => {
        this.timer = null;
        this.reconnectNow();
      }, delay);
    }

    // -- the socket ---------------------------------------------------------------------------
    dropSocket() {
      const socket = this.socket;
      this.socket = null;
      this.connected = false;
      if (socket) {
        socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
        if (socket.readyState === WebSocket.CONNECTING || socket.readyState === WebSocket.OPEN) socket.close(1000);
      }
      this.updateControls();
    }

    connect(url, generation) {
      let socket;
      try {
        socket = new WebSocket(url);
      } catch (_error) {
        this.scheduleReconnect();
        return;
      }
      this.socket = socket;
      socket.onopen = () => {
        if (generation !== this.generation) return;
        this.connected = true;
        this.attempt = 0;
        this.setStatus("");
        this.updateControls(); // the queued message goes after the greeting (onReady)
      };
      socket.onmessage = (event) => {
        if (generation !== this.generation) return;
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch (_error) {
          return;
        }
        if (frame && typeof frame === "object") this.onFrame(frame);
      };
      socket.onclose = (event) => {
        if (generation !== this.generation) return;
        this.socket = null;
        this.onClose(event.code);
      };
    }

    onClose(code) {
      this.connected = false;
      this.unsendPending();
      const item = this.answer;
      // An answer with a run goes on without this socket: it stays as it is and is resumed once connected.
      const resumable = item && item.status === "streaming" && (item.runId || item.adopted) && code !== CLOSE_DELETED;
      if (item && !resumable) {
        item.status = "interrupted";
        this.closeApprovals(item);
        this.updateItem(item);
        this.answer = null;
      }
      if (!resumable) this.awaiting = false;
      this.updateControls();
      if (code === CLOSE_DELETED) {
        this.state = { ...this.state, sessionId: null };
        this.save();
        this.items = [];
        this.renderAll();
        this.notice(this.t.deleted);
        this.reconnectNow();
      } else if (code === CLOSE_UNAUTHORIZED) {
        this.fatal(this.t.unauthorized);
      } else if (code === CLOSE_EXPIRED) {
        this.reconnectNow(); // too old: a fresh URL at once
      } else {
        this.scheduleReconnect(code === CLOSE_TOO_MANY);
      }
    }

    onFrame(frame) {
      const content = typeof frame.content === "string" ? frame.content : "";
      switch (frame.type) {
        case "system":
          if (content && content !== this.greeting) {
            this.greeting = content;
            this.renderAll();
          }
          this.onReady(typeof frame.run_id === "string" ? frame.run_id : null, frame.approvals);
          break;
        case "approval_request":
        case "approval_decided":
        case "tool_call":
        case "tool_result": {
          this.confirmPending();
          const item = this.answerFor(frame);
          if (item) this.onToolFrame(item, frame);
          break;
        }
        case "chunk":
        case "snapshot": {
          this.confirmPending();
          const item = this.answerFor(frame);
          if (!item) break;
          item.content = frame.type === "chunk" ? item.content + content : content; // a snapshot is the whole text
          this.queueRender();
          break;
        }
        case "done": {
          this.confirmPending();
          const item = this.answerFor(frame);
          if (!item) break;
          const remote = item.remote;
          item.content = content || item.content;
          item.floor = "";
          item.citations = Array.isArray(frame.citations) ? frame.citations : [];
          item.finishReason = frame.finish_reason || "stop";
          item.status = "complete";
          if (typeof frame.message_id === "string" && frame.message_id) item.id = frame.message_id;
          if (item.finishReason === "cancelled") item.status = "cancelled";
          this.finishAnswer(item);
          if (remote) this.refreshHistory(); // asked from another tab: fetch its question too
          break;
        }
        case "error": {
          // The close that follows these says it better (a fresh URL at once; a new session).
          if (frame.code === "connection_expired" || frame.code === "session_deleted") break;
          const message = content || this.t.failed;
          if (typeof frame.run_id !== "string" && frame.code !== "run_not_found" && this.approvalError(message, frame.code)) {
            break;
          }
          this.confirmPending();
          // An error of a run ends its answer; one of the socket's (no run_id) ends an answer not begun yet.
          const ofRun = typeof frame.run_id === "string";
          const asked = this.answer && !this.answer.runId && !this.answer.adopted ? this.answer : null;
          const item = ofRun ? this.answerFor(frame) : asked;
          if (ofRun && !item) break;
          if (item) {
            const partial = typeof frame.partial === "string" ? frame.partial : null;
            if (frame.code === "interrupted") {
              // The server process writing it died: what it kept is what the history will show.
              item.status = "interrupted";
              if (partial !== null) item.content = partial;
            } else {
              item.status = "error";
              item.note = message;
              if (partial !== null && partial.length >= item.content.length) item.content = partial;
            }
            item.floor = "";
            this.finishAnswer(item);
          } else if (frame.code === "run_not_found" && this.answer) {
            this.answer = null; // the resumed run is gone (its session deleted, say): the history tells
            this.awaiting = false;
            this.updateControls();
            this.refreshHistory();
          } else {
            this.notice(message);
            if (!this.answer) this.awaiting = false;
            this.updateControls();
          }
          break;
        }
        default:
          break;
      }
    }

    // Connected (the greeting came): resume the session's running answer, which the greeting names, from the
    // last seq this tab rendered of it; or send the message waiting to go.
    onReady(runId, approvals) {
      const item = this.answer && this.answer.adopted ? this.answer : null;
      if (runId && !this.endedRuns.has(runId)) {
        if (item && item.runId !== runId) {
          Object.assign(item, { runId, seq: 0, content: "", tools: [] });
          this.updateItem(item);
        }
        if (!item) {
          // Not in the history this tab loaded (begun since, in another tab): shown as it comes.
          this.answer = this.addItem({ role: "assistant", content: "", status: "streaming", citations: [], remote: true });
          Object.assign(this.answer, { runId, seq: 0, adopted: true });
          this.awaiting = true;
        }
        this.sendFrame({ type: "resume", run_id: runId, after: this.answer.seq });
        // A stop asked before the connection dropped may not have reached the server: asked again.
        if (this.answer.stopRequested) this.sendFrame({ type: "stop" });
        const listed = Array.isArray(approvals) ? approvals.filter((a) => a && a.run_id === runId) : [];
        this.syncApprovals(this.answer, listed);
        this.updateControls();
      } else if (item) {
        // Its run ended while this tab was away: the history has its end.
        this.answer = null;
        this.awaiting = false;
        this.updateControls();
        this.refreshHistory();
      }
      this.sendPending();
    }

    // The answer a frame of a run belongs to; null for a frame to ignore: one of a run whose end was shown,
    // of another run than the one shown, or at or below the last seq rendered (each frame renders once).
    answerFor(frame) {
      const runId = typeof frame.run_id === "string" ? frame.run_id : null;
      if (runId && this.endedRuns.has(runId)) return null;
      if (runId && this.answer && this.answer.runId && this.answer.runId !== runId) return null;
      const item = this.currentAnswer();
      if (runId) item.runId = runId;
      if (Number.isInteger(frame.seq)) {
        if (frame.seq <= (item.seq || 0)) return null;
        item.seq = frame.seq;
      }
      return item;
    }

    currentAnswer() {
      if (!this.answer) {
        this.answer = this.addItem({ role: "assistant", content: "", status: "streaming", citations: [], remote: !this.awaiting });
        this.log.setAttribute("aria-busy", "true");
      }
      return this.answer;
    }

    finishAnswer(item) {
      const follow = this.nearBottom();
      this.closeApprovals(item);
      this.updateItem(item);
      this.scrollDown(follow);
      if (item.runId) this.endedRuns.add(item.runId);
      this.forgetRun();
      this.answer = null;
      this.awaiting = false;
      this.updateControls();
      this.sendPending(); // a message queued while a resumed answer ran
    }

    // -- the run this tab shows, kept for a reload (docs/widget.md) -------------------------------
    get runKey() {
      return `${this.storeKey}.run`;
    }

    // What this tab rendered of the answer being written: its run, the last seq and the text up to it.
    knownRun() {
      const item = this.answer;
      if (item && item.runId && item.status === "streaming") {
        const stopRequested = Boolean(item.stopRequested);
        return { run: item.runId, seq: item.seq || 0, text: item.content, stopRequested, tools: toolsKept(item.tools) };
      }
      try {
        const saved = JSON.parse(this.tab.getItem(this.runKey) || "null");
        const valid = saved && saved.session === this.state.sessionId && typeof saved.run === "string";
        if (valid && Number.isInteger(saved.seq) && saved.seq >= 0 && typeof saved.text === "string") return saved;
      } catch (_error) {
        // unreadable: the run is resumed from its start
      }
      return null;
    }

    // At page hide only: the text of a long answer is not written at every chunk.
    saveRun() {
      const known = this.answer ? this.knownRun() : null;
      if (!known) return;
      try {
        this.tab.setItem(this.runKey, JSON.stringify({ session: this.state.sessionId, ...known }));
      } catch (_error) {
        // storage full: after the reload the run is resumed from its start
      }
    }

    forgetRun() {
      this.tab.removeItem(this.runKey);
    }

    // An answer the history shows in progress: shown as such, then resumed once connected, after what this
    // tab had rendered of it (`known`) if that is its run (the greeting says), else from the run's start.
    adopt(item, known) {
      item.floor = item.content; // the server's last checkpoint
      Object.assign(item, { runId: null, seq: 0, content: "", adopted: true, tools: [] });
      if (known) Object.assign(item, { runId: known.run, seq: known.seq, content: known.text, stopRequested: known.stopRequested });
      if (known) item.tools = toolsKept(known.tools); // its cards, until the greeting and the run say more
      this.answer = item;
      this.awaiting = true;
    }

    async refreshHistory() {
      try {
        if (!this.answer) await this.loadHistory(true);
      } catch (_error) {
        // the answer is shown already; its question appears on the next reload
      }
    }

    submit() {
      const text = this.input.value.trim();
      if (!text || this.stopped || this.awaiting || this.pending) return;
      this.input.value = "";
      this.input.style.height = "auto";
      this.pending = this.addItem({ role: "user", content: text, status: "queued" });
      this.scrollDown(true);
      this.updateControls();
      this.sendPending();
    }

    socketOpen() {
      return this.connected && this.socket !== null && this.socket.readyState === WebSocket.OPEN;
    }

    sendFrame(frame) {
      if (this.socketOpen()) this.socket.send(JSON.stringify(frame)); // else the next connection resumes
    }

    // Sends the visitor's queued message, if the socket is open; until then it shows as not sent.
    sendPending() {
      const item = this.pending;
      if (!item || item.status !== "queued" || this.awaiting || !this.socketOpen()) return;
      try {
        this.socket.send(JSON.stringify({ type: "message", content: item.content }));
      } catch (_error) {
        return;
      }
      item.status = "sent";
      item.copies = this.copies(item); // to tell, after a lost connection, whether the server got it
      this.updateItem(item);
      this.awaiting = true;
      this.answer = null;
      this.currentAnswer();
      this.scrollDown(true);
      this.updateControls();
    }

    // The answer to the visitor's message has begun (or the server refused it): it was received.
    confirmPending() {
      if (!this.pending || this.pending.status !== "sent") return;
      this.pending.status = "complete";
      this.updateItem(this.pending);
      this.pending = null;
    }

    // The connection closed before any answer to the sent message: it is queued again, and its answer
    // (not begun) goes. The reloaded history says whether the server got it after all.
    unsendPending() {
      const item = this.pending;
      if (!item || item.status !== "sent") return;
      item.status = "queued";
      item.unsure = true;
      this.updateItem(item);
      if (this.answer && !this.answer.content) {
        this.answer.el.remove();
        this.items = this.items.filter((other) => other !== this.answer);
        this.answer = null;
      }
    }

    // After the items were replaced (a reloaded history, a new session): the message not answered yet
    // stays in the conversation, queued, unless the history holds it (received before the connection was lost).
    restorePending() {
      const item = this.pending;
      if (!item) return;
      if (item.unsure && this.copies(item) > item.copies) {
        this.pending = null;
        return;
      }
      item.unsure = false;
      item.status = "queued";
      this.items.push(item);
    }

    copies(message) {
      const same = (item) => item !== message && item.role === "user" && item.content === message.content;
      return this.items.filter(same).length;
    }

    requestStop() {
      if (!this.awaiting || !this.answer || !this.socketOpen()) return;
      this.sendFrame({ type: "stop" });
      this.answer.stopRequested = true;
      this.updateControls();
    }

    // -- streamed answers: rendered at most once an animation frame, and, after a slow render, only once
    // three times as long has passed, so a long answer's renders take at most a quarter of the page's time.
    queueRender() {
      if (this.renderQueued) return;
      this.renderQueued = true;
      requestAnimationFrame(() => {
        this.renderQueued = false;
        const item = this.answer;
        if (!item) return; // it ended and was rendered whole
        const started = performance.now();
        if (started < this.renderAfter) {
          this.queueRender();
          return;
        }
        const follow = this.nearBottom();
        this.updateItem(item);
        this.scrollDown(follow);
        const ended = performance.now();
        this.renderAfter = ended + 3 * (ended - started);
      });
    }
  }

  function boot(script) {
    if (!script || script.dataset.bytchatReady) return;
    script.dataset.bytchatReady = "1";
    const run = () => new BytchatWidget(script);
    if (document.body) run();
    else document.addEventListener("DOMContentLoaded", run, { once: true });
  }

  const current = document.currentScript;
  if (current && current.dataset.botKey !== undefined) boot(current);
  else document.querySelectorAll(`script[data-bot-key][src*="${STATIC_MARK}widget.js"]`).forEach(boot);
})();
