// hello-tui conversation page: join a room from any WebRTC browser.
//
// Plain JavaScript, no dependencies, nothing loaded from elsewhere. It speaks
// the signaling protocol of docs/protocol.md over this server's /ws, decrypts
// the room name with the key in the URL fragment (#k=..., never sent to the
// server; format in hello_tui/signaling/roomcrypt.py), and shows the same
// six-digit check code as the terminal client, with its hash commitment
// (hello_tui/call/sas.py, docs/security.md). Protocol version 2: display
// names, the room's context, knock to enter, and chat over a pre-negotiated
// data channel (hello_tui/call/chat.py); a call that recovers: a new transport
// within the call (renew-offer/renew-answer, hello_tui/call/renewal.py) and a
// seat taken back after the server connection dropped.
// See docs/browser.md.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const body = document.body;
  const SECTIONS = ["s-loading", "s-join", "s-status", "s-call", "s-ended", "s-error"];
  const NAME_STORE = "hello-tui.display-name"; // localStorage: asked once, editable
  const TOKEN = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  const VERSION = body.dataset.version || "0.0.0";
  const PROTOCOL_VERSION = 2;
  // Tests may shorten the timers (window.__helloTestConfig, set before this script).
  const cfg = Object.assign(
    {
      connectTimeoutMs: 15000,
      requestTimeoutMs: 10000,
      gatherTimeoutMs: 5000,
      // A connected call's media watch (as call/media_watch.py): no audio packet for
      // stallMs → "Reconnecting…"; renewAfterMs → the call's offerer renews the
      // transport; lostMs (renewLostMs while a renewal is under way) → the call ends.
      stallMs: 1500,
      renewAfterMs: 2500,
      lostMs: 8000,
      renewLostMs: 9000,
      resendMs: 2000, // a renew-offer not answered by then is sent again
      shareMaxPending: 32, // screen frames queued before the page skips to a snapshot
    },
    window.__helloTestConfig || {},
  );

  const st = {
    phase: "loading", // join | joining | knocking | waiting | connecting | connected | ended | error
    errorKind: null,
    roomName: null,
    displayName: "",
    peerName: "", // the other side's display name (its own words: shown as text)
    context: null, // {description, url} decrypted with the fragment's key
    knock: null, // the knock id while waiting in a knock-to-enter room's lobby
    knockWait: null, // {resolve} for the room-joined that admission brings
    knockEnd: null, // why the knock ended when not let in
    knockOwnerPresent: null,
    ws: null,
    ref: 0,
    pending: new Map(), // ref -> {resolve, reject, timer}
    ice: [],
    stream: null,
    pc: null,
    callId: null,
    inRoom: false,
    offerer: false, // we made the call's offer (the later arrival): we renew when audio stops
    cert: null, // one DTLS certificate for every connection of the call (the code can stay)
    livePc: null, // the connection carrying the call (a renewal's, once it connected)
    renew: null, // a new transport within the call: newRenewal()
    watch: null, // the media watch: newWatch()
    reconnecting: false,
    reconnects: 0, // times "Reconnecting…" was shown in this call
    seat: "", // our seat's secret (room-join): a new connection takes the seat back with it
    serverGone: false, // the server connection dropped during the call: reconnecting
    reseats: 0, // times the seat was taken back on a new connection
    probing: false,
    watchTimer: null,
    sas: null, // the check code, only once verified
    // The commitment exchange (sas.py): our role in this offer/answer, our
    // nonce, the peer's nonce (the offerer's only once it opened the commitment).
    sasStatus: "waiting", // waiting | verified | mismatch | unsupported
    sasRole: null,
    sasMine: null,
    sasTheirs: null,
    sasCommit: null,
    sasRevealSeen: false,
    sasShown: false,
    fingerprints: null, // [local, remote] the check code was computed from (false: unknown)
    remoteSdp: null, // the peer's SDP as signalled
    sasBefore: null, // the code shown before a renewal (it holds for the same certificates)
    codeChanged: false, // a renewal brought another code: compare again
    wasConnected: false,
    endReason: null,
    endBy: null,
    muted: false,
    cameraOn: false,
    audioCtx: null,
    analyser: null,
    statsTimer: null,
    connectTimer: null,
    lastStats: null,
    quality: null,
    feedback: null,
  };

  // ------------------------------------------------------------ error pages
  const ERRORS = {
    expired: {
      title: "This conversation has expired",
      text: "Conversation links stop working some time after they were last used.",
      hint: "Ask the person who sent it for a new link.",
    },
    unknown: {
      title: "This conversation link does not work",
      text: "There is no conversation with this link: it may be mistyped or cut short, "
        + "or its owner deleted it.",
      hint: "Ask the person who sent it to check the link.",
    },
    full: {
      title: "This conversation is full",
      text: "Two people are already talking here, and a conversation has room for two.",
      hint: "Try again when one of them has left.",
      retry: true,
    },
    "mic-denied": {
      title: "Microphone access was refused",
      text: "The call needs your microphone, and the browser was told not to share it.",
      hint: "Allow the microphone for this site (the icon left of the address bar), "
        + "then try again.",
      retry: true,
    },
    "mic-missing": {
      title: "No microphone found",
      text: "The browser found no microphone to use, or it is busy in another program.",
      hint: "Connect a microphone or headset (or close the program using it), then try again.",
      retry: true,
    },
    "no-webrtc": {
      title: "This browser cannot make calls",
      text: "It lacks WebRTC (RTCPeerConnection, getUserMedia or WebCrypto).",
      hint: "Open the link in a current Firefox, Chromium, Chrome, Edge or Safari.",
    },
    insecure: {
      title: "This page needs a secure connection",
      text: "Browsers allow the microphone and encryption only on https:// pages "
        + "(or on this machine).",
      hint: "The server's operator should serve it over https "
        + "(hello-tui serve --tls-cert/--tls-key, or behind a TLS proxy).",
    },
    "connection-failed": {
      title: "The call could not connect",
      text: "Your browser and the other side could not reach each other.",
      hint: "", // filled in by connectionHint()
      retry: true,
    },
    unreachable: {
      title: "Cannot reach the conversation server",
      text: "The connection to the server failed or was lost.",
      hint: "Check your network connection, then try again.",
      retry: true,
    },
    error: {
      title: "Something went wrong",
      text: "",
      hint: "Try again; if it keeps happening, tell the person who sent the link.",
      retry: true,
    },
  };

  function connectionHint() {
    const relays = st.ice.length
      ? `this server gave this page ${st.ice.length} relay server(s), and they did not help`
      : "this server gave this page no TURN relay server (none is configured for "
        + "anonymous guests)";
    return "Likely causes: a firewall blocking UDP between you, or you are on different "
      + `networks behind NAT and ${relays}. The server's operator can add a relay `
      + "(a TURN server such as coturn, see hello-tui serve --turn-url).";
  }

  function show(id) {
    for (const s of SECTIONS) $(s).hidden = s !== id;
  }

  function status(text) {
    $("status-text").textContent = text;
    show("s-status");
  }

  function fail(kind, detail) {
    if (st.phase === "error") return;
    cleanup();
    closeWs();
    st.phase = "error";
    st.errorKind = kind;
    const e = ERRORS[kind] || ERRORS.error;
    $("error-title").textContent = e.title;
    $("error-text").textContent = e.text || detail || "";
    $("error-hint").textContent = kind === "connection-failed" ? connectionHint() : e.hint;
    $("retry").hidden = !e.retry;
    body.dataset.phase = "error";
    show("s-error");
  }

  function setPhase(phase) {
    st.phase = phase;
    body.dataset.phase = phase;
  }

  // ------------------------------------------------------------ room name (roomcrypt.py)
  function b64urlDecode(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
    const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }

  function fragmentKey() {
    for (const item of location.hash.replace(/^#/, "").split("&")) {
      const [name, value] = item.split("=", 2);
      if (name === "k" && value) return value;
    }
    return null;
  }

  async function unseal(ciphertext, keyText) {
    // roomcrypt.py's format: version 1 || 12-byte nonce || AES-GCM, zero-padded UTF-8.
    const key = b64urlDecode(keyText);
    if (key.length !== 16) throw new Error("the room key must be 16 bytes");
    const b = b64urlDecode(ciphertext);
    if (b.length < 29 || b[0] !== 1) throw new Error("unknown room name format");
    const k = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["decrypt"]);
    const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv: b.slice(1, 13) }, k, b.slice(13));
    return new TextDecoder("utf-8", { fatal: true }).decode(pt).replace(/\0+$/, "");
  }

  const decryptName = unseal;

  // The room context's bounds, as roomcrypt.check_context checks them again on
  // decryption: it is the owner's text, and this page holds it to the same rules.
  const CONTEXT_URL_RE = /^https?:\/\/[!#-;=?-~]+$/; // printable ASCII but space " < >
  const CONTROL_RE = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/;
  const codePoints = (text) => [...text].length;

  async function decryptContext(ciphertext, keyText) {
    const data = JSON.parse(await unseal(ciphertext, keyText));
    if (!data || typeof data !== "object" || Array.isArray(data)) {
      throw new Error("the room context is not a JSON object");
    }
    const description = data.description === undefined ? "" : data.description;
    const url = data.url === undefined ? "" : data.url;
    if (typeof description !== "string" || typeof url !== "string") {
      throw new Error("the room context's fields must be strings");
    }
    if (codePoints(description) > 200 || CONTROL_RE.test(description) || !wellFormed(description)) {
      throw new Error("the room description is not one short line");
    }
    if (url.length > 500 || (url && !CONTEXT_URL_RE.test(url))) {
      throw new Error("the room link is not an http(s) URL");
    }
    return { description, url };
  }

  function wellFormed(text) {
    // No lone surrogates (they cannot be sent as UTF-8; Python refuses them).
    if (typeof text.isWellFormed === "function") return text.isWellFormed();
    return !/[\ud800-\udbff](?![\udc00-\udfff])|(?:^|[^\ud800-\udbff])[\udc00-\udfff]/.test(text);
  }

  async function showContext(ciphertext) {
    // Shown as text only: the link is never opened, and never made a link (docs/browser.md).
    const key = fragmentKey();
    if (!ciphertext || !key) return;
    const box = $("room-context");
    try {
      st.context = await decryptContext(ciphertext, key);
    } catch (e) {
      st.context = null;
      $("room-description").textContent = "This conversation has a description this page "
        + "cannot read (the link may be damaged).";
      $("room-link-line").hidden = true;
      box.hidden = false;
      return;
    }
    $("room-description").textContent = st.context.description;
    $("room-description").hidden = !st.context.description;
    $("room-link").textContent = st.context.url;
    $("room-link-line").hidden = !st.context.url;
    box.hidden = !(st.context.description || st.context.url);
  }

  // Display names as the protocol takes them (protocol.clean_display_name): one
  // line, no control, bidi-override or zero-width characters, at most 64.
  const NOT_SHOWN_RE = /[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]+/g;

  function cleanDisplayName(text) {
    let t = String(text || "").replace(NOT_SHOWN_RE, " ");
    if (!wellFormed(t)) t = [...t].filter((c) => wellFormed(c)).join("");
    return [...t.split(/\s+/).filter(Boolean).join(" ")].slice(0, 64).join("").trim();
  }

  function rememberedName() {
    try {
      return cleanDisplayName(localStorage.getItem(NAME_STORE) || "");
    } catch (e) {
      return ""; // storage disabled: ask every time
    }
  }

  function rememberName(name) {
    try {
      localStorage.setItem(NAME_STORE, name);
    } catch (e) {
      // storage disabled or full: the name is used for this call only
    }
  }

  function showNameForm(name) {
    $("display-name").value = name;
    $("known-name").textContent = name;
    $("name-known").hidden = !name;
    $("name-field").hidden = Boolean(name);
  }

  async function showRoomName(ciphertext) {
    const note = $("room-note");
    const key = fragmentKey();
    if (!ciphertext) return;
    if (!key) {
      note.textContent = "This link has no key (#k=…), so the conversation's name "
        + "cannot be shown. You can still join.";
      note.hidden = false;
      return;
    }
    try {
      st.roomName = await decryptName(ciphertext, key);
      $("room-name").textContent = st.roomName || "Unnamed conversation";
      document.title = `${st.roomName || "Conversation"} · hello-tui`;
      note.hidden = true;
    } catch (e) {
      note.textContent = "The key in this link does not open the conversation's name "
        + "(the link may be damaged). You can still join.";
      note.hidden = false;
    }
  }

  // ------------------------------------------------------------ check code (sas.py)
  const FP_RE = /^a=fingerprint:(\S+)\s+([0-9A-Fa-f:]+)\s*$/gm;

  function normaliseFp(fp) {
    const text = fp.trim();
    const i = text.search(/\s/);
    return `${text.slice(0, i).toLowerCase()} ${text.slice(i).trim().toUpperCase()}`;
  }

  function fingerprintFromSdp(sdp) {
    const found = [...sdp.matchAll(FP_RE)].map((m) => [m[1].toLowerCase(), m[2]]);
    if (!found.length) throw new Error("the SDP carries no a=fingerprint line");
    const [alg, value] = found.find(([a]) => a === "sha-256") || found[0];
    return normaliseFp(`${alg} ${value}`);
  }

  const COMMIT_ATTR = "hello-sas-commit";
  const NONCE_ATTR = "hello-sas-nonce";
  const NONCE_BYTES = 32;
  const utf8 = (text) => new TextEncoder().encode(text);

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  function b64urlEncode(bytes) {
    return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
      .replace(/=+$/, "");
  }

  function strictB64(text, size) {
    // Exactly `size` bytes of unpadded base64url, else null (as sas.py's unb64).
    if (typeof text !== "string" || !/^[A-Za-z0-9_-]+$/.test(text)) return null;
    try {
      const bytes = b64urlDecode(text);
      return bytes.length === size && b64urlEncode(bytes) === text ? bytes : null;
    } catch (e) {
      return null;
    }
  }

  function newNonce() {
    return crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  }

  function commitment(nonce) {
    return sha256(concat(utf8("hello-tui sas commit v1"), nonce));
  }

  function sdpAttribute(sdp, name) {
    // A session-level a=name:value (before the first m= line), or null.
    for (const line of sdp.split(/\r?\n/)) {
      if (line.startsWith("m=")) return null;
      if (line.startsWith(`a=${name}:`)) return line.slice(name.length + 3).trim();
    }
    return null;
  }

  function withSdpAttribute(sdp, name, value) {
    const nl = sdp.includes("\r\n") ? "\r\n" : "\n";
    const lines = sdp.split(nl);
    let at = lines.findIndex((line) => line.startsWith("m="));
    if (at < 0) at = lines[lines.length - 1] === "" ? lines.length - 1 : lines.length;
    lines.splice(at, 0, `a=${name}:${value}`);
    return lines.join(nl);
  }

  async function sasCode(fpOffer, fpAnswer, nonceOffer, nonceAnswer) {
    // SHA-256("hello-tui sas v2" 0 fp_offer 0 fp_answer 0 n_offer n_answer), as sas.py.
    const zero = new Uint8Array(1);
    const data = concat(utf8("hello-tui sas v2"), zero, utf8(normaliseFp(fpOffer)), zero,
      utf8(normaliseFp(fpAnswer)), zero, nonceOffer, nonceAnswer);
    const digest = await sha256(data);
    const n = new DataView(digest.buffer).getBigUint64(0, false) % 1000000n;
    const digits = n.toString().padStart(6, "0");
    return `${digits.slice(0, 3)} ${digits.slice(3)}`;
  }

  function sasReset(role) {
    Object.assign(st, {
      sas: null, sasStatus: "waiting", sasRole: role, sasMine: newNonce(), sasTheirs: null,
      sasCommit: null, sasRevealSeen: false, sasShown: false,
    });
  }

  async function stampOffer(sdp) {
    sasReset("offerer");
    return withSdpAttribute(sdp, COMMIT_ATTR, b64urlEncode(await commitment(st.sasMine)));
  }

  function stampAnswer(offerSdp, answerSdp) {
    sasReset("answerer");
    st.sasCommit = strictB64(sdpAttribute(offerSdp, COMMIT_ATTR), 32);
    if (!st.sasCommit) st.sasStatus = "unsupported";
    return withSdpAttribute(answerSdp, NONCE_ATTR, b64urlEncode(st.sasMine));
  }

  function takeAnswer(answerSdp) {
    // The answer fixed the answerer's nonce: now (never earlier) ours may go.
    if (st.sasRole !== "offerer" || st.sasStatus !== "waiting") return;
    const theirs = strictB64(sdpAttribute(answerSdp, NONCE_ATTR), NONCE_BYTES);
    if (!theirs) {
      st.sasStatus = "unsupported";
      return;
    }
    st.sasTheirs = theirs;
    st.sasStatus = "verified";
    request({ type: "sas-reveal", call_id: st.callId, nonce: b64urlEncode(st.sasMine) })
      .catch(() => {});
  }

  async function takeReveal(nonceText) {
    // Only the first reveal counts; a wrong one is final.
    if (st.sasRole !== "answerer" || st.sasRevealSeen || st.sasStatus !== "waiting") return;
    st.sasRevealSeen = true;
    const commit = st.sasCommit;
    const theirs = strictB64(nonceText, NONCE_BYTES);
    const opened = theirs ? await commitment(theirs) : null;
    const ok = opened && opened.every((b, i) => b === commit[i]);
    st.sasStatus = ok ? "verified" : "mismatch";
    if (ok) st.sasTheirs = theirs;
    await settleCheckCode();
  }

  async function settleCheckCode() {
    // A mismatch shows at once; a code (or its absence) once DTLS checked the certificates.
    if (st.sasShown || st.sasStatus === "waiting") return;
    if (st.sasStatus !== "mismatch" && (st.phase !== "connected" || st.fingerprints === null)) {
      return;
    }
    st.sasShown = true;
    if (st.sasStatus === "verified") {
      if (st.fingerprints) {
        const [local, remote] = st.fingerprints;
        const offerer = st.sasRole === "offerer";
        st.sas = await sasCode(offerer ? local : remote, offerer ? remote : local,
          offerer ? st.sasMine : st.sasTheirs, offerer ? st.sasTheirs : st.sasMine);
        st.codeChanged = Boolean(st.sasBefore && st.sas !== st.sasBefore);
      } else {
        st.sasStatus = "unsupported";
      }
    }
    renderCheckCode();
  }

  function renderCheckCode() {
    const box = $("sas-box");
    box.classList.toggle("warning", st.sasStatus === "mismatch");
    const texts = {
      waiting: "waiting…",
      mismatch: "WARNING: no check code. The other side's reveal does not match its "
        + "commitment: someone may be intercepting this call. Hang up.",
      unsupported: "No check code: the other side does not support it.",
    };
    $("sas").textContent = st.sasStatus === "verified" ? st.sas : texts[st.sasStatus];
    $("sas").classList.toggle("code", st.sasStatus === "verified");
    $("sas-changed").hidden = !st.codeChanged;
  }

  // ------------------------------------------------------------ chat (call/chat.py)
  // One pre-negotiated data channel (label "hello", id 0, ordered), created before
  // our offer or, answering, when the offer has an m=application line. Frames:
  // {"v": 1, "type": "chat", "text": …}. The same bounds as the terminal side.
  const CHAT_LABEL = "hello";
  const CHAT_ID = 0;
  const CHAT_MAX_CHARS = 2000;
  const CHAT_MAX_FRAME_BYTES = 8 * 1024;
  const CHAT_RATE = 5; // a second, per direction...
  const CHAT_BURST = 20; // ...in bursts of this many
  const CHAT_NOTICE_MS = 10000; // at most one drop notice this often
  const CHAT_KEEP = 1000; // lines kept on the page (the rate bounds how fast they come)

  function tokenBucket() {
    let tokens = CHAT_BURST;
    let last = performance.now();
    return () => {
      const now = performance.now();
      tokens = Math.min(CHAT_BURST, tokens + ((now - last) / 1000) * CHAT_RATE);
      last = now;
      if (tokens < 1) return false;
      tokens -= 1;
      return true;
    };
  }

  function newChat() {
    return {
      channel: null,
      takeOut: tokenBucket(),
      takeIn: tokenBucket(),
      pending: [],
      lines: [], // {kind: "local"|"remote"|"event", name, text}
      notices: [],
      received: 0,
      dropped: 0,
      sent: 0,
      noticedAt: -Infinity,
      unreported: 0,
    };
  }
  st.chat = newChat();

  const utf8Length = (text) => new TextEncoder().encode(text).length;
  const chatFrame = (text) => JSON.stringify({ v: 1, type: "chat", text });

  function chatLine(kind, name, text) {
    const chat = st.chat;
    chat.lines.push({ kind, name, text });
    const log = $("chat-log");
    const li = document.createElement("li");
    if (kind === "event") {
      li.className = "event";
      li.textContent = text;
    } else {
      li.className = kind;
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = `${name}: `;
      const what = document.createElement("span");
      what.className = "text";
      what.textContent = text; // someone else's words: text, never markup
      li.append(who, what);
    }
    log.append(li);
    while (chat.lines.length > CHAT_KEEP) {
      chat.lines.shift();
      log.firstElementChild.remove();
    }
    log.scrollTop = log.scrollHeight;
    $("chat").hidden = false;
  }

  // What the tests read of a data channel: which one the page negotiated.
  function channelInfo(channel) {
    return channel
      ? { label: channel.label, id: channel.id, negotiated: channel.negotiated }
      : { label: null, id: null, negotiated: null };
  }

  function chatNotice(text) {
    st.chat.notices.push(text);
    const note = $("chat-notice");
    note.textContent = text;
    note.hidden = false;
  }

  function peerLabel() {
    return st.peerName || "The other person";
  }

  function roomEvent(text) {
    chatLine("event", "", text);
  }

  function attachChannel(pc) {
    const channel = pc.createDataChannel(CHAT_LABEL, { negotiated: true, id: CHAT_ID, ordered: true });
    st.chat.channel = channel;
    channel.onopen = () => {
      if (st.chat.channel !== channel) return;
      renderChatControls();
      const pending = st.chat.pending;
      st.chat.pending = [];
      for (const text of pending) sendFrame(text);
    };
    channel.onclose = () => {
      if (st.chat.channel === channel) renderChatControls();
    };
    channel.onmessage = (ev) => {
      if (st.chat.channel === channel) receiveChat(ev.data);
    };
  }

  function chatOpen() {
    return Boolean(st.chat.channel && st.chat.channel.readyState === "open");
  }

  function renderChatControls() {
    const live = ["connecting", "connected"].includes(st.phase) && Boolean(st.chat.channel);
    $("chat-input").disabled = !live;
    $("chat-send").disabled = !live;
  }

  function checkChat(text) {
    // The reason a message cannot go (encode_chat), or "".
    if (typeof text !== "string" || !text.trim()) return "An empty message is not sent.";
    if (!wellFormed(text)) return "The message is not valid text: not sent.";
    const n = codePoints(text);
    if (n > CHAT_MAX_CHARS) {
      return `Message too long (${n} characters, at most ${CHAT_MAX_CHARS}): not sent.`;
    }
    const size = utf8Length(chatFrame(text));
    if (size > CHAT_MAX_FRAME_BYTES) {
      return `Message too long (${size} bytes encoded, at most ${CHAT_MAX_FRAME_BYTES}): `
        + "not sent.";
    }
    return "";
  }

  function sendChat(text) {
    // True when it went out or waits for the channel to open; else a notice says why.
    if (!st.chat.channel) {
      chatNotice("No chat in this call: the other side's app does not offer it.");
      return false;
    }
    const why = checkChat(text);
    if (why) {
      chatNotice(why);
      return false;
    }
    if (!st.chat.takeOut()) {
      chatNotice("Too many messages too fast: this one was not sent.");
      return false;
    }
    if (!chatOpen()) {
      if (st.chat.pending.length >= CHAT_BURST) {
        chatNotice("Chat is not connected yet: too many messages waiting.");
        return false;
      }
      st.chat.pending.push(text);
      return true;
    }
    sendFrame(text);
    return true;
  }

  function sendFrame(text) {
    st.chat.channel.send(chatFrame(text));
    st.chat.sent += 1;
    chatLine("local", st.displayName || "me", text);
  }

  function decodeChat(data) {
    // The text of a chat frame; null for a v1 frame of another type (ignored);
    // throws for a frame that is not acceptable (decode_frame).
    if (typeof data !== "string") throw new Error("not a text frame");
    if (data.length > CHAT_MAX_FRAME_BYTES || utf8Length(data) > CHAT_MAX_FRAME_BYTES) {
      throw new Error("frame too large");
    }
    let obj;
    try {
      obj = JSON.parse(data);
    } catch (e) {
      throw new Error("not JSON");
    }
    if (!obj || typeof obj !== "object" || Array.isArray(obj) || obj.v !== 1) {
      throw new Error("not a version-1 message");
    }
    if (obj.type !== "chat") return null;
    const text = obj.text;
    if (typeof text !== "string" || !text || codePoints(text) > CHAT_MAX_CHARS) {
      throw new Error("bad text");
    }
    if (!wellFormed(text)) throw new Error("text is not valid Unicode");
    return text;
  }

  function receiveChat(data) {
    if (!st.chat.takeIn()) {
      dropChat("The other side is sending messages too fast: some are dropped");
      return;
    }
    let text;
    try {
      text = decodeChat(data);
    } catch (e) {
      dropChat(`A message from the other side was dropped (${e.message})`);
      return;
    }
    if (text === null) return;
    st.chat.received += 1;
    chatLine("remote", peerLabel(), text);
  }

  function dropChat(notice) {
    // A flood must not become a flood of notices: one every 10 s, with the count.
    const chat = st.chat;
    chat.dropped += 1;
    chat.unreported += 1;
    const now = performance.now();
    if (now - chat.noticedAt >= CHAT_NOTICE_MS) {
      const n = chat.unreported;
      chat.unreported = 0;
      chat.noticedAt = now;
      chatNotice(n === 1 ? `${notice}.` : `${notice} (${n} dropped).`);
    }
  }

  function closeChat() {
    const chat = st.chat;
    if (chat.pending.length) {
      const n = chat.pending.length;
      chat.pending = [];
      chatNotice(`${n} message${n > 1 ? "s" : ""} not sent: the call ended before chat `
        + "connected.");
    }
    chat.channel = null;
    renderChatControls();
  }

  function submitChat() {
    const input = $("chat-input");
    if (sendChat(input.value)) {
      input.value = "";
      $("chat-notice").hidden = true;
    }
    input.focus();
  }

  // ------------------------------------------------------------ signaling
  function wsUrl() {
    return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  }

  function request(msg, timeoutMs) {
    return new Promise((resolve, reject) => {
      const ws = st.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) {
        reject(Object.assign(new Error("not connected"), { code: "unreachable" }));
        return;
      }
      const ref = ++st.ref;
      const timer = setTimeout(() => {
        st.pending.delete(ref);
        reject(Object.assign(new Error("the server did not answer"), { code: "timeout" }));
      }, timeoutMs || cfg.requestTimeoutMs);
      st.pending.set(ref, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...msg, ref }));
    });
  }

  function connectWs() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(wsUrl());
      } catch (e) {
        reject(Object.assign(e, { code: "unreachable" }));
        return;
      }
      st.ws = ws;
      ws.onopen = () => {
        request({ type: "hello", version: PROTOCOL_VERSION, client: `hello-web/${VERSION}` })
          .then((welcome) => {
            st.ice = Array.isArray(welcome.ice) ? welcome.ice : [];
            resolve(welcome);
          }, reject);
      };
      ws.onmessage = (ev) => onFrame(ev.data);
      ws.onclose = () => {
        if (st.ws !== ws) return;
        st.ws = null;
        for (const [, p] of st.pending) {
          clearTimeout(p.timer);
          p.reject(Object.assign(new Error("connection closed"), { code: "unreachable" }));
        }
        st.pending.clear();
        reject(Object.assign(new Error("connection closed"), { code: "unreachable" }));
        onServerLost();
      };
    });
  }

  function closeWs() {
    const ws = st.ws;
    st.ws = null;
    if (ws) ws.close(1000);
  }

  function onFrame(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (e) {
      return;
    }
    if (msg.ref != null && st.pending.has(msg.ref)) {
      const p = st.pending.get(msg.ref);
      st.pending.delete(msg.ref);
      clearTimeout(p.timer);
      if (msg.type === "error") {
        p.reject(Object.assign(new Error(msg.message), { code: msg.code }));
      } else {
        p.resolve(msg);
      }
      return;
    }
    switch (msg.type) {
      case "peer-joined":
        if (st.phase !== "waiting") return;
        st.callId = msg.call_id;
        st.peerName = cleanDisplayName(msg.display_name);
        roomEvent(`${peerLabel()} joined`);
        setPhase("connecting");
        status(`${st.peerName || "Someone"} joined: connecting…`);
        armConnectTimer();
        break;
      case "peer-name":
        // The participant who was there first, in its own words (shown as text).
        if (msg.call_id !== st.callId || st.peerName) return;
        st.peerName = cleanDisplayName(msg.display_name);
        if (st.peerName) roomEvent(`${st.peerName} is here`);
        renderPeople();
        break;
      case "room-knocking":
        // Again without a ref: the owner came in and is being asked now.
        if (st.phase === "knocking" && msg.knock === st.knock) showKnocking(msg.owner_present);
        break;
      case "room-knock-ended":
        if (st.phase !== "knocking" || msg.knock !== st.knock) return;
        if (msg.reason === "admitted") {
          status("The owner let you in: joining…");
        } else {
          st.inRoom = false; // the server took us out of the lobby
          st.knockEnd = msg.reason;
          endCall(msg.reason, "knock");
        }
        break;
      case "room-joined":
        // Admitted: the server joined us (no ref); the pairing follows as for any join.
        if (st.phase === "knocking" && st.knockWait && msg.room && msg.room.token === TOKEN) {
          const wait = st.knockWait;
          st.knockWait = null;
          wait.resolve(msg);
        }
        break;
      case "offer":
        // One offer per call: a second one would restart the check code's exchange.
        if (msg.call_id === st.callId && !st.pc) answerOffer(msg.sdp).catch(onUnexpected);
        break;
      case "answer":
        if (msg.call_id === st.callId && st.pc && st.pc.signalingState === "have-local-offer") {
          st.remoteSdp = msg.sdp;
          takeAnswer(msg.sdp);
          st.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp }).catch(onUnexpected);
        }
        break;
      case "sas-reveal":
        if (msg.call_id === st.callId) takeReveal(msg.nonce).catch(onUnexpected);
        break;
      case "renew-offer":
        if (msg.call_id === st.callId && st.phase === "connected") {
          answerRenewal(msg).catch((e) => console.warn("cannot answer the renewal", e));
        }
        break;
      case "renew-answer":
        if (msg.call_id === st.callId) takeRenewAnswer(msg).catch(onUnexpected);
        break;
      case "peer-left":
        if (msg.call_id !== st.callId) return;
        roomEvent(`${peerLabel()} left`);
        leaveRoom();
        endCall(msg.reason, "remote");
        break;
      case "reconnect":
        onServerLost();
        break;
      default:
        break;
    }
  }

  function onServerLost() {
    if (st.phase === "connected" && st.inRoom && st.seat) {
      // The media is the peers' own: the call goes on while we reconnect and
      // take our seat back (the server keeps it a while), as the terminal does.
      reconnectServer().catch(onUnexpected);
      return;
    }
    if (["connecting", "connected", "waiting", "knocking"].includes(st.phase)) {
      if (st.wasConnected) endCall("unreachable", "network");
      else fail("unreachable");
    }
  }

  async function reconnectServer() {
    if (st.serverGone) return;
    st.serverGone = true;
    closeWs();
    for (const [, p] of st.pending) {
      clearTimeout(p.timer);
      p.reject(Object.assign(new Error("connection closed"), { code: "unreachable" }));
    }
    st.pending.clear();
    $("server-lost").hidden = false;
    for (let attempt = 0; st.phase === "connected"; attempt += 1) {
      const wait = Math.random() * Math.min(5000, 250 * 2 ** Math.min(attempt, 10));
      await new Promise((resolve) => { setTimeout(resolve, wait); });
      if (st.phase !== "connected") return;
      try {
        await connectWs();
        const seat = { type: "room-join", token: TOKEN, seat: st.seat };
        if (st.displayName) seat.display_name = st.displayName;
        const joined = await request(seat);
        if (joined.call_id !== st.callId) throw new Error("another call");
        st.reseats += 1;
      } catch (e) {
        if (e.code === "unreachable" || e.code === "timeout") {
          closeWs();
          continue; // not back yet
        }
        st.inRoom = false; // the seat is gone: the call goes on peer to peer only
      }
      st.serverGone = false;
      $("server-lost").hidden = true;
      return;
    }
  }

  async function probeServer() {
    // Audio stopped: is the server still there? A connection that went silently
    // dead (our address moved) is remade at once, not when TCP notices.
    if (st.probing || st.serverGone || !st.ws || !st.inRoom) return;
    st.probing = true;
    try {
      await request({ type: "room-list" }, 2000);
    } catch (e) {
      if (e.code === "timeout" && st.phase === "connected") reconnectServer().catch(onUnexpected);
    } finally {
      st.probing = false;
    }
  }

  function onUnexpected(e) {
    console.error(e);
    fail("error", String(e && e.message ? e.message : e));
  }

  // ------------------------------------------------------------ media and peer connection
  function micErrorKind(e) {
    const name = e && e.name;
    if (["NotAllowedError", "PermissionDeniedError", "SecurityError"].includes(name)) {
      return "mic-denied";
    }
    if (["NotFoundError", "DevicesNotFoundError", "OverconstrainedError", "NotReadableError",
      "TrackStartError"].includes(name)) return "mic-missing";
    return "error";
  }

  async function openMedia(wantCamera) {
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: true, video: wantCamera });
    } catch (e) {
      if (wantCamera && micErrorKind(e) === "mic-missing") {
        // No usable camera: carry on with the microphone alone.
        return navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      }
      throw e;
    }
  }

  // ------------------------------------------------------------ a shared terminal (share/)
  // A second pre-negotiated channel ("share", id 1, ordered), created with chat's.
  // Control frames are JSON (share-start/stop/grant/revoke/input/sync); screen
  // frames are binary: a kind byte, then zlib data ("deflate" to
  // DecompressionStream) of terminal bytes to feed on (1) or a whole screen to
  // load into a reset terminal (2). xterm.js (vendor/) is the VT emulator; the
  // page draws its buffer as text itself (its DOM renderer needs inline styles).
  // Read-only: keys go to the sharer only while it has granted control.
  const SHARE_LABEL = "share";
  const SHARE_ID = 1;
  const SHARE_BYTES = 1;
  const SHARE_SNAPSHOT = 2;
  const SHARE_MAX_FRAME = 128 * 1024; // on the wire (wire.py)
  const SHARE_MAX_SCREEN = 256 * 1024; // inflated
  const SHARE_MAX_COLS = 400;
  const SHARE_MAX_ROWS = 200;
  const SHARE_MAX_INPUT = 4096;
  const SHARE_MAX_TITLE = 120;

  function newShare() {
    return {
      channel: null,
      active: false,
      cols: 0,
      rows: 0,
      title: "",
      granted: false,
      term: null,
      queue: Promise.resolve(), // screen frames are applied in order
      drawPending: false,
      pending: 0, // frames inflating or being written
      behind: false, // skipping byte frames until a snapshot
      skipped: 0,
      syncAt: -Infinity,
      syncTimer: null,
      broken: false, // a frame was lost: the next snapshot mends it
      frames: 0,
      snapshots: 0,
      dropped: 0,
      inputSent: 0,
      keysRefused: 0,
      paused: false, // the view stays as it was; frames are still written underneath
      back: 0, // lines scrolled back into xterm's scroll-back (0: the live screen)
      lastBase: 0, // the buffer's baseY at the last draw: new lines keep the view in place
    };
  }
  st.share = newShare();

  function attachShareChannel(pc) {
    const channel = pc.createDataChannel(SHARE_LABEL, { negotiated: true, id: SHARE_ID,
      ordered: true });
    channel.binaryType = "arraybuffer";
    st.share.channel = channel;
    channel.onmessage = (ev) => {
      if (st.share.channel === channel) receiveShare(ev.data);
    };
    channel.onclose = () => {
      if (st.share.channel === channel) shareStopped();
    };
  }

  function shareFrameError(why) {
    st.share.dropped += 1;
    $("share-notice").textContent = `A screen update was dropped (${why}).`;
    $("share-notice").hidden = false;
  }

  function receiveShare(data) {
    if (typeof data !== "string") {
      receiveScreen(data);
      return;
    }
    let obj;
    try {
      if (data.length > SHARE_MAX_INPUT * 8) throw new Error("too large");
      obj = JSON.parse(data);
    } catch (e) {
      shareFrameError("not JSON");
      return;
    }
    if (!obj || typeof obj !== "object" || obj.v !== 1) {
      shareFrameError("not a version-1 frame");
      return;
    }
    const okSize = (n, top) => Number.isInteger(n) && n >= 1 && n <= top;
    if (obj.type === "share-start") {
      const title = obj.title === undefined ? "" : obj.title;
      if (!okSize(obj.cols, SHARE_MAX_COLS) || !okSize(obj.rows, SHARE_MAX_ROWS)
        || typeof title !== "string") {
        shareFrameError("bad share-start");
        return;
      }
      shareStarted(obj.cols, obj.rows, [...title].slice(0, SHARE_MAX_TITLE).join(""));
    } else if (obj.type === "share-stop") {
      shareStopped();
    } else if (obj.type === "share-grant" || obj.type === "share-revoke") {
      st.share.granted = obj.type === "share-grant" && st.share.active;
      renderShareControl();
    }
    // Other types (input, sync: the sharer's to receive) are ignored.
  }

  function shareStarted(cols, rows, title) {
    const share = st.share;
    if (share.term) share.term.dispose();
    share.active = true;
    share.granted = false;
    share.cols = cols;
    share.rows = rows;
    share.title = title;
    // Not opened: no DOM of its own, only the emulator and its buffer.
    share.term = new window.Terminal({ cols, rows, scrollback: 1000, allowProposedApi: false });
    share.queue = Promise.resolve();
    share.pending = 0;
    share.behind = false;
    share.broken = false;
    share.paused = false;
    share.back = 0;
    share.lastBase = 0;
    renderShareScroll();
    $("share-title").textContent = title
      ? `${peerLabel()} shares: ${title} (${cols}×${rows})`
      : `${peerLabel()} shares a terminal (${cols}×${rows})`;
    $("share-notice").hidden = true;
    $("share-screen").replaceChildren();
    $("share").hidden = false;
    renderShareControl();
    drawShare();
  }

  function shareStopped() {
    const share = st.share;
    if (!share.active) return;
    share.active = false;
    share.granted = false;
    renderShareControl();
    $("share").hidden = true;
  }

  function renderShareControl() {
    const granted = st.share.granted && st.share.active;
    $("share-control").textContent = granted
      ? "You have control: your keys go to their terminal (click it first)."
      : "View only.";
    $("share-screen").classList.toggle("granted", granted);
  }

  async function inflate(bytes) {
    // zlib data (RFC 1950) → bytes, at most SHARE_MAX_SCREEN of them (a zip bomb stops).
    const reader = new Blob([bytes]).stream()
      .pipeThrough(new DecompressionStream("deflate")).getReader();
    const parts = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > SHARE_MAX_SCREEN) {
        reader.cancel().catch(() => {});
        throw new Error("too large once inflated");
      }
      parts.push(value);
    }
    return concat(...parts);
  }

  function receiveScreen(data) {
    const share = st.share;
    const frame = new Uint8Array(data);
    if (!share.active || !share.term) return; // no share announced: nothing to draw on
    if (frame.length < 2 || frame.length > SHARE_MAX_FRAME) {
      shareFrameError("size out of bounds");
      return;
    }
    const kind = frame[0];
    if (kind !== SHARE_BYTES && kind !== SHARE_SNAPSHOT) {
      shareFrameError("unknown kind");
      return;
    }
    // Behind (a flood, a slow machine): skip byte frames and ask for the screen
    // as it is now, once a second at most; a snapshot replaces whatever was lost.
    if (kind === SHARE_BYTES && (share.behind || share.pending >= cfg.shareMaxPending)) {
      share.behind = true;
      share.skipped += 1;
      askSync();
      return;
    }
    if (kind === SHARE_SNAPSHOT) {
      share.behind = false;
      share.broken = false;
    }
    const term = share.term;
    const inflating = inflate(frame.subarray(1));
    share.pending += 1;
    share.queue = share.queue.then(async () => {
      try {
        let bytes;
        try {
          bytes = await inflating;
        } catch (e) {
          shareFrameError(e.message || "does not inflate");
          if (term === share.term) {
            share.broken = true; // the screen missed a part: ask for it whole
            askSync();
          }
          return;
        }
        if (term !== share.term) return;
        if (kind === SHARE_SNAPSHOT) {
          term.reset();
          share.snapshots += 1;
        }
        await new Promise((resolve) => term.write(bytes, resolve));
        share.frames += 1;
        scheduleDraw();
      } finally {
        if (term === share.term) share.pending -= 1;
      }
    });
  }

  function askSync() {
    // share-sync, at most once a second (the sharer rate-limits it too): later
    // rather than never, or a page that fell behind at the end of a flood
    // would stay on an old screen while the program idles.
    const share = st.share;
    const wait = share.syncAt + 1000 - performance.now();
    if (share.syncTimer) return;
    share.syncTimer = setTimeout(() => {
      share.syncTimer = null;
      if (share !== st.share || !share.active || !share.behind && !share.broken) return;
      if (!share.channel || share.channel.readyState !== "open") return;
      share.syncAt = performance.now();
      share.broken = false;
      share.channel.send(JSON.stringify({ v: 1, type: "share-sync" }));
    }, Math.max(0, wait));
  }

  function scheduleDraw() {
    if (st.share.drawPending) return;
    st.share.drawPending = true;
    requestAnimationFrame(() => {
      st.share.drawPending = false;
      drawShare();
    });
  }

  function shareLines() {
    // The visible screen, one string a row (trailing blanks trimmed).
    const term = st.share.term;
    if (!term) return [];
    const buf = term.buffer.active;
    const lines = [];
    for (let y = 0; y < term.rows; y++) {
      const line = buf.getLine(buf.viewportY + y);
      lines.push(line ? line.translateToString(true) : "");
    }
    return lines;
  }

  function cellClass(cell, cursor) {
    // Classes only (hello.css): the CSP allows no style attributes. The 16
    // basic colours, bold, underline, inverse; other colours show as default.
    let fg = cell.isFgPalette() && cell.getFgColor() < 16 ? cell.getFgColor() : -1;
    let bg = cell.isBgPalette() && cell.getBgColor() < 16 ? cell.getBgColor() : -1;
    if (cell.isBold() && fg >= 0 && fg < 8) fg += 8;
    const names = [];
    if (cell.isInverse() !== 0 ? !cursor : cursor) {
      names.push(`f${bg < 0 ? "bg" : bg}`, `b${fg < 0 ? "fg" : fg}`);
    } else {
      if (fg >= 0) names.push(`f${fg}`);
      if (bg >= 0) names.push(`b${bg}`);
    }
    if (cell.isBold()) names.push("bold");
    if (cell.isUnderline()) names.push("ul");
    return names.join(" ");
  }

  function scrollShare(lines) {
    // Into xterm's scroll-back (positive) or towards the live screen; 0 lines back
    // and not paused is live. Scrolled back, the view keeps its lines as new ones come.
    const share = st.share;
    if (!share.term) return;
    const base = share.term.buffer.active.baseY;
    if (share.back > 0) share.back += base - share.lastBase;
    share.lastBase = base;
    share.back = Math.max(0, Math.min(base, share.back + lines));
    drawShare(true);
  }

  function pauseShare(paused) {
    st.share.paused = paused;
    drawShare(true);
  }

  function liveShare() {
    st.share.paused = false;
    st.share.back = 0;
    drawShare(true);
  }

  function renderShareScroll() {
    const share = st.share;
    const parts = [];
    if (share.paused) parts.push("Paused.");
    if (share.back > 0) parts.push(`Scrolled back ${share.back} lines.`);
    $("share-scroll").textContent = parts.join(" ");
    $("share-pause").textContent = share.paused ? "Resume" : "Pause";
    $("share-pause").setAttribute("aria-pressed", String(share.paused));
    $("share-live").hidden = !share.paused && share.back === 0;
  }

  function sharePage() {
    return st.share.term ? Math.max(1, st.share.term.rows - 1) : 1;
  }

  function drawShare(force) {
    // Spans with textContent and classes: what the sharer's program prints stays
    // text, its colours are classes. One span a run of cells alike.
    const share = st.share;
    const term = share.term;
    const screen = $("share-screen");
    renderShareScroll();
    if (!term) {
      screen.replaceChildren();
      return;
    }
    if (share.paused && !force) return; // frozen: frames go on into xterm underneath
    const buf = term.buffer.active;
    if (share.back > 0) {
      share.back = Math.max(0, Math.min(buf.baseY, share.back + buf.baseY - share.lastBase));
    }
    share.lastBase = buf.baseY;
    const top = buf.baseY - share.back;
    const cell = buf.getNullCell();
    const rows = [];
    for (let y = 0; y < term.rows; y++) {
      const line = buf.getLine(top + y);
      const row = document.createElement("span");
      row.className = "row";
      let run = "";
      let runClass = "";
      const flush = () => {
        if (!run) return;
        const span = document.createElement("span");
        if (runClass) span.className = runClass;
        span.textContent = run;
        row.append(span);
        run = "";
      };
      for (let x = 0; line && x < term.cols; x++) {
        line.getCell(x, cell);
        if (cell.getWidth() === 0) continue; // the right half of a wide character
        const cursor = y === buf.cursorY && x === buf.cursorX && share.back === 0;
        const cls = cellClass(cell, cursor);
        if (cls !== runClass) {
          flush();
          runClass = cls;
        }
        run += cell.getChars() || " ";
      }
      flush();
      rows.push(row, "\n");
    }
    rows.pop();
    screen.replaceChildren(...rows);
  }

  // Keys → what a terminal sends for them (xterm's defaults, normal cursor mode).
  const SHARE_KEYS = {
    Enter: "\r", Backspace: "\x7f", Tab: "\t", Escape: "\x1b",
    ArrowUp: "\x1b[A", ArrowDown: "\x1b[B", ArrowRight: "\x1b[C", ArrowLeft: "\x1b[D",
    Home: "\x1b[H", End: "\x1b[F", Delete: "\x1b[3~", PageUp: "\x1b[5~", PageDown: "\x1b[6~",
  };

  function keyData(ev) {
    if (ev.metaKey) return null;
    if (ev.ctrlKey && !ev.altKey && ev.key.length === 1) {
      const c = ev.key.toUpperCase().charCodeAt(0);
      if (c >= 64 && c <= 95) return String.fromCharCode(c - 64);
      return null;
    }
    const term = st.share.term;
    if (/^Arrow/.test(ev.key) && term && term.modes.applicationCursorKeysMode) {
      return SHARE_KEYS[ev.key].replace("[", "O"); // what vim, less, htop ask for
    }
    if (SHARE_KEYS[ev.key]) return SHARE_KEYS[ev.key];
    if ([...ev.key].length === 1 && !ev.ctrlKey) return (ev.altKey ? "\x1b" : "") + ev.key;
    return null;
  }

  function shareScrollKey(ev) {
    // Lines to scroll (Infinity: to the top, -Infinity: live), or 0 for a key that is
    // not a scroll key here. Shift+PageUp/PageDown always scroll the view; while
    // view-only (nothing would be sent) PageUp/PageDown, Home and End do too.
    if (ev.ctrlKey || ev.altKey || ev.metaKey) return 0;
    const local = ev.shiftKey || !st.share.granted;
    if (!local) return 0;
    if (ev.key === "PageUp") return sharePage();
    if (ev.key === "PageDown") return -sharePage();
    if (!ev.shiftKey && ev.key === "Home") return Infinity;
    if (!ev.shiftKey && ev.key === "End") return -Infinity;
    return 0;
  }

  function onShareKey(ev) {
    const lines = shareScrollKey(ev);
    if (lines) {
      ev.preventDefault();
      if (lines === -Infinity) liveShare();
      else scrollShare(lines === Infinity ? 1e9 : lines);
      return;
    }
    const data = keyData(ev);
    if (data === null) return;
    // Only a sent key is taken from the browser: view-only, Tab still moves on.
    if (sendShareInput(data)) ev.preventDefault();
  }

  function sendShareInput(data) {
    // Only while granted, and the sharer checks again: it drops input it did not allow.
    const share = st.share;
    if (!share.active || !share.granted || !share.channel
      || share.channel.readyState !== "open") {
      share.keysRefused += 1;
      return false;
    }
    const text = String(data).slice(0, SHARE_MAX_INPUT);
    if (!text) return false;
    share.channel.send(JSON.stringify({ v: 1, type: "share-input", data: text }));
    share.inputSent += 1;
    return true;
  }

  function closeShare() {
    shareStopped();
    if (st.share.term) st.share.term.dispose();
    st.share = newShare();
  }

  function ensureAudioContext() {
    if (st.audioCtx || !window.AudioContext) return;
    st.audioCtx = new AudioContext();
    st.analyser = st.audioCtx.createAnalyser();
    st.analyser.fftSize = 8192;
    st.analyser.smoothingTimeConstant = 0.3;
  }

  function makePc(withChat) {
    // Only the server's ICE servers (TURN credentials), or none: never a public default.
    const iceServers = st.ice.map((s) => ({
      urls: s.urls,
      ...(s.username ? { username: s.username } : {}),
      ...(s.credential ? { credential: s.credential } : {}),
    }));
    const certificates = st.cert ? [st.cert] : undefined; // the same for every connection
    const pc = new RTCPeerConnection(certificates ? { iceServers, certificates } : { iceServers });
    for (const track of st.stream.getTracks()) pc.addTrack(track, st.stream);
    // Offering: the chat channel goes into the first (and only) offer.
    if (withChat) {
      attachChannel(pc);
      attachShareChannel(pc);
    }
    pc.ontrack = (ev) => onRemoteTrack(ev);
    pc.onconnectionstatechange = () => {
      if (pc !== st.pc) return;
      if (pc.connectionState === "connected") {
        (st.phase === "connected" ? onRenewed(pc) : onConnected(pc)).catch(onUnexpected);
      } else if (pc.connectionState === "failed") {
        connectionFailed(); // before connecting; after, the media watch decides
      }
    };
    return pc;
  }

  function closePc() {
    if (st.pc) st.pc.close();
    st.pc = null;
    st.livePc = null;
    if (st.renew) for (const old of st.renew.old) old.close();
    st.chat.channel = null;
    st.share.channel = null;
  }

  function gatheringComplete(pc) {
    // aiortc peers do not trickle: the SDP must carry every candidate.
    return new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      const timer = setTimeout(resolve, cfg.gatherTimeoutMs);
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  async function localSdp(pc, kind) {
    const desc = kind === "offer" ? await pc.createOffer() : await pc.createAnswer();
    await pc.setLocalDescription(desc);
    await gatheringComplete(pc);
    return pc.localDescription.sdp;
  }

  function onRemoteTrack(ev) {
    const stream = ev.streams[0] || new MediaStream([ev.track]);
    if (ev.track.kind === "video") {
      $("remote-video").srcObject = stream;
      $("remote-video").hidden = false;
      return;
    }
    const audio = $("remote-audio");
    audio.srcObject = stream; // also needed for WebAudio to see remote audio in Chromium
    audio.play().catch(() => {});
    if (st.audioCtx && st.analyser) {
      st.audioCtx.createMediaStreamSource(stream).connect(st.analyser);
    }
  }

  async function answerOffer(sdp) {
    closePc();
    st.offerer = false;
    st.pc = makePc();
    st.remoteSdp = sdp;
    await st.pc.setRemoteDescription({ type: "offer", sdp });
    // Answering: the same negotiated channel, only if the offer carries one.
    if (/^m=application /m.test(sdp)) {
      attachChannel(st.pc);
      attachShareChannel(st.pc);
    }
    renderChatControls();
    const answer = stampAnswer(sdp, await localSdp(st.pc, "answer"));
    await request({ type: "answer", call_id: st.callId, sdp: answer });
  }

  function armConnectTimer() {
    clearTimeout(st.connectTimer);
    st.connectTimer = setTimeout(connectionFailed, cfg.connectTimeoutMs);
  }

  function connectionFailed() {
    if (st.phase === "connected" || st.phase === "ended" || st.phase === "error") return;
    leaveRoom();
    fail("connection-failed");
  }

  function hexFingerprint(bytes) {
    const hex = [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0"));
    return `sha-256 ${hex.join(":").toUpperCase()}`;
  }

  async function dtlsFingerprints(pc) {
    // The certificates DTLS actually used (getStats), hashed with SHA-256 like
    // sas.py reads them from the SDP. Not pc.remoteDescription: Chromium keeps
    // only one of the peer's fingerprints (aiortc announces sha-256, -384 and
    // -512), and the one it verifies need not be the sha-256 one.
    const report = await pc.getStats();
    let transport = null;
    report.forEach((s) => {
      if (s.type === "transport" && s.remoteCertificateId) transport = s;
    });
    const local = transport && report.get(transport.localCertificateId);
    const remote = transport && report.get(transport.remoteCertificateId);
    if (local && remote && local.base64Certificate && remote.base64Certificate) {
      const hash = (c) => crypto.subtle.digest("SHA-256", b64urlDecode(c.base64Certificate));
      return [hexFingerprint(await hash(local)), hexFingerprint(await hash(remote))];
    }
    // Browsers without certificate stats: the SDP as it was signalled.
    return [fingerprintFromSdp(pc.localDescription.sdp), fingerprintFromSdp(st.remoteSdp)];
  }

  async function onConnected(pc) {
    if (st.phase === "connected") return;
    clearTimeout(st.connectTimer);
    setPhase("connected");
    st.wasConnected = true;
    st.livePc = pc;
    st.watch = newWatch();
    renderCheckCode();
    try {
      st.fingerprints = await dtlsFingerprints(pc);
    } catch (e) {
      st.fingerprints = false;
    }
    await settleCheckCode();
    renderPeople();
    show("s-call");
    $("chat").hidden = false;
    renderChatControls();
    if (!st.chat.channel) chatNotice("No chat in this call: the other side's app does not offer it.");
    st.lastStats = null;
    st.statsTimer = setInterval(() => sampleStats().catch(() => {}), 1000);
    st.watchTimer = setInterval(() => watchMedia().catch(() => {}), 500);
  }

  // ------------------------------------------------------------ a call that recovers
  // The media watch (call/media_watch.py) and a new transport within the call
  // (call/renewal.py, docs/calls.md): a new RTCPeerConnection negotiated with
  // renew-offer / renew-answer, since the terminal side (aiortc) cannot restart
  // ICE. It gets our tracks, the chat and share channels (same negotiated ids)
  // and our DTLS certificate (so the check code can stay); the old connection
  // carries the call until the new one connects, then closes.
  function newWatch() {
    return { pc: null, received: 0, lastAt: performance.now(), longestMs: 0 };
  }

  function newRenewal() {
    return { round: 0, active: false, startedAt: 0, mine: null, answered: null, old: [],
      count: 0, fpBefore: null };
  }

  async function watchMedia() {
    const pc = st.livePc;
    const w = st.watch;
    if (!pc || !w || st.phase !== "connected") return;
    const report = await pc.getStats();
    let received = 0;
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") received = s.packetsReceived || 0;
    });
    if (st.phase !== "connected" || st.watch !== w) return;
    const now = performance.now();
    if (w.pc !== pc) {
      w.pc = pc;
      w.received = 0;
    }
    if (received > w.received) {
      w.received = received;
      w.longestMs = Math.max(w.longestMs, now - w.lastAt);
      w.lastAt = now;
      // A round that never connected while the old path carried on is over, too.
      const stale = now - st.renew.startedAt > cfg.renewLostMs;
      if (st.reconnecting && (!st.renew.active || stale)) showReconnecting(false);
      return;
    }
    const quiet = now - w.lastAt;
    if (quiet >= cfg.stallMs) {
      showReconnecting(true);
      probeServer().catch(() => {});
    }
    if (quiet >= cfg.renewAfterMs && st.offerer) offerRenewal().catch(onUnexpected);
    if (quiet >= (st.renew.active ? cfg.renewLostMs : cfg.lostMs)) mediaLost();
  }

  function showReconnecting(on) {
    if (st.reconnecting === on) return;
    st.reconnecting = on;
    if (on) st.reconnects += 1;
    $("reconnecting").hidden = !on;
    renderPeople();
  }

  function mediaLost() {
    // Nothing came back in time: the other side hears why (room-leave media-fail).
    leaveRoom("media-fail");
    endCall("media-fail", "network");
  }

  function beginRenewal(pc) {
    // ``pc`` becomes the call's connection; the ones it replaces close once it connects.
    const r = st.renew;
    if (!r.active) {
      st.sasBefore = st.sas;
      r.fpBefore = st.fingerprints;
    }
    r.active = true;
    r.startedAt = performance.now();
    if (st.pc) r.old.push(st.pc);
    st.pc = pc;
    showReconnecting(true);
  }

  async function offerRenewal() {
    // The call's offerer renews when the audio stops (one round at a time).
    const r = st.renew;
    const stale = r.active && performance.now() - r.startedAt > cfg.renewLostMs;
    if ((r.active && !stale) || !st.inRoom) return; // no server to carry it: the watch decides
    r.round += 1;
    const round = r.round;
    const pc = makePc(true);
    beginRenewal(pc);
    const mine = { round, pc };
    r.mine = mine;
    const sdp = await stampOffer(await localSdp(pc, "offer"));
    while (r.mine === mine && st.pc === pc && pc.signalingState === "have-local-offer"
      && st.phase === "connected") {
      if (!st.inRoom) return; // the server forgot us: the media watch decides
      try {
        if (!st.serverGone) await request({ type: "renew-offer", call_id: st.callId, round, sdp });
      } catch (e) {
        if (!["unreachable", "timeout"].includes(e.code)) return; // refused: the watch ends it
      }
      await new Promise((resolve) => { setTimeout(resolve, cfg.resendMs); });
    }
  }

  async function takeRenewAnswer(msg) {
    const mine = st.renew.mine;
    if (!mine || mine.round !== msg.round || st.pc !== mine.pc) return;
    if (mine.pc.signalingState !== "have-local-offer") return;
    st.remoteSdp = msg.sdp;
    takeAnswer(msg.sdp);
    await mine.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
  }

  async function answerRenewal(msg) {
    // Each round is answered (again, with the same answer, if it is sent again);
    // two rounds crossing: the call's offerer keeps its own.
    const r = st.renew;
    let sdp = r.answered && r.answered.round === msg.round ? r.answered.sdp : null;
    if (!sdp) {
      if ((r.mine && st.offerer) || msg.round < r.round) return;
      const pc = makePc();
      try {
        await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
      } catch (e) {
        pc.close(); // an offer we cannot take changes nothing
        throw e;
      }
      if (st.phase !== "connected") {
        pc.close();
        return;
      }
      r.mine = null;
      r.round = msg.round;
      beginRenewal(pc);
      st.remoteSdp = msg.sdp;
      if (/^m=application /m.test(msg.sdp)) {
        attachChannel(pc);
        attachShareChannel(pc);
      }
      sdp = stampAnswer(msg.sdp, await localSdp(pc, "answer"));
      r.answered = { round: msg.round, sdp };
    }
    const reply = { type: "renew-answer", call_id: st.callId, round: msg.round, sdp };
    await request(reply).catch(() => {}); // lost: the offerer sends the round again
  }

  async function onRenewed(pc) {
    // The new connection is up: the old ones go, the check code is settled again.
    const r = st.renew;
    if (!r.active) return;
    r.active = false;
    r.mine = null;
    r.count += 1;
    for (const old of r.old) old.close();
    r.old = [];
    st.livePc = pc;
    st.lastStats = null;
    let fps;
    try {
      fps = await dtlsFingerprints(pc);
    } catch (e) {
      fps = false;
    }
    st.fingerprints = fps;
    const before = r.fpBefore;
    const same = fps && before && fps.length === 2 && fps.every((f) => before.includes(f));
    if (st.sasStatus !== "mismatch" && same && st.sasBefore) {
      // The same certificates, checked again by DTLS: the code shown before holds.
      Object.assign(st, { sas: st.sasBefore, sasStatus: "verified", sasShown: true,
        codeChanged: false });
      renderCheckCode();
    } else {
      await settleCheckCode();
    }
    renderChatControls();
  }

  // ------------------------------------------------------------ quality (getStats)
  async function sampleStats() {
    const pc = st.livePc || st.pc; // the connection carrying the call
    if (!pc) return;
    const report = await pc.getStats();
    let transport = null;
    let pair = null;
    let inbound = null;
    let outbound = null;
    let remoteInbound = null;
    report.forEach((s) => {
      if (s.type === "transport") transport = s;
      else if (s.type === "inbound-rtp" && s.kind === "audio") inbound = s;
      else if (s.type === "outbound-rtp" && s.kind === "audio") outbound = s;
      else if (s.type === "remote-inbound-rtp" && s.kind === "audio") remoteInbound = s;
    });
    if (transport && transport.selectedCandidatePairId) {
      pair = report.get(transport.selectedCandidatePairId);
    }
    if (!pair) {
      report.forEach((s) => {
        if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
      });
    }
    const now = {
      t: performance.now(),
      lost: inbound ? inbound.packetsLost || 0 : 0,
      received: inbound ? inbound.packetsReceived || 0 : 0,
      bytesIn: inbound ? inbound.bytesReceived || 0 : 0,
      bytesOut: outbound ? outbound.bytesSent || 0 : 0,
    };
    const prev = st.lastStats;
    st.lastStats = now;
    let rtt = pair && pair.currentRoundTripTime != null ? pair.currentRoundTripTime : null;
    if (rtt == null && remoteInbound && remoteInbound.roundTripTime != null) {
      rtt = remoteInbound.roundTripTime;
    }
    const q = {
      rttMs: rtt == null ? null : rtt * 1000,
      jitterMs: inbound && inbound.jitter != null ? inbound.jitter * 1000 : null,
      lossPct: null,
      inKbps: null,
      outKbps: null,
      packetsReceived: now.received,
      audioLevel: inbound && inbound.audioLevel != null ? inbound.audioLevel : null,
    };
    if (prev) {
      const dt = now.t - prev.t; // ms: bits per ms = kbit/s
      const lost = Math.max(0, now.lost - prev.lost);
      const got = Math.max(0, now.received - prev.received);
      q.lossPct = lost + got ? (100 * lost) / (lost + got) : 0;
      q.inKbps = dt > 0 ? ((now.bytesIn - prev.bytesIn) * 8) / dt : null;
      q.outKbps = dt > 0 ? ((now.bytesOut - prev.bytesOut) * 8) / dt : null;
    }
    st.quality = q;
    const f = (v, digits, unit) => (v == null ? "–" : `${v.toFixed(digits)}${unit}`);
    $("quality").textContent = `RTT ${f(q.rttMs, 0, " ms")} · jitter ${f(q.jitterMs, 0, " ms")} · `
      + `loss ${f(q.lossPct, 1, " %")} · in ${f(q.inKbps, 0, " kbps")} · `
      + `out ${f(q.outKbps, 0, " kbps")}`;
  }

  // ------------------------------------------------------------ the call
  function renderPeople() {
    const list = $("people");
    list.replaceChildren();
    const me = document.createElement("li");
    me.textContent = `${st.displayName || "You"} (you, in this browser)${st.muted ? " · muted" : ""}`;
    list.append(me);
    const other = document.createElement("li");
    const state = st.phase !== "connected" ? "connecting…"
      : st.reconnecting ? "reconnecting…" : "connected";
    other.textContent = `${peerLabel()} · ${state}`;
    list.append(other);
  }

  async function join() {
    ensureAudioContext(); // inside the click: browsers let it play
    if (st.audioCtx) st.audioCtx.resume().catch(() => {});
    st.displayName = cleanDisplayName($("display-name").value);
    if (st.displayName) rememberName(st.displayName);
    showNameForm(st.displayName);
    st.peerName = "";
    st.knock = null;
    st.knockWait = null;
    st.knockEnd = null;
    st.knockOwnerPresent = null;
    st.chat = newChat();
    $("chat-log").replaceChildren();
    $("chat-notice").hidden = true;
    $("chat").hidden = true;
    st.wasConnected = false;
    st.endReason = null;
    st.endBy = null;
    st.callId = null;
    sasReset(null);
    st.fingerprints = null;
    st.sasBefore = null;
    st.codeChanged = false;
    st.offerer = false;
    st.renew = newRenewal();
    st.watch = null;
    st.reconnecting = false;
    st.reconnects = 0;
    $("reconnecting").hidden = true;
    st.seat = b64urlEncode(crypto.getRandomValues(new Uint8Array(32)));
    st.serverGone = false;
    st.reseats = 0;
    $("server-lost").hidden = true;
    setPhase("joining");
    $("cancel").hidden = true;
    status("Asking for your microphone…");
    try {
      st.stream = await openMedia($("want-camera").checked);
    } catch (e) {
      fail(micErrorKind(e), e && e.message);
      return;
    }
    setupLocalControls();
    status("Connecting to the server…");
    try {
      await connectWs();
    } catch (e) {
      fail("unreachable");
      return;
    }
    status("Joining the conversation…");
    try {
      // A visitor has no account: the room's own short-lived relay credentials.
      if (!st.ice.length) {
        const relays = await request({ type: "room-turn", token: TOKEN });
        if (Array.isArray(relays.ice)) st.ice = relays.ice;
      }
    } catch (e) {
      // Rationed or refused: direct paths only.
    }
    try { // one certificate for every connection of this call (a renewal keeps the code)
      st.cert = await RTCPeerConnection.generateCertificate({ name: "ECDSA", namedCurve: "P-256" });
    } catch (e) {
      st.cert = null;
    }
    st.pc = makePc(true);
    const offer = await stampOffer(await localSdp(st.pc, "offer"));
    let joined;
    try {
      const join = { type: "room-join", token: TOKEN, offer, seat: st.seat };
      if (st.displayName) join.display_name = st.displayName;
      joined = await request(join);
    } catch (e) {
      const kinds = {
        "room-full": "full", "room-expired": "expired", "unknown-room": "unknown",
        unreachable: "unreachable", timeout: "unreachable",
      };
      fail(kinds[e.code] || "error", e.message);
      return;
    }
    st.inRoom = true;
    $("cancel").hidden = false;
    if (joined.type === "room-knocking") {
      // A knock-to-enter room: wait in its lobby (the server holds our offer).
      joined = await knock(joined);
      if (!joined) return; // not let in, or we left: endCall said so
    }
    if (!st.roomName && joined.room) showRoomName(joined.room.name);
    if (!st.context && joined.room && joined.room.context) showContext(joined.room.context);
    if (joined.call_id) {
      // Someone was there: our offer went to them; their answer follows.
      st.callId = joined.call_id;
      st.offerer = true;
      setPhase("connecting");
      status("Connecting to the other person…");
      armConnectTimer();
    } else {
      closePc(); // alone: the next one to join offers, we answer
      setPhase("waiting");
      status("You are the first one here. Waiting for the other person to join…");
    }
  }

  function showKnocking(ownerPresent) {
    st.knockOwnerPresent = Boolean(ownerPresent);
    status(ownerPresent
      ? "Knocking… waiting for the owner to let you in."
      : "Knocking… the owner is not here yet; they were told you are waiting.");
  }

  function knock(knocking) {
    st.knock = knocking.knock;
    setPhase("knocking");
    showKnocking(knocking.owner_present);
    $("cancel").hidden = false;
    return new Promise((resolve) => {
      st.knockWait = { resolve };
    });
  }

  function setupLocalControls() {
    st.muted = false;
    const video = st.stream.getVideoTracks()[0];
    st.cameraOn = Boolean(video);
    const cam = $("camera");
    cam.disabled = !video;
    cam.title = video ? "" : "Tick “Turn on my camera” before joining to use it";
    cam.textContent = st.cameraOn ? "Camera on" : "Camera off";
    cam.setAttribute("aria-pressed", String(st.cameraOn));
    $("mute").textContent = "Mute";
    $("mute").setAttribute("aria-pressed", "false");
    if (video) {
      $("local-video").srcObject = new MediaStream([video]);
      $("local-video").hidden = false;
    }
  }

  function toggleMute() {
    st.muted = !st.muted;
    for (const t of st.stream.getAudioTracks()) t.enabled = !st.muted; // sends silence
    $("mute").textContent = st.muted ? "Unmute" : "Mute";
    $("mute").setAttribute("aria-pressed", String(st.muted));
    renderPeople();
  }

  function toggleCamera() {
    const video = st.stream && st.stream.getVideoTracks()[0];
    if (!video) return;
    st.cameraOn = !st.cameraOn;
    video.enabled = st.cameraOn;
    $("camera").textContent = st.cameraOn ? "Camera on" : "Camera off";
    $("camera").setAttribute("aria-pressed", String(st.cameraOn));
  }

  function leaveRoom(reason) {
    // reason "media-fail": we leave because the media path is gone (the other side says so)
    if (!st.inRoom) return Promise.resolve();
    st.inRoom = false;
    const leave = { type: "room-leave", token: TOKEN };
    if (reason) leave.reason = reason;
    return request(leave).catch(() => {});
  }

  async function hangup() {
    const leaving = leaveRoom();
    endCall(st.wasConnected ? "hangup" : "cancel", "local");
    await leaving;
    closeWs();
  }

  function cleanup() {
    clearTimeout(st.connectTimer);
    if (st.knockWait) st.knockWait.resolve(null);
    st.knockWait = null;
    closeChat();
    closeShare();
    clearInterval(st.statsTimer);
    st.statsTimer = null;
    clearInterval(st.watchTimer);
    st.watchTimer = null;
    st.reconnecting = false;
    $("reconnecting").hidden = true;
    $("server-lost").hidden = true;
    closePc();
    if (st.stream) for (const t of st.stream.getTracks()) t.stop();
    st.stream = null;
    $("local-video").hidden = true;
    $("remote-video").hidden = true;
  }

  const ENDINGS = {
    "local:hangup": ["Call ended", "You hung up."],
    "local:cancel": ["You left", "You left before the call connected."],
    "remote:hangup": ["Call ended", "The other person hung up."],
    "remote:closed": ["Call ended", "The other person's connection dropped."],
    "remote:media-fail": ["Call cut off", "The other person lost the connection (network)."],
    "network:media-fail": ["Call cut off", "Lost the connection to the other person (network)."],
    "network:unreachable": ["Call ended", "The connection to the server was lost."],
    "knock:declined": ["Not let in", "The conversation's owner did not let you in."],
    "knock:timeout": ["Not let in", "Nobody let you in: the wait timed out."],
    "knock:closed": ["Not let in", "The conversation was closed while you were waiting."],
  };

  function endCall(reason, by) {
    if (st.phase === "ended" || st.phase === "error") return;
    cleanup();
    if (by !== "local") closeWs();
    st.endReason = reason;
    st.endBy = by;
    setPhase("ended");
    let [title, text] = ENDINGS[`${by}:${reason}`] || ["Call ended", `Reason: ${reason}.`];
    if (by === "remote" && st.peerName) text = text.replace("The other person", st.peerName);
    if (by === "network" && st.peerName) text = text.replace("the other person", st.peerName);
    $("ended-title").textContent = title;
    $("ended-text").textContent = text;
    $("feedback").hidden = !st.wasConnected;
    $("fb-reasons").hidden = true;
    $("feedback-done").hidden = true;
    show("s-ended");
  }

  // ------------------------------------------------------------ feedback (docs/telemetry.md)
  function osFamily() {
    const ua = navigator.userAgent.toLowerCase();
    const platform = ((navigator.userAgentData && navigator.userAgentData.platform)
      || navigator.platform || "").toLowerCase();
    if (ua.includes("android") || /iphone|ipad|ipod/.test(ua)) return "other";
    if (platform.includes("win")) return "windows";
    if (platform.includes("mac")) return "macos";
    if (platform.includes("bsd")) return "bsd";
    if (platform.includes("linux") || platform.includes("x11")) return "linux";
    return "other";
  }

  async function sendFeedback(rating, reasons) {
    $("feedback").hidden = true;
    const done = $("feedback-done");
    done.hidden = false;
    done.textContent = "Sending…";
    const report = {
      v: 1,
      rating,
      reasons,
      client_version: VERSION,
      os: osFamily(),
      hour: new Date().toISOString().slice(0, 13),
    };
    try {
      const resp = await fetch("/feedback", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(report),
        credentials: "omit",
        cache: "no-store",
        referrerPolicy: "no-referrer",
      });
      st.feedback = resp.ok ? "sent" : `refused ${resp.status}`;
      done.textContent = resp.ok ? "Thank you: your answer was sent." : "The server refused it.";
    } catch (e) {
      st.feedback = "failed";
      done.textContent = "It could not be sent (no connection to the server).";
    }
  }

  // ------------------------------------------------------------ start
  function wire() {
    $("join-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      join().catch(onUnexpected);
    });
    $("hangup").addEventListener("click", () => hangup().catch(onUnexpected));
    $("cancel").addEventListener("click", () => hangup().catch(onUnexpected));
    $("chat-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      submitChat();
    });
    $("change-name").addEventListener("click", () => {
      $("name-known").hidden = true;
      $("name-field").hidden = false;
      $("display-name").focus();
      $("display-name").select();
    });
    $("mute").addEventListener("click", toggleMute);
    $("share-screen").addEventListener("keydown", onShareKey);
    $("share-pause").addEventListener("click", () => pauseShare(!st.share.paused));
    $("share-back").addEventListener("click", () => scrollShare(sharePage()));
    $("share-forward").addEventListener("click", () => scrollShare(-sharePage()));
    $("share-live").addEventListener("click", liveShare);
    $("camera").addEventListener("click", toggleCamera);
    $("fb-happy").addEventListener("click", () => sendFeedback("happy", []));
    $("fb-sad").addEventListener("click", () => {
      $("fb-reasons").hidden = false;
    });
    $("fb-send").addEventListener("click", () => {
      const reasons = [...$("fb-reasons").querySelectorAll("input:checked")].map((i) => i.value);
      sendFeedback("sad", reasons);
    });
    $("fb-skip").addEventListener("click", () => {
      $("feedback").hidden = true;
      st.feedback = "skipped";
      $("feedback-done").hidden = false;
      $("feedback-done").textContent = "No feedback sent.";
    });
    const again = () => {
      st.errorKind = null;
      $("chat").hidden = true;
      setPhase("join");
      show("s-join");
    };
    $("rejoin").addEventListener("click", again);
    $("retry").addEventListener("click", again);
    window.addEventListener("pagehide", () => {
      // Closing the tab mid-call: tell the other side it was a hang-up.
      if (st.inRoom && st.ws && st.ws.readyState === WebSocket.OPEN) {
        st.ws.send(JSON.stringify({ type: "room-leave", token: TOKEN }));
      }
    });
  }

  function peakHz() {
    if (!st.analyser) return null;
    const data = new Float32Array(st.analyser.frequencyBinCount);
    st.analyser.getFloatFrequencyData(data);
    let best = 1;
    for (let i = 1; i < data.length; i++) if (data[i] > data[best]) best = i;
    return { hz: (best * st.audioCtx.sampleRate) / st.analyser.fftSize, db: data[best] };
  }

  // What the browser tests read (docs/browser.md); nothing here changes the call.
  window.__hello = {
    test: {
      phase: () => st.phase,
      errorKind: () => st.errorKind,
      roomName: () => st.roomName,
      sas: () => st.sas,
      sasStatus: () => st.sasStatus,
      quality: () => st.quality,
      peakHz,
      endReason: () => st.endReason,
      endBy: () => st.endBy,
      feedback: () => st.feedback,
      iceServers: () => (st.pc ? st.pc.getConfiguration().iceServers : null),
      fingerprints: () => st.fingerprints,
      fingerprintFromSdp,
      sasCode: (fpOffer, fpAnswer, nonceOffer, nonceAnswer) => sasCode(fpOffer, fpAnswer,
        b64urlDecode(nonceOffer), b64urlDecode(nonceAnswer)),
      commitment: async (nonce) => b64urlEncode(await commitment(b64urlDecode(nonce))),
      decryptName,
      decryptContext,
      cleanDisplayName,
      context: () => st.context,
      peerName: () => st.peerName,
      reconnecting: () => st.reconnecting,
      reconnects: () => st.reconnects,
      serverGone: () => st.serverGone,
      reseats: () => st.reseats,
      inRoom: () => st.inRoom,
      renewals: () => (st.renew ? st.renew.count : 0),
      codeChanged: () => st.codeChanged,
      longestGapMs: () => (st.watch ? st.watch.longestMs : null),
      displayName: () => st.displayName,
      knockOwnerPresent: () => st.knockOwnerPresent,
      knockEnd: () => st.knockEnd,
      chat: () => ({
        lines: st.chat.lines.map((l) => ({ ...l })),
        notices: [...st.chat.notices],
        open: chatOpen(),
        received: st.chat.received,
        dropped: st.chat.dropped,
        sent: st.chat.sent,
        ...channelInfo(st.chat.channel),
      }),
      sendChat,
      share: () => ({
        active: st.share.active,
        cols: st.share.cols,
        rows: st.share.rows,
        title: st.share.title,
        granted: st.share.granted,
        lines: shareLines(),
        shown: $("share-screen").textContent,
        paused: st.share.paused,
        back: st.share.back,
        scroll: $("share-scroll").textContent,
        frames: st.share.frames,
        snapshots: st.share.snapshots,
        skipped: st.share.skipped,
        dropped: st.share.dropped,
        inputSent: st.share.inputSent,
        keysRefused: st.share.keysRefused,
        ...channelInfo(st.share.channel),
      }),
      shareTerminal: () => st.share.term,
    },
  };

  async function start() {
    wire();
    if (!window.isSecureContext) {
      fail("insecure");
      return;
    }
    const hasWebRtc = window.RTCPeerConnection && navigator.mediaDevices
      && navigator.mediaDevices.getUserMedia && window.crypto && crypto.subtle
      && window.WebSocket;
    if (!hasWebRtc) {
      fail("no-webrtc");
      return;
    }
    const roomState = body.dataset.roomState;
    if (roomState === "expired" || roomState === "unknown") {
      fail(roomState);
      return;
    }
    await showRoomName(body.dataset.roomName || "");
    await showContext(body.dataset.roomContext || "");
    showNameForm(rememberedName());
    setPhase("join");
    show("s-join");
    if ($("name-field").hidden) $("join").focus();
    else $("display-name").focus();
  }

  start().catch(onUnexpected);
})();
