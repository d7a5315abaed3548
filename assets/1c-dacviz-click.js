/* dacviz client side, part 3: a click's sound and early highlight, and the selection list's rows
 * (a click plays the clip, a double-click selects it). */
(function (d) {
  var graphDiv = d.graphDiv, dimOf = d.dimOf;
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
    try { if (player.currentTime !== 0) { player.currentTime = 0; } } catch (e) { /* not loaded yet */ }  // a seek costs
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

  function clipAtUrl(view, curve, point) {
    // the /clip-at request for a point of a view: the figure says the groups it draws (colour,
    // compared representations, filter), so a click maps through them even while a newer figure
    // is on its way (else the link says them); with them, the clicked clip's neighbours and path,
    // drawn before the Dash round trip (which sends the same payload after the side panel's
    // render): the page's k and hidden groups
    var gd = graphDiv(view), meta = gd && gd.layout && gd.layout.meta;
    var at = "/clip-at/" + view + "/" + curve + "/" + point;
    if (!(meta && meta.groups)) { return at + window.location.search; }
    if (!meta.rep) { return at + "?key=" + encodeURIComponent(meta.groups); }
    var link = new URLSearchParams(window.location.search), ask = new URLSearchParams();
    ask.set("key", meta.groups); ask.set("rep", meta.rep); ask.set("highlight", "1"); ask.set("path", "1");
    if (link.get("k")) { ask.set("k", link.get("k")); }
    link.getAll("hide").forEach(function (h) { ask.append("hide", h); });
    return at + "?" + ask.toString();
  }

  function getJson(url, signal) {
    return fetch(url, signal ? {signal: signal} : undefined).then(function (r) { return r.ok ? r.json() : null; });
  }

  /* The point under a resting pointer: its /clip-at answer and its audio are fetched while the
   * pointer rests on it (HOVER_REST_MS), so that the click that usually follows draws the
   * neighbours and starts the clip without waiting for the server (a busy one answers in 0.1-0.5
   * s). One such fetch at a time; moving to another point aborts the last. The audio goes to the
   * browser's HTTP cache (the page's /audio URLs are kept a day), where the player finds it. */
  var HOVER_REST_MS = 60;
  var hovered = {};               // view -> {curve, point, named, x, y, groups}: Plotly's last hover
  var pointer = {x: -1, y: -1};   // the last pointer position the page saw
  var prefetched = {url: null, answer: null, abort: null};
  var restTimer = null;

  function prefetch(view, curve, point) {
    var url = clipAtUrl(view, curve, point);
    if (prefetched.url === url) { return; }
    if (prefetched.abort) { prefetched.abort.abort(); }
    var abort = window.AbortController ? new AbortController() : null;
    prefetched = {url: url, abort: abort, answer: getJson(url, abort && abort.signal).then(function (answer) {
      if (answer && typeof answer.clip === "number") { getAudio(answer.clip, abort); }
      return answer;
    }).catch(function () { return null; })};
  }

  function getAudio(clip, abort) {
    var player = document.getElementById("player");
    if (!player) { return; }
    var src = (player.getAttribute("data-src-template") || "/audio/{clip}").replace("{clip}", clip);
    fetch(src, abort ? {signal: abort.signal} : undefined).then(function (r) { return r.ok ? r.blob() : null; })
      .catch(function () {});
  }

  function onPointHover(view) {
    return function (event) {
      var p = event && event.points && event.points[0], gd = graphDiv(view);
      var meta = gd && gd.layout && gd.layout.meta;
      if (!p || p.curveNumber === undefined || p.pointNumber === undefined) { hovered[view] = null; return; }
      hovered[view] = {curve: p.curveNumber, point: p.pointNumber, named: p.customdata, x: pointer.x, y: pointer.y,
                       groups: meta && meta.groups};
      window.clearTimeout(restTimer);
      restTimer = window.setTimeout(function () {
        var h = hovered[view];
        if (h && h.curve === p.curveNumber && h.point === p.pointNumber) { prefetch(view, h.curve, h.point); }
      }, HOVER_REST_MS);
    };
  }

  function onPointUnhover(view) {
    return function () { hovered[view] = null; window.clearTimeout(restTimer); };
  }

  /* A click is answered on the pointer's release, before the Dash round trip. In a 2D view it is
   * the page's own (the figures' clickmode is "none": Plotly would pick the point again, 50-300
   * ms on a busy machine): the point nearest the pointer within HIT_PX is picked here, its clip
   * plays and its neighbours are drawn, then Dash gets the view's clickData (its selection fills
   * the side panel) once the audio plays, or after HAND_OVER_MS at most: the renderer's work
   * would otherwise hold up the start of the sound. In a 3D view, a release on the point Plotly's
   * hover names is answered the same way, and Plotly's own click for it comes later and is
   * skipped. A press that moves (zoom, pan, a lasso, a 3D orbit), with a modifier other than
   * shift, or on a path (assets/4 stops it) is left to Plotly; a shift-click compares paths. */
  var CLICK_SLOP_PX = 3, EARLY_MS = 3000, HIT_PX = 20, HAND_OVER_MS = 300;
  var down = null;                // {view, x, y, shift} of a plain press on a view
  var early = null;               // {view, curve, point, at}: a 3D click answered on release

  function within(a, b) { return Math.abs(a.x - b.x) <= CLICK_SLOP_PX && Math.abs(a.y - b.y) <= CLICK_SLOP_PX; }

  function pick(view, x, y) {
    // -> {curve, point, named} of the drawn 2D point nearest the page position (x, y) within
    // HIT_PX (named: the clip its customdata names, or undefined), or null
    var gd = graphDiv(view), geo = gd && d.geometry(gd, 2);
    if (!geo) { return null; }
    var box = gd.getBoundingClientRect(), px = x - box.left, py = y - box.top, r = geo.rect;
    if (px < r[0] || px > r[0] + r[2] || py < r[1] || py > r[1] + r[3]) { return null; }
    var best = null, bestDist = HIT_PX * HIT_PX;
    d.plotly.traces(gd).forEach(function (trace) {
      if (trace.visible !== true || !trace.x || !trace.y) { return; }
      for (var i = 0; i < trace.x.length; i++) {
        var q = geo.toPixel([trace.x[i], trace.y[i]]), dx = q[0] - px, dy = q[1] - py, dist = dx * dx + dy * dy;
        if (dist <= bestDist) { bestDist = dist; best = {curve: trace.index, point: i, trace: trace}; }  // the last drawn on top
      }
    });
    if (!best) { return null; }
    var named = best.trace.customdata;
    return {curve: best.curve, point: best.point,
            named: named && typeof named.length === "number" ? Number(named[best.point]) : undefined};
  }

  function sendClick(view, curve, point) {
    // the view's clickData, as Plotly's click would set it: the Dash selection (callbacks/selection.py)
    if (window.dash_clientside && window.dash_clientside.set_props) {
      window.dash_clientside.set_props("view-" + view, {clickData: {points: [{curveNumber: curve, pointNumber: point}],
                                                                   at: Date.now()}});
    }
  }

  function whenPlaying(then, ms) {
    // then() once the player plays, or after ``ms``, whichever comes first
    var player = document.getElementById("player"), done = false, timer = null;
    function go() {
      if (done) { return; }
      done = true;
      window.clearTimeout(timer);
      if (player) { player.removeEventListener("playing", go); }
      then();
    }
    if (player) { player.addEventListener("playing", go); }
    timer = window.setTimeout(go, ms);
  }

  /* The browser opens its audio output on the page's first sound (~0.1 s on a busy machine, on top
   * of the first click's own): the page's first press opens it already, with a silent AudioContext
   * that is closed once the player has played (an open one keeps an audio thread running). */
  var warmOutput = null;
  function openAudioOutput() {
    var Context = window.AudioContext || window.webkitAudioContext, player = document.getElementById("player");
    if (warmOutput !== null || !Context || !player) { return; }
    try { warmOutput = new Context(); } catch (e) { warmOutput = false; return; }
    whenPlaying(function () {
      if (warmOutput && warmOutput.close) { warmOutput.close().catch(function () {}); }
      warmOutput = false;
    }, 10000);
    if (warmOutput.resume) { warmOutput.resume().catch(function () {}); }
  }
  ["pointerdown", "keydown"].forEach(function (name) { document.addEventListener(name, openAudioOutput, true); });

  /* The browser builds its media pipeline the first time a page loads audio: the page loads a
   * silent WAV of 10 ms into a detached audio element once, when it opens, so that the first click
   * does not pay for it (loading needs no gesture; the first click's sound came ~75 ms sooner,
   * docs/benchmarks.md "The first click's sound, again"). */
  function warmMediaPipeline() {
    var rate = 8000, n = 80, bytes = new Uint8Array(44 + 2 * n), v = new DataView(bytes.buffer);
    function text(at, s) { for (var i = 0; i < s.length; i++) { bytes[at + i] = s.charCodeAt(i); } }
    text(0, "RIFF"); v.setUint32(4, 36 + 2 * n, true); text(8, "WAVEfmt "); v.setUint32(16, 16, true);
    v.setUint16(20, 1, true); v.setUint16(22, 1, true); v.setUint32(24, rate, true); v.setUint32(28, 2 * rate, true);
    v.setUint16(32, 2, true); v.setUint16(34, 16, true); text(36, "data"); v.setUint32(40, 2 * n, true);
    var url = URL.createObjectURL(new Blob([bytes], {type: "audio/wav"})), warm = new Audio();
    warm.preload = "auto";
    warm.muted = true;
    warm.addEventListener("loadeddata", function () { URL.revokeObjectURL(url); }, {once: true});
    warm.src = url;
  }
  if (window.Audio && window.Blob && window.URL) {
    if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", warmMediaPipeline); }
    else { warmMediaPipeline(); }
  }

  document.addEventListener("pointermove", function (event) { pointer = {x: event.clientX, y: event.clientY}; }, true);
  document.addEventListener("pointerdown", function (event) {  // bubbling: a press on a path never gets here
    pointer = {x: event.clientX, y: event.clientY};
    var view = d.viewAt(event.target), plain = event.button === 0 && !event.ctrlKey && !event.metaKey && !event.altKey;
    down = view && plain ? {view: view, x: event.clientX, y: event.clientY, shift: !!event.shiftKey} : null;
  });
  document.addEventListener("pointerup", function (event) {
    var press = down, at = {x: event.clientX, y: event.clientY};
    down = null;
    if (!press || d.viewAt(event.target) !== press.view || !within(press, at)) { return; }
    if (dimOf(press.view) === 2) {
      var hit = pick(press.view, at.x, at.y);
      if (!hit) { return; }
      if (press.shift) { compareWith(press.view, hit.curve, hit.point); return; }
      answerClick(press.view, hit.curve, hit.point, hit.named);
      whenPlaying(function () { sendClick(press.view, hit.curve, hit.point); }, HAND_OVER_MS);
      return;
    }
    var h = hovered[press.view], gd = graphDiv(press.view), meta = gd && gd.layout && gd.layout.meta;
    if (press.shift || !h || !within(h, at) || h.groups !== (meta && meta.groups)) { return; }
    early = {view: press.view, curve: h.curve, point: h.point, at: performance.now()};
    answerClick(press.view, h.curve, h.point, h.named);
  });

  function answerClick(view, curve, point, named) {
    // the audio now, from the figure's customdata when it names the clip, else with /clip-at's
    // answer (prefetched while the pointer rested, or asked now); the neighbours and the path
    var token = {};
    pendingClick = token;
    pendingHighlight = token;
    if (typeof named === "number" && isFinite(named) && named >= 0) { startPlayer(named, token); }
    var url = clipAtUrl(view, curve, point);
    var reply = prefetched.url === url ? prefetched.answer : getJson(url);
    reply.then(function (answer) {
      if (answer && pendingClick === token) {
        startPlayer(answer.clip, token);
        if (d.showPath) { d.showPath(answer.clip, answer.path); }  // its path (assets/4), with the answer
      }
      if (answer && answer.highlight && pendingHighlight === token) { d.drawEarly(answer.highlight); }
    }).catch(function () { /* the Dash path still plays and draws it */ });
  }

  function compareWith(view, curve, point) {
    // a shift-click selects nothing: it compares the clicked clip's path with the shown one (assets/4)
    if (!d.comparePath) { return; }
    getJson(clipAtUrl(view, curve, point))
      .then(function (answer) { if (answer) { d.comparePath(answer.clip); } })
      .catch(function () {});
  }

  function onPointClick(view) {
    return function (event) {
      var point = event && event.points && event.points[0];
      if (!point || point.curveNumber === undefined || point.pointNumber === undefined) { return; }
      if (d.lastPointerShift) { compareWith(view, point.curveNumber, point.pointNumber); return; }
      var same = early && early.view === view && early.curve === point.curveNumber &&
          early.point === point.pointNumber && performance.now() - early.at < EARLY_MS;
      early = null;
      if (same) { return; }  // answered on the pointer's release
      answerClick(view, point.curveNumber, point.pointNumber, point.customdata);
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
  d.onPointHover = onPointHover;
  d.onPointUnhover = onPointUnhover;
  d.drawHighlight = drawHighlight;
  d.selectClip = selectClip;
})(window.dacviz);
