// The leaderboard table: one complete view per frame, with each entry's rank change since
// the previous frame of the same view marked by an arrow, a number and a short highlight.

const numbers = new Intl.NumberFormat();

// player_id -> rank of a frame, for comparing the next frame with.
export function ranksOf(frame) {
  return new Map(frame.entries.map((entry) => [entry.player_id, rankOf(entry)]));
}

// In a players view the board's own rank is what moves; `rank` is the place in the list.
function rankOf(entry) {
  return entry.board_rank ?? entry.rank;
}

// How an entry moved: {kind: "up" | "down" | "new" | "same", places}. Without a previous
// frame (a first snapshot, a reset board) nothing is marked.
export function changeOf(entry, previous) {
  if (!previous) return { kind: "same", places: 0 };
  const before = previous.get(entry.player_id);
  if (before === undefined) return { kind: "new", places: 0 };
  const places = before - rankOf(entry);
  if (places > 0) return { kind: "up", places };
  if (places < 0) return { kind: "down", places: -places };
  return { kind: "same", places: 0 };
}

function cell(tag, text, className) {
  const element = document.createElement(tag);
  element.textContent = text;
  if (className) element.className = className;
  return element;
}

function changeCell(change) {
  const td = cell("td", "", "change");
  if (change.kind === "same") {
    td.append(cell("span", "No change", "visually-hidden"));
    return td;
  }
  if (change.kind === "new") {
    td.append(cell("span", "New", "badge"));
    return td;
  }

  const arrow = change.kind === "up" ? "\u25B2" : "\u25BC";
  const mark = cell("span", "", `delta ${change.kind}`);
  mark.append(cell("span", arrow, "arrow"), String(change.places));
  mark.querySelector(".arrow").setAttribute("aria-hidden", "true");
  const word = change.kind === "up" ? "up" : "down";
  const said = `${word} ${change.places} ${change.places === 1 ? "place" : "places"}`;
  mark.prepend(cell("span", `${said}: `, "visually-hidden"));
  td.append(mark);
  return td;
}

function row(entry, change, me) {
  const tr = document.createElement("tr");
  tr.dataset.playerId = entry.player_id;
  tr.dataset.change = change.kind;
  if (change.kind !== "same") tr.classList.add("moved");

  const rank = cell("td", String(entry.rank), "num rank");
  if (entry.board_rank !== undefined && entry.board_rank !== entry.rank) {
    rank.append(cell("span", ` (board ${entry.board_rank})`, "hint"));
  }
  const name = cell("th", entry.username, "player");
  name.scope = "row";
  if (entry.player_id === me) {
    tr.classList.add("me");
    tr.setAttribute("aria-current", "true");
    name.append(cell("span", " (you)", "you"));
  }
  tr.append(rank, changeCell(change), name, cell("td", numbers.format(entry.score), "num"));
  return tr;
}

export function render(tbody, frame, previous, me, emptyText) {
  if (frame.entries.length === 0) {
    showMessage(tbody, emptyText);
    return;
  }
  tbody.replaceChildren(...frame.entries.map((e) => row(e, changeOf(e, previous), me)));
}

export function showMessage(tbody, text) {
  const tr = document.createElement("tr");
  tr.className = "empty";
  const td = cell("td", text);
  td.colSpan = 4;
  tr.append(td);
  tbody.replaceChildren(tr);
}
