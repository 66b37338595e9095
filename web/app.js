// Placeholder (helper B1, statusd): shows /v1/status as text, refreshed on every event.
"use strict";
function refresh() {
  fetch("/v1/status").then(r => r.json()).then(s => {
    document.getElementById("status").textContent = JSON.stringify(s, null, 2);
  });
}
refresh();
const events = new EventSource("/v1/events");
for (const kind of ["deployment", "instance", "release"])
  events.addEventListener(kind, refresh);
