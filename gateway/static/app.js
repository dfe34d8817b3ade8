// The player page: sign in, watch one view of a board live, follow your own standing, play.

import { Session } from "./api.js";
import { Live } from "./live.js";
import { ranksOf, render, showMessage } from "./table.js";

const WATCH_KEY = "podium.watch";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_PLAYERS = 100;

const SIZES = {
  top: { label: "How many (1-100)", max: 100 },
  around: { label: "Rows around you (1-101)", max: 101 },
};

const $ = (id) => document.getElementById(id);

// Error messages of the protocol are lower-case phrases.
const sentence = (text) => text.charAt(0).toUpperCase() + text.slice(1);

const session = new Session();
const live = new Live(session, {
  welcome: onWelcome,
  board: onBoard,
  result: onResult,
  error: onFrameError,
  status: onConnection,
  ended: onSessionEnded,
});

// What the page shows now; reset whenever the player picks another view.
let boards = [];
let watching = null;
let shown = { ranks: null, period: null };
let standing = { rank: null, period: null, seen: false };
let player = null;
let signingIn = false;

function showSignedOut(message) {
  $("play-area").hidden = true;
  $("account").hidden = true;
  $("skip-link").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-message").textContent = message || "";
  $("password").value = "";
  $("username").focus();
}

async function showSignedIn() {
  $("sign-in").hidden = true;
  $("account").hidden = false;
  $("play-area").hidden = false;
  $("skip-link").hidden = false;
  $("account-name").textContent = session.username;
  $("sign-in-message").textContent = "";

  try {
    boards = await session.boards();
  } catch (error) {
    $("watch-message").textContent = `Boards could not be loaded: ${error.message}`;
    return;
  }
  fillBoards();
  live.start();
  const saved = savedWatch();
  if (saved) {
    $("board").value = saved.board;
    $("view").value = saved.view;
    $("size").value = saved.size;
    $("player-ids").value = saved.players.join("\n");
  }
  showViewFields();
  watch(readWatchForm() ?? { board: boards[0].id, view: "top", size: 10, players: [] });
}

function fillBoards() {
  const options = boards.map((board) => {
    const option = document.createElement("option");
    option.value = board.id;
    const resets = board.reset === "never" ? "all time" : `resets ${board.reset}`;
    option.textContent = `${board.id} (${resets})`;
    return option;
  });
  $("board").replaceChildren(...options);
}

async function onSignIn(event) {
  event.preventDefault();
  const register = event.submitter?.value === "register";
  const username = $("username").value.trim();
  const password = $("password").value;
  const message = $("sign-in-message");
  if (signingIn) return;
  if (!username || !password) {
    message.textContent = "Enter a username and a password.";
    return;
  }

  message.textContent = register ? "Registering..." : "Signing in...";
  signingIn = true;
  try {
    if (register) await session.register(username, password);
    await session.login(username, password);
  } catch (error) {
    message.textContent = `${sentence(error.message)} (${error.code})`;
    return;
  } finally {
    signingIn = false;
  }
  $("password").value = "";
  await showSignedIn();
  $("board").focus();
}

async function onSignOut() {
  live.stop();
  await session.logout();
  leave("Signed out.");
}

function onSessionEnded(error) {
  live.stop();
  session.forget();
  leave(`Your session has ended (${error.message}). Sign in again.`);
}

// Nothing of this player stays in the tab for the next one.
function leave(message) {
  watching = null;
  sessionStorage.removeItem(WATCH_KEY);
  resetPlayer();
  resetStanding();
  showSignedOut(message);
}

// Watching

function showViewFields() {
  const view = $("view").value;
  const size = SIZES[view];
  $("size-field").hidden = !size;
  $("players-field").hidden = view !== "players";
  if (size) {
    $("size-label").textContent = size.label;
    $("size").max = String(size.max);
  }
}

// The form as a view to watch, or null with the reason shown.
function readWatchForm() {
  const message = $("watch-message");
  const board = $("board").value;
  const view = $("view").value;
  const size = Number($("size").value);
  message.textContent = "";
  if (!board) return null;

  if (SIZES[view] && !(Number.isInteger(size) && size >= 1 && size <= SIZES[view].max)) {
    message.textContent = `${SIZES[view].label}: enter a whole number in that range.`;
    return null;
  }
  let players = [];
  if (view === "players") {
    players = [...new Set($("player-ids").value.split(/[\s,]+/).filter(Boolean))];
    const wrong = players.find((id) => !UUID.test(id));
    if (wrong) {
      message.textContent = `"${wrong}" is not a player id.`;
      return null;
    }
    if (!players.includes(session.playerId) && players.length < MAX_PLAYERS) {
      players.push(session.playerId);
    }
    if (players.length > MAX_PLAYERS) {
      message.textContent = `List at most ${MAX_PLAYERS} players.`;
      return null;
    }
  }
  return { board, view, size, players };
}

function onWatch(event) {
  event.preventDefault();
  const spec = readWatchForm();
  if (spec) watch(spec);
}

function watch(spec) {
  watching = spec;
  sessionStorage.setItem(WATCH_KEY, JSON.stringify(spec));
  shown = { ranks: null, period: null };
  resetStanding();
  $("board-caption").textContent = `${spec.board}: ${viewName(spec)}`;
  $("my-board").textContent = `On ${spec.board}.`;
  $("board-status").textContent = "Loading...";
  showMessage($("board-rows"), "Loading...");

  const main = { board: spec.board, view: spec.view };
  if (spec.view === "top") main.limit = spec.size;
  if (spec.view === "around") main.rows = spec.size;
  if (spec.view === "players") main.players = spec.players;
  const requests = [main];
  // Your own rank and score follow the board through a one-row around view.
  if (spec.view !== "around") requests.push({ board: spec.board, view: "around", rows: 1 });
  live.watch(requests);
}

function viewName(spec) {
  if (spec.view === "top") return `top ${spec.size}`;
  if (spec.view === "around") return `${spec.size} rows around you`;
  return `${spec.players.length} chosen players`;
}

function savedWatch() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(WATCH_KEY));
    const known = saved && boards.some((board) => board.id === saved.board);
    return known ? saved : null;
  } catch {
    return null;
  }
}

function onBoard(frame) {
  if (!watching || frame.board !== watching.board) return;
  if (frame.view === watching.view) showFrame(frame);
  if (frame.view === "around") showStanding(frame);
}

function showFrame(frame) {
  const previous = frame.period === shown.period ? shown.ranks : null;
  const empty = frame.view === "around" ? "Play to get on this board." : "No scores yet.";
  render($("board-rows"), frame, previous, session.playerId, empty);
  shown = { ranks: ranksOf(frame), period: frame.period };

  $("board-caption").textContent = `${frame.board}: ${viewName(watching)}, ${periodName(frame)}`;
  $("board-status").textContent = `Updated ${new Date().toLocaleTimeString()}.`;
}

function periodName(frame) {
  return frame.period === "all" ? "all time" : `period ${frame.period}`;
}

// Standing

function resetStanding() {
  standing = { rank: null, period: null, seen: false };
  $("my-rank").textContent = "-";
  $("my-score").textContent = "-";
  $("rank-announcer").textContent = "";
}

function showStanding(frame) {
  const mine = frame.entries.find((entry) => entry.player_id === session.playerId);
  const before = frame.period === standing.period ? standing.rank : null;
  const announce = standing.seen;
  standing = { rank: mine ? mine.rank : null, period: frame.period, seen: true };

  $("my-rank").textContent = mine ? String(mine.rank) : "Not ranked";
  $("my-score").textContent = mine ? mine.score.toLocaleString() : "-";
  $("my-board").textContent = mine
    ? `On ${frame.board}, ${periodName(frame)}.`
    : `Play to get on ${frame.board}.`;
  if (!announce || !mine || before === mine.rank) return;

  let text = `You are now ranked ${mine.rank} on ${frame.board}`;
  if (before !== null) {
    const places = Math.abs(before - mine.rank);
    const way = before > mine.rank ? "up" : "down";
    text += `, ${way} ${places} ${places === 1 ? "place" : "places"}`;
  }
  $("rank-announcer").textContent = `${text}.`;
}

// Playing

// playing: the action_id awaiting its result; waiting: points played before the welcome.
function resetPlayer() {
  player = { stateHash: "", state: null, playing: null, waiting: null };
  $("my-plays").textContent = "-";
  $("play-result").textContent = "";
}

function onWelcome(frame) {
  player.stateHash = frame.state_hash;
  showState(frame.state);
  if (player.waiting !== null) {
    play(player.waiting);
    player.waiting = null;
  }
}

function showState(state) {
  player.state = state;
  $("my-plays").textContent = String(state?.plays ?? "-");
}

function onPlay(event) {
  event.preventDefault();
  const result = $("play-result");
  const points = Number($("points").value);
  if (!Number.isInteger(points) || points < 1 || points > 1000) {
    result.textContent = "Points must be a whole number from 1 to 1000.";
    return;
  }
  if (player.playing || player.waiting !== null) {
    result.textContent = "Still waiting for the last result.";
    return;
  }
  if (!player.stateHash) {
    // The state hash comes with the welcome; the play goes out then.
    player.waiting = points;
    result.textContent = "Waiting for the connection...";
    return;
  }
  play(points);
}

function play(points) {
  player.playing = live.act("score", { points }, player.stateHash);
  $("play-result").textContent = live.connected ? "Playing..." : "Waiting for the connection...";
}

function onResult(frame) {
  player.stateHash = frame.state_hash;
  showState(frame.state);
  if (frame.action_id !== player.playing) return;
  player.playing = null;

  const result = $("play-result");
  if (frame.status === "applied") {
    result.textContent = `Applied: your score is ${frame.score.toLocaleString()}.`;
  } else if (frame.status === "mismatch") {
    result.textContent = "Not applied: your state changed elsewhere. Play again.";
  } else {
    result.textContent = `Rejected: ${frame.error?.message} (${frame.error?.code}).`;
  }
}

function onFrameError(frame, request) {
  const text = `${frame.error.message} (${frame.error.code})`;
  if (request?.type === "action") {
    if (request.action_id === player.playing) player.playing = null;
    $("play-result").textContent = `Not played: ${text}.`;
  } else if (request?.type === "subscribe") {
    $("watch-message").textContent = `Cannot watch this view: ${text}.`;
    showMessage($("board-rows"), "This view is not available.");
  } else {
    $("board-status").textContent = `${sentence(text)}.`;
  }
}

function onConnection(state, text) {
  const pill = $("connection");
  pill.dataset.state = state;
  pill.textContent = text;
}

$("sign-in-form").addEventListener("submit", onSignIn);
$("logout").addEventListener("click", onSignOut);
$("watch-form").addEventListener("submit", onWatch);
$("view").addEventListener("change", showViewFields);
$("play-form").addEventListener("submit", onPlay);

resetPlayer();
if (session.signedIn) {
  showSignedIn();
} else {
  showSignedOut();
}
