/* dacviz client side, part 3: a click's sound and early highlight, and the selection list's rows
 * (a click plays the clip, a double-click selects it). */
(function (d) {
  var graphDiv = d.graphDiv;
  var lastNonce = null;

  /* A click plays its clip at once: from the figure's customdata when it has it, else when
   * /clip-at names the clip (a few ms). The Dash selection for the same click (which also fills
   * the side panel and the highlight) arrives later (0.1-1 s on a busy machine) and would start
   * the clip again from 0: a selection that plays the clip a click started within ECHO_MS, with
   * nothing started since, is that click's echo and is skipped. Other starts (a neighbour, a
   * selection row) skip only the same clip within SAME_START_MS. */
  var SAME_START_MS = 700, ECHO_MS = 5000;
  var lastStart = {clip: null, at: -1e9, click: null};
  var pendingClick = null;
  var pendingHighlight = null;    // the click whose early highlight may still be drawn

  function startPlayer(clip, click) {
    // click: the click's token (its start always plays; the same click's second start is skipped)
    var now = performance.now();
    if (click ? lastStart.click === click : lastStart.clip === clip && now - lastStart.at < SAME_START_MS) {
      return false;
    }
    var player = document.getElementById("player");
    if (!player) { return false; }
    lastStart = {clip: clip, at: now, click: click || null};
    var src = (player.getAttribute("data-src-template") || "/audio/{clip}").replace("{clip}", clip);
    if (player.getAttribute("src") !== src) { player.setAttribute("src", src); }
    try { player.currentTime = 0; } catch (e) { /* not loaded yet */ }
    var started = player.play();
    if (started && started.catch) { started.catch(function () { /* autoplay refused */ }); }
    return true;
  }

  function arm(clip) {
    // a clip restored from a link: its audio is loaded, ready for `r` or the player's button
    // (browsers refuse to start audio before the user's first gesture)
    var player = document.getElementById("player");
    if (!player) { return; }
    var src = (player.getAttribute("data-src-template") || "/audio/{clip}").replace("{clip}", clip);
    if (player.getAttribute("src") !== src) { player.setAttribute("src", src); }
  }

  function play(sel) {
    if (sel && (sel.play === null || sel.play === undefined) && sel.clip !== null && sel.clip !== undefined) {
      arm(sel.clip);
      return "armed " + sel.clip;
    }
    if (!sel || sel.play === null || sel.play === undefined || sel.nonce === lastNonce) {
      return window.dash_clientside.no_update;
    }
    lastNonce = sel.nonce;
    if (lastStart.click && !lastStart.echoed && lastStart.clip === sel.play &&
        performance.now() - lastStart.at < ECHO_MS) {
      lastStart.echoed = true;  // once: a later selection of the same clip plays it again
      return "playing " + sel.play + " (started by the click)";
    }
    startPlayer(sel.play);
    return "playing " + sel.play;
  }

  function onPointClick(view) {
    return function (event) {
      var point = event && event.points && event.points[0];
      if (!point || point.curveNumber === undefined || point.pointNumber === undefined) { return; }
      // the figure says the groups it draws (colour, compared representations, filter): a click
      // maps through them even while a newer figure is on its way; else the link says them
      var gd = graphDiv(view), meta = gd && gd.layout && gd.layout.meta;
      var query = meta && meta.groups ? "?key=" + encodeURIComponent(meta.groups) : window.location.search;
      var at = "/clip-at/" + view + "/" + point.curveNumber + "/" + point.pointNumber;
      if (d.lastPointerShift && d.comparePath) {
        // a shift-click selects nothing: it compares the clicked clip's path with the shown one (assets/4)
        fetch(at + query).then(function (r) { return r.ok ? r.json() : null; })
          .then(function (answer) { if (answer) { d.comparePath(answer.clip); } })
          .catch(function () {});
        return;
      }
      var token = {};
      pendingClick = token;
      // the figure names the clip (customdata, when it carries hover texts): the audio starts
      // now, before any round trip; /clip-at still brings the neighbours and the path
      var named = point.customdata;
      if (typeof named === "number" && isFinite(named) && named >= 0) { startPlayer(named, token); }
      if (meta && meta.groups && meta.rep) {
        // and the clicked clip's neighbours, drawn before the Dash round trip (which sends the
        // same payload ~100 ms later, after the side panel's render): the page's k and hidden groups
        var link = new URLSearchParams(window.location.search), ask = new URLSearchParams();
        ask.set("key", meta.groups); ask.set("rep", meta.rep); ask.set("highlight", "1"); ask.set("path", "1");
        if (link.get("k")) { ask.set("k", link.get("k")); }
        link.getAll("hide").forEach(function (h) { ask.append("hide", h); });
        query = "?" + ask.toString();
      }
      pendingHighlight = token;
      fetch(at + query)
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (answer) {
          if (answer && pendingClick === token) {
            startPlayer(answer.clip, token);
            if (d.showPath) { d.showPath(answer.clip, answer.path); }  // its path (assets/4), with the answer
          }
          if (answer && answer.highlight && pendingHighlight === token) { d.drawEarly(answer.highlight); }
        })
        .catch(function () { /* the Dash path still plays and draws it */ });
    };
  }

  function drawHighlight(payload) {
    pendingHighlight = null;  // the Dash answer for the latest state: an early one is outdated
    return d.paint(payload);
  }

  function selectClip(clip) {
    // what a click on the clip's point does: select it (its neighbours light up) and play it
    if (window.dash_clientside && window.dash_clientside.set_props) {
      window.dash_clientside.set_props("selection", {data: {clip: clip, cursor: -1, play: clip,
                                                            nonce: Date.now()}});
    }
  }
  // a neighbour's ▶ plays it (the server moves the cursor to it: callbacks/selection.py)
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("#neighbour-items .play-btn");
    if (!button || !window.dash_clientside || !window.dash_clientside.set_props) { return; }
    window.dash_clientside.set_props("neighbour-play", {data: {clip: parseInt(button.getAttribute("data-clip"), 10),
                                                                nonce: Date.now()}});
  });
  // rows of the selection list: a click plays the clip, a double-click selects it
  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest(".lasso-row");
    if (row) { lastStart = {clip: null, at: -1e9}; startPlayer(parseInt(row.getAttribute("data-clip"), 10)); }
  });
  document.addEventListener("dblclick", function (event) {
    var row = event.target.closest && event.target.closest(".lasso-row");
    if (row) { selectClip(parseInt(row.getAttribute("data-clip"), 10)); }
  });
  d.startPlayer = startPlayer;
  d.play = play;
  d.onPointClick = onPointClick;
  d.drawHighlight = drawHighlight;
  d.selectClip = selectClip;
})(window.dacviz);
