// Live refresh: fetch this page again every data-refresh milliseconds and
// swap in its <main>, while the tab is visible and no form field has focus.
(function () {
  var every = parseInt(document.body.dataset.refresh, 10) || 5000;
  var stamp = document.getElementById("updated");
  function tick() {
    var a = document.activeElement;
    if (document.hidden || (a && (a.tagName === "INPUT" || a.tagName === "BUTTON"))) return;
    fetch(location.href, { headers: { "X-Live": "1" } }).then(function (r) {
      if (!r.ok) throw new Error(r.status);
      return r.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      var next = doc.getElementById("live");
      if (next) {
        document.getElementById("live").replaceWith(next);
        if (stamp) stamp.textContent = "updated " + new Date().toLocaleTimeString();
      }
    }).catch(function (e) {
      if (stamp) stamp.textContent = "refresh failed: " + e.message;
    });
  }
  setInterval(tick, every);
})();
