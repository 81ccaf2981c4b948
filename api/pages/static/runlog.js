// runlog's own pages: a little script, no library. The pages read without it; it adds the
// log's live rows, the time-travel slider and the buttons that POST to the API.
"use strict";

// The buttons call the API's handlers under /runlog/actions (api/pages/__init__.py), where the
// browser sends the password it was asked for on these pages (an auth string set), and where a
// same-site write needs no CSRF token.
async function apiCall(method, path, body) {
  const answer = await fetch("/runlog/actions" + path, {
    method, headers: {"Content-Type": "application/json"}, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await answer.text();
  let value = null;
  try { value = text ? JSON.parse(text) : null; } catch (e) { value = text; }
  if (!answer.ok) throw new Error((value && value.detail) || ("HTTP " + answer.status));
  return value;
}

function say(id, text) { const el = document.getElementById(id); if (el) el.textContent = text; }

// -- the log: follow new events over the websocket ---------------------------------------------
function followLog() {
  const table = document.getElementById("events");
  if (!table || table.dataset.live !== "true") return;
  const params = new URLSearchParams({after: table.dataset.after});
  if (table.dataset.stream) params.set("stream", table.dataset.stream);
  if (table.dataset.type) params.set("type", table.dataset.type);
  let after = Number(table.dataset.after), retry = 1000;
  const connect = () => {
    params.set("after", String(after));
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/runlog/log/live?${params}`);
    socket.onopen = () => { retry = 1000; table.dataset.following = "true"; };
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.position <= after) return;
      after = event.position;
      const body = table.tBodies[0];
      body.insertAdjacentHTML("afterbegin", event.html);
      body.firstElementChild.classList.add("new");
      const empty = document.getElementById("no-events");
      if (empty) empty.remove();
      say("live-status", `Following the log: newest event at position ${after}.`);
    };
    socket.onclose = () => {
      table.dataset.following = "false";
      say("live-status", "Disconnected from the log; reconnecting…");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  };
  connect();
}

// -- time travel: the slider swaps in the view at the chosen event -----------------------------
function timeTravel() {
  const box = document.getElementById("slider-box");
  if (!box) return;
  const slider = document.getElementById("position-slider");
  const positions = box.dataset.positions.split(",").map(Number);
  let wanted = 0, timer = null;
  const show = async () => {
    const index = Number(slider.value), position = positions[index];
    const ask = ++wanted;
    slider.setAttribute("aria-valuetext", `position ${position}`);
    say("slider-label", `${index + 1} of ${positions.length}`);
    const answer = await fetch(`${box.dataset.path}?at=${position}&fragment=1`, {credentials: "same-origin"});
    if (ask !== wanted) return;  // a later move already asked for another
    if (!answer.ok) { say("moment", `Could not load position ${position}: HTTP ${answer.status}`); return; }
    document.getElementById("moment").innerHTML = await answer.text();
    history.replaceState(null, "", `${box.dataset.path}?at=${position}`);
    document.querySelectorAll("ol.stops li").forEach((li) => {
      if (Number(li.dataset.position) === position) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    });
  };
  slider.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(show, 120); });
}

// -- notifications: retry a delivery, then watch it until it is sent or given up -----------------
function retryButtons() {
  document.querySelectorAll("button[data-retry]").forEach((button) => {
    button.addEventListener("click", async () => {
      const id = button.dataset.retry, row = document.getElementById("delivery-" + id);
      const status = row.querySelector(".delivery-status");
      button.disabled = true;
      try {
        let delivery = await apiCall("POST", `/deliveries/${id}/retry`);
        say("action-status", `Delivery ${id.slice(0, 8)} is due again.`);
        for (let i = 0; i < 120 && ["pending", "retrying"].includes(delivery.status); i++) {
          status.textContent = delivery.status;
          status.className = `badge ${delivery.status} delivery-status`;
          await new Promise((done) => setTimeout(done, 500));
          delivery = await apiCall("GET", `/deliveries/${id}`);
        }
        status.textContent = delivery.status;
        status.className = `badge ${delivery.status} delivery-status`;
        row.querySelector(".delivery-attempts").textContent = delivery.attempts;
        row.querySelector(".delivery-code").textContent = delivery.last_status_code ?? "";
        say("action-status", `Delivery ${id.slice(0, 8)}: ${delivery.status}.`);
        if (delivery.status === "sent") button.remove(); else button.disabled = false;
      } catch (error) {
        say("action-status", `Retry failed: ${error.message}`);
        button.disabled = false;
      }
    });
  });
}

// -- projections: verify against the log ------------------------------------------------------
function verifyButton() {
  const button = document.getElementById("verify");
  if (!button) return;
  const out = document.getElementById("verify-result");
  button.addEventListener("click", async () => {
    button.disabled = true;
    out.textContent = "Verifying: replaying the log…";
    try {
      const result = await apiCall("POST", "/projections/verify");
      const differ = result.tables.filter((t) => !t.equal);
      out.innerHTML = "";
      const head = document.createElement("p");
      head.className = result.equal ? "ok-text" : "bad-text";
      head.textContent = result.equal
        ? `Every table (${result.tables.length}) equals a rebuild from the log up to position ${result.head}.`
        : `${differ.length} of ${result.tables.length} tables differ from a rebuild up to position ${result.head}.`;
      out.appendChild(head);
      const list = document.createElement("ul");
      for (const t of result.tables) {
        const item = document.createElement("li");
        item.textContent = `${t.projection} / ${t.table}: ${t.equal ? "equal" : "DIFFERS"} (${t.live} live rows, ${t.rebuilt} rebuilt)`
          + (t.equal ? "" : `; only live: ${t.only_live.join(" ")}; only rebuilt: ${t.only_rebuilt.join(" ")}`);
        list.appendChild(item);
      }
      out.appendChild(list);
    } catch (error) {
      out.textContent = `Verification failed: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => { followLog(); timeTravel(); retryButtons(); verifyButton(); });
