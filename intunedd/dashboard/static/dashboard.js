// intunedd's dashboard: confirmations, the log search, and live updates over the event websocket.
// Parts of a page marked data-live-src are fetched again (as server-rendered HTML) when a matching
// event arrives; the runs table (data-live-rows) updates or prepends single rows.
"use strict";

(() => {
  // Destructive forms ask first.
  document.addEventListener("submit", (event) => {
    const message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // The log's search filters the lines as one types (the form also works without script).
  for (const input of document.querySelectorAll("[data-log-search]")) {
    const list = document.querySelector(input.dataset.logSearch);
    const count = document.getElementById("log-count");
    input.addEventListener("input", () => {
      const wanted = input.value.toLowerCase();
      let shown = 0;
      for (const line of list.children) {
        const text = line.querySelector(".log-text").textContent.toLowerCase();
        line.hidden = !text.includes(wanted);
        if (!line.hidden) shown += 1;
      }
      if (count) count.textContent = `${shown} of ${list.children.length} lines`;
    });
  }

  const regions = [...document.querySelectorAll("[data-live-src]")];
  const tables = [...document.querySelectorAll("[data-live-rows]")];
  if (!regions.length && !tables.length) return;
  const status = document.getElementById("live-status");
  const timers = new Map();

  function matches(element, event) {
    const types = (element.dataset.liveEvents || "").split(" ").filter(Boolean);
    if (types.length && !types.some((prefix) => event.type.startsWith(prefix))) return false;
    const data = element.dataset;
    if (data.liveProject && event.project !== data.liveProject) return false;
    if (data.liveRun && event.run_id !== data.liveRun) return false;
    if (data.liveJob && (event.data || {}).job_id !== data.liveJob) return false;
    return true;
  }

  async function fetchHtml(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (response.redirected || response.status === 401 || response.status === 403) {
      window.location.reload(); // signed out: the page shows the sign-in
      return null;
    }
    return { status: response.status, text: response.status === 200 ? await response.text() : "" };
  }

  function refresh(region) {
    if (timers.has(region)) return; // one fetch per burst of events
    const delay = Number(region.dataset.liveDelay || 250);
    timers.set(region, setTimeout(async () => {
      timers.delete(region);
      const answer = await fetchHtml(region.dataset.liveSrc);
      if (answer && answer.status === 200) region.innerHTML = answer.text;
    }, delay));
  }

  function rowFrom(html) {
    const template = document.createElement("template");
    template.innerHTML = `<table><tbody>${html}</tbody></table>`;
    return template.content.querySelector("tr");
  }

  async function updateRow(table, event) {
    if (!event.run_id || event.project !== table.dataset.liveProject || !event.type.startsWith("run.")) return;
    const existing = table.querySelector(`tr[data-run="${CSS.escape(event.run_id)}"]`);
    if (!existing && !(event.type === "run.created" && "livePrepend" in table.dataset)) return;
    const answer = await fetchHtml(`${table.dataset.liveRows}&run=${encodeURIComponent(event.run_id)}`);
    if (!answer) return;
    const current = table.querySelector(`tr[data-run="${CSS.escape(event.run_id)}"]`);
    if (answer.status === 204) {
      if (current) current.remove(); // no longer matches the filters
      return;
    }
    const row = rowFrom(answer.text);
    if (current) current.replaceWith(row);
    else table.prepend(row);
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const workspace = encodeURIComponent(document.body.dataset.workspace);
    const socket = new WebSocket(`${scheme}//${window.location.host}/api/v1/workspace/${workspace}/events`);
    socket.addEventListener("open", () => {
      if (status) status.textContent = "Live";
      // What changed between rendering the page (or a lost connection) and now.
      regions.forEach(refresh);
      for (const table of tables) {
        fetchHtml(table.dataset.liveBody).then((answer) => {
          if (answer && answer.status === 200) table.innerHTML = answer.text;
        });
      }
    });
    socket.addEventListener("message", (message) => {
      const event = JSON.parse(message.data);
      for (const region of regions) if (matches(region, event)) refresh(region);
      for (const table of tables) updateRow(table, event);
    });
    socket.addEventListener("close", () => {
      if (status) status.textContent = "Reconnecting…";
      setTimeout(connect, 2000);
    });
  }
  connect();
})();
