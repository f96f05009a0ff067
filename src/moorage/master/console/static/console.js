// Moorage console: keeps a grid page live. Every few seconds it asks the page's JSON for its
// sections (HTML the server rendered and escaped) and puts them in place. The sign-in cookie goes
// with the request; a refusal (signed out, token removed) goes back to the sign-in page.
(function () {
  "use strict";
  const status = document.getElementById("live-status");
  if (!status || !status.dataset.live) return;
  const url = status.dataset.live;
  const every = Number(status.dataset.every) || 1500;

  function show(text, state) {
    status.textContent = text;
    status.className = "live " + state;
  }

  async function refresh() {
    try {
      const response = await fetch(url, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
      });
      if (response.status === 401 || response.status === 403) {
        window.location.assign("/ui/login?next=" + encodeURIComponent(window.location.pathname));
        return;
      }
      if (!response.ok) {
        show("master answered " + response.status + "; retrying", "stale");
      } else {
        const data = await response.json();
        for (const [name, html] of Object.entries(data.sections)) {
          const section = document.getElementById(name);
          if (section) section.innerHTML = html;
        }
        show("live · " + new Date().toLocaleTimeString(), "ok");
      }
    } catch (error) {
      show("master unreachable; retrying", "stale");
    }
    window.setTimeout(refresh, every);
  }

  window.setTimeout(refresh, every);
})();
