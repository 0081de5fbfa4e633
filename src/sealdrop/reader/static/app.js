// The reader's only script, served by the reader itself (CSP script-src 'self'; nothing inline).
// Everything it does is a convenience: every page works the same with JavaScript off.
(function () {
  "use strict";

  // Keyboard: j / k move between the entries of a list (sources, conversation items),
  // "/" goes to the search field. Not while typing in a field.
  function typing(target) {
    return target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName);
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var entries = Array.prototype.slice.call(document.querySelectorAll("[data-nav]"));
    if (event.key === "/") {
      var search = document.getElementById("q");
      if (search) { event.preventDefault(); search.focus(); }
      return;
    }
    if ((event.key !== "j" && event.key !== "k") || entries.length === 0) return;
    var current = entries.indexOf(document.activeElement);
    var next = event.key === "j" ? current + 1 : current - 1;
    if (current === -1) next = 0;
    next = Math.max(0, Math.min(entries.length - 1, next));
    entries[next].focus();
    entries[next].scrollIntoView({ block: "nearest" });
    event.preventDefault();
  });

  // The status line follows the background sync (GET /sync/status, JSON).
  var bar = document.getElementById("sync-state");
  var fresh = document.getElementById("fresh");
  if (!bar) return;
  var seen = Number(bar.getAttribute("data-fresh") || "0");
  function poll() {
    fetch("/sync/status", { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) {
        if (!status) return;
        bar.textContent = status.text;
        bar.className = "state " + status.state;
        if (fresh && status.fresh > seen) {
          fresh.hidden = false;
        }
      })
      .catch(function () { /* the reader stopped: the page stays as it is */ });
  }
  window.setInterval(poll, 4000);
})();
