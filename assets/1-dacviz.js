/* dacviz client side: play audio, keep the URL in step, keyboard shortcuts for a talk. */
window.dacviz = (function () {
  var lastNonce = null;

  function play(sel) {
    if (!sel || sel.play === null || sel.play === undefined || sel.nonce === lastNonce) {
      return window.dash_clientside.no_update;
    }
    lastNonce = sel.nonce;
    var player = document.getElementById("player");
    if (!player) { return window.dash_clientside.no_update; }
    var src = "/audio/" + sel.play;
    if (player.getAttribute("src") !== src) { player.setAttribute("src", src); }
    try { player.currentTime = 0; } catch (e) { /* not loaded yet */ }
    var started = player.play();
    if (started && started.catch) { started.catch(function () { /* autoplay refused */ }); }
    return "playing " + sel.play;
  }

  function syncUrl(sel, rep, colour, k, pres) {
    var params = new URLSearchParams();
    if (rep) { params.set("rep", rep); }
    if (colour && colour !== "label") { params.set("colour", colour); }
    if (k) { params.set("k", k); }
    if (sel && sel.clip !== null && sel.clip !== undefined) { params.set("clip", sel.clip); }
    var presenting = pres && pres.length > 0;
    if (presenting) { params.set("present", "1"); }
    document.body.classList.toggle("presentation", !!presenting);
    var url = window.location.pathname + "?" + params.toString();
    if (url !== window.location.pathname + window.location.search) {
      window.history.replaceState(null, "", url);
    }
    return url;
  }

  function click(id) {
    var el = document.getElementById(id);
    if (el) { el.click(); }
  }

  document.addEventListener("keydown", function (event) {
    var tag = (event.target && event.target.tagName) || "";
    if (/INPUT|TEXTAREA|SELECT/.test(tag) || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var key = event.key;
    if (key === "ArrowRight" || key === "n") { click("key-next"); }
    else if (key === "ArrowLeft" || key === "p") { click("key-prev"); }
    else if (key === "Escape") { click("clear"); }
    else if (key === "r") {
      var player = document.getElementById("player");
      if (player && player.getAttribute("src")) { player.currentTime = 0; player.play(); }
    } else if (key === "t") {
      var toggle = document.querySelector("#presentation input");
      if (toggle) { toggle.click(); }
    } else { return; }
    event.preventDefault();
  });

  return { play: play, syncUrl: syncUrl };
})();
