// The page's WebSocket: a fresh ticket for every connect, reconnects with backoff, views
// resumed from the last frame seen, and actions resent (same action_id) until answered.

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30000;
const SESSION_ENDED = 4001;

export function viewKey(board, view) {
  return `${board}/${view}`;
}

// crypto.randomUUID exists only in secure contexts; a page served over plain http from
// another host still needs version 4 UUIDs.
function newActionId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export class Live {
  // handlers: welcome(frame), board(frame), result(frame), error(frame, request),
  // status(state, text), ended(error)
  constructor(session, handlers) {
    this.session = session;
    this.on = handlers;
    this.socket = null;
    this.stopped = true;
    this.attempts = 0;
    this.timer = null;
    this.frameIds = 0;
    // Bumped by start and stop, so that a connect begun before a stop gives up.
    this.generation = 0;
    // viewKey -> {request: subscribe frame, seq, period} of every view the page follows.
    this.views = new Map();
    // action_id -> action frame, from sending until its result.
    this.pending = new Map();
    // frame id -> the frame, for matching error frames to what caused them.
    this.sent = new Map();
  }

  start() {
    this.stopped = false;
    this.attempts = 0;
    this.generation += 1;
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.generation += 1;
    clearTimeout(this.timer);
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, "signed out");
    this.views.clear();
    this.pending.clear();
    this.sent.clear();
  }

  async connect() {
    const generation = this.generation;
    this.on.status("connecting", "Connecting");
    let ticket;
    try {
      ticket = await this.session.ticket();
    } catch (error) {
      if (generation !== this.generation) return;
      if (error.sessionOver) {
        this.on.ended(error);
      } else {
        this.retry();
      }
      return;
    }
    if (generation !== this.generation) return;

    const url = new URL("/v1/ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("ticket", ticket);
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.addEventListener("message", (event) => this.receive(event.data));
    socket.addEventListener("close", (event) => this.closed(socket, event));
  }

  retry() {
    if (this.stopped) return;
    // Exponential backoff with jitter, so a restarted gateway is not hit by every page at once.
    const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempts);
    const delay = Math.round(ceiling * (0.5 + Math.random() / 2));
    this.attempts += 1;
    this.on.status("offline", `Reconnecting in ${Math.ceil(delay / 1000)} s`);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  closed(socket, event) {
    if (socket !== this.socket) return;
    this.socket = null;
    if (this.stopped) return;
    if (event.code === SESSION_ENDED) {
      this.on.ended({ code: "SESSION_ENDED", message: event.reason || "session ended" });
      return;
    }
    this.retry();
  }

  receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame.type === "welcome") {
      this.welcomed(frame);
    } else if (frame.type === "board") {
      const view = this.views.get(viewKey(frame.board, frame.view));
      if (!view) return;
      view.seq = frame.seq;
      view.period = frame.period;
      this.on.board(frame);
    } else if (frame.type === "result") {
      this.pending.delete(frame.action_id);
      this.sent.delete(frame.id);
      this.on.result(frame);
    } else if (frame.type === "error") {
      const request = this.sent.get(frame.id);
      this.sent.delete(frame.id);
      if (request?.type === "action") this.pending.delete(request.action_id);
      this.on.error(frame, request);
    }
  }

  welcomed(frame) {
    this.attempts = 0;
    this.on.status("live", "Live");
    this.on.welcome(frame);
    for (const view of this.views.values()) {
      const resume = view.seq === null ? {} : { seq: view.seq, period: view.period };
      this.send({ ...view.request, ...resume });
    }
    for (const action of this.pending.values()) this.send(action);
  }

  get connected() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  send(frame) {
    if (!this.connected) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  // Follow exactly these views (subscribe frames without type and id); others are left.
  watch(requests) {
    const wanted = new Map(requests.map((r) => [viewKey(r.board, r.view), r]));
    for (const [key, view] of this.views) {
      if (!wanted.has(key)) {
        this.views.delete(key);
        this.send({ type: "unsubscribe", board: view.request.board, view: view.request.view });
      }
    }
    for (const [key, fields] of wanted) {
      const request = { type: "subscribe", id: key, ...fields };
      this.views.set(key, { request, seq: null, period: null });
      this.sent.set(key, request);
      this.send(request);
    }
  }

  // Send an action now, or as soon as the socket is open; returns its action_id.
  act(action, params, stateHash) {
    this.frameIds += 1;
    const frame = {
      type: "action",
      id: this.frameIds,
      action_id: newActionId(),
      action,
      params,
      state_hash: stateHash,
      ts: Date.now(),
    };
    this.pending.set(frame.action_id, frame);
    this.sent.set(frame.id, frame);
    this.send(frame);
    return frame.action_id;
  }
}
