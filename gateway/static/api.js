// REST calls of the player protocol and the session's tokens.
//
// Tokens live in this tab's sessionStorage (so a reload keeps the player signed in) and in
// request headers; never in a URL, where they would reach logs and history.

const STORE_KEY = "podium.session";

// Codes after which the session cannot be saved by a refresh: the player signs in again.
const SESSION_OVER = new Set([
  "SESSION_ENDED",
  "MISSING_TOKEN",
  "INVALID_REFRESH_TOKEN",
  "REFRESH_TOKEN_REUSED",
]);

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  get sessionOver() {
    return SESSION_OVER.has(this.code);
  }
}

async function call(method, path, { body, token } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;

  let reply;
  try {
    reply = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "NETWORK", "the gateway could not be reached");
  }

  const text = await reply.text();
  let payload = {};
  try {
    payload = text ? JSON.parse(text) : {};
  } catch {
    payload = {};
  }
  if (!reply.ok) {
    const error = payload.error || {};
    throw new ApiError(reply.status, error.code || "HTTP_ERROR", error.message || "failed");
  }
  return payload;
}

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE_KEY));
  } catch {
    return null;
  }
}

export class Session {
  constructor() {
    this.tokens = load();
    this.refreshing = null;
  }

  get signedIn() {
    return Boolean(this.tokens);
  }

  get playerId() {
    return this.tokens?.player_id ?? "";
  }

  get username() {
    return this.tokens?.username ?? "";
  }

  async register(username, password) {
    await call("POST", "/v1/auth/register", { body: { username, password } });
  }

  async login(username, password) {
    const reply = await call("POST", "/v1/auth/login", { body: { username, password } });
    this.keep(reply, username);
    // The name as it was registered (names compare without case).
    const me = await this.authorized("GET", "/v1/me");
    this.keep(this.tokens, me.username);
  }

  async logout() {
    const token = this.tokens?.access_token;
    this.forget();
    if (token) {
      try {
        await call("POST", "/v1/auth/logout", { token });
      } catch {
        // The tokens are gone from this tab either way.
      }
    }
  }

  forget() {
    this.tokens = null;
    sessionStorage.removeItem(STORE_KEY);
  }

  keep(reply, username) {
    this.tokens = {
      access_token: reply.access_token,
      refresh_token: reply.refresh_token,
      player_id: reply.player_id,
      username,
    };
    sessionStorage.setItem(STORE_KEY, JSON.stringify(this.tokens));
  }

  // A call with the access token; an expired one is refreshed once and the call retried.
  async authorized(method, path) {
    if (!this.tokens) throw new ApiError(401, "MISSING_TOKEN", "not signed in");
    try {
      return await call(method, path, { token: this.tokens.access_token });
    } catch (error) {
      if (error.code !== "INVALID_TOKEN") throw error;
    }
    await this.refresh();
    return call(method, path, { token: this.tokens.access_token });
  }

  // Refresh tokens work once, so concurrent callers share a single refresh.
  refresh() {
    this.refreshing ??= this.refreshOnce().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  async refreshOnce() {
    const spent = this.tokens;
    try {
      const reply = await call("POST", "/v1/auth/refresh", {
        body: { refresh_token: spent.refresh_token },
      });
      this.keep(reply, spent.username);
    } catch (error) {
      if (error.sessionOver) this.forget();
      throw error;
    }
  }

  async ticket() {
    const reply = await this.authorized("POST", "/v1/auth/ticket");
    return reply.ticket;
  }

  async boards() {
    const reply = await call("GET", "/v1/boards");
    return reply.boards;
  }
}
