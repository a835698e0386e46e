// Live updates: when the server says something changed (roles, people, skill levels, awards), re-read the team table.
(function () {
  "use strict";
  if (!window.EventSource) return;
  var status = document.getElementById("live-status");
  var source = new EventSource("/api/v1/events");
  var pending = null;
  function refresh() {
    var team = document.getElementById("team");
    if (!team) return;
    fetch(team.getAttribute("data-refresh"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        // Keep an open "End…" form open while the table is replaced.
        if (team.querySelector("details[open]")) { schedule(); return; }
        team.innerHTML = html;
        if (status) status.textContent = "Updated " + new Date().toLocaleTimeString();
      });
  }
  function schedule() { clearTimeout(pending); pending = setTimeout(refresh, 300); }
  source.addEventListener("open", function () { if (status) status.textContent = "Live: changes appear here as they happen."; document.body.setAttribute("data-live", "on"); });
  source.addEventListener("assignment", schedule);
  source.addEventListener("directory", schedule);
  source.addEventListener("skills", schedule);
  source.addEventListener("award", schedule);
})();
