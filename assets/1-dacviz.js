/* dacviz client side: play audio, keep the URL in step, keyboard shortcuts for a talk, and the
 * highlight layer: a canvas over each view on which the selected clip, its neighbours and a
 * box/lasso set are drawn (a white veil dims the rest). The WebGL figures are never touched by a
 * selection; the layer follows zoom, pan and the 3D camera by redrawing on Plotly's events (no
 * polling: an idle page runs no script of ours). The views are the page's own table (#page's
 * data-views, written from dacviz_app/core/spaces.py), read once the layout is there. */
window.dacviz = (function () {
  /* ---------------------------------------------------------------- Plotly internals
   * The layer has to know where Plotly draws a data point, which plotly.js has no API for. These
   * are the private plotly.js fields it reads, all of them, and nothing else in this file reads a
   * Plotly field that starts with "_": checked against plotly.js 4.1.1 (dash 4.4.1, plotly 7.1.0).
   * plotly.missing() names any that is gone or changed shape; tests/test_browser.py asserts it
   * finds none in every view and that the layer follows zoom, pan and the camera, so a Plotly
   * upgrade that renames one fails there, loudly. gd.on and gd.emit are the event emitter's
   * methods that plotly.js sets on the graph div (gd.on is documented, gd.emit is not). */
  var plotly = {
    layout: function (gd) { return gd._fullLayout || null; },  // the computed layout, once plotted
    paper: function (L) { return {width: L.width, height: L.height}; },  // the figure's size in px
    size: function (L) { return L._size; },                    // the plot area in px: {l, t, w, h}
    axis: function (L, name) {                                  // a 2D axis: px offset, length, data -> px
      var ax = L[name];
      return ax && {offset: ax._offset, length: ax._length, range: ax.range,
                    c2p: typeof ax.c2p === "function" ? function (v) { return ax.c2p(v); } : null};
    },
    scene: function (L) {                                       // a 3D scene: its camera as of its last frame
      var s = L.scene && L.scene._scene;
      return s && s.glplot ? {camera: s.glplot.cameraParams, dataScale: s.dataScale, domain: L.scene.domain}
                           : null;
    },
    missing: function (gd, dim) {
      // -> the names of the fields above that a plotted view lacks (or that changed shape)
      var out = [];
      function need(ok, what) { if (!ok) { out.push(what); } }
      function nums(o, keys) { return !!o && keys.every(function (k) { return typeof o[k] === "number"; }); }
      function mat(m, n) { return !!m && m.length === n; }
      need(typeof gd.on === "function" && typeof gd.emit === "function", "gd.on, gd.emit");
      var L = plotly.layout(gd);
      need(L, "gd._fullLayout");
      if (!L) { return out; }
      need(nums(plotly.paper(L), ["width", "height"]), "_fullLayout.width/height");
      need(nums(plotly.size(L), ["l", "t", "w", "h"]), "_fullLayout._size.l/t/w/h");
      if (dim === 3) {
        var s = plotly.scene(L);
        need(s, "_fullLayout.scene._scene.glplot");
        if (!s) { return out; }
        need(s.camera && mat(s.camera.view, 16) && mat(s.camera.projection, 16) && mat(s.camera.model, 16),
             "scene._scene.glplot.cameraParams.view/projection/model");
        need(mat(s.dataScale, 3), "scene._scene.dataScale");
        need(s.domain && mat(s.domain.x, 2) && mat(s.domain.y, 2), "_fullLayout.scene.domain");
      } else {
        ["xaxis", "yaxis"].forEach(function (name) {
          var ax = plotly.axis(L, name);
          need(nums(ax, ["offset", "length"]) && mat(ax.range, 2) && ax.c2p,
               "_fullLayout." + name + "._offset/_length/range/c2p");
        });
      }
      return out;
    }
  };

  /* ---------------------------------------------------------------- the page's views */
  var viewTable = null;
  function views() {
    // [{name, method, dim, title, axis}] from #page's data-views; [] until Dash has rendered it
    if (!viewTable) {
      var page = document.getElementById("page"), json = page && page.getAttribute("data-views");
      if (json) {
        try { viewTable = JSON.parse(json); } catch (e) { viewTable = null; }
      }
    }
    return viewTable || [];
  }
  function dimOf(name) {
    var table = views();
    for (var i = 0; i < table.length; i++) { if (table[i].name === name) { return table[i].dim; } }
    return 2;
  }

  var lastNonce = null;
  var highlight = null;           // the payload of figures.highlight_payload
  var signatures = {};            // view -> the geometry the layer was last drawn for
  var drawn = {};                 // view -> {selected, neighbours, lasso, at, rect, pixels}: read by tests/benchmarks

  /* A click plays its clip by two paths, whichever is first: the browser asks the server which clip
   * sits at the clicked point (/clip-at, a few ms) and starts it at once, and the Dash selection
   * (which also fills the side panel and the highlight) starts it when it arrives. The second start
   * of the same clip within SAME_START_MS is the same click and is skipped. */
  var SAME_START_MS = 700;
  var lastStart = {clip: null, at: -1e9};
  var pendingClick = null;
  var pendingHighlight = null;    // the click whose early highlight may still be drawn

  function startPlayer(clip) {
    var now = performance.now();
    if (lastStart.clip === clip && now - lastStart.at < SAME_START_MS) { return false; }
    var player = document.getElementById("player");
    if (!player) { return false; }
    lastStart = {clip: clip, at: now};
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
    startPlayer(sel.play);
    return "playing " + sel.play;
  }

  function onPointClick(view) {
    return function (event) {
      var point = event && event.points && event.points[0];
      if (!point || point.curveNumber === undefined || point.pointNumber === undefined) { return; }
      var token = {};
      pendingClick = token;
      // the figure says the groups it draws (colour, compared representations, filter): a click
      // maps through them even while a newer figure is on its way; else the link says them
      var gd = graphDiv(view), meta = gd && gd.layout && gd.layout.meta;
      var query = meta && meta.groups ? "?key=" + encodeURIComponent(meta.groups) : window.location.search;
      if (meta && meta.groups && meta.rep) {
        // and the clicked clip's neighbours, drawn before the Dash round trip (which sends the
        // same payload ~100 ms later, after the side panel's render): the page's k and hidden groups
        var link = new URLSearchParams(window.location.search), ask = new URLSearchParams();
        ask.set("key", meta.groups); ask.set("rep", meta.rep); ask.set("highlight", "1");
        if (link.get("k")) { ask.set("k", link.get("k")); }
        link.getAll("hide").forEach(function (h) { ask.append("hide", h); });
        query = "?" + ask.toString();
      }
      pendingHighlight = token;
      fetch("/clip-at/" + view + "/" + point.curveNumber + "/" + point.pointNumber + query)
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (answer) {
          if (answer && pendingClick === token) { startPlayer(answer.clip); }
          if (answer && answer.highlight && pendingHighlight === token) { drawEarly(answer.highlight); }
        })
        .catch(function () { /* the Dash path still plays and draws it */ });
    };
  }

  function syncUrl(sel, rep, colour, k, pres, depth, compare, filter, lassoLink, shown, options) {
    var params = new URLSearchParams();
    if (rep) { params.set("rep", rep); }
    var handle = document.querySelector("#depth [role=slider]");  // the codebook slider
    var full = handle ? parseInt(handle.getAttribute("aria-valuemax"), 10) : null;
    if (rep === "z" && depth && full && depth < full) { params.set("q", depth); }
    if (colour && colour !== "label") { params.set("colour", colour); }
    if (compare) { params.set("cmp", compare); }
    (filter || []).forEach(function (f) { params.append("filter", f); });
    if (lassoLink) { params.set("sel", lassoLink); }
    if (shown && options) {  // the groups switched off in the legend
      options.forEach(function (o) { if (shown.indexOf(o.value) < 0) { params.append("hide", o.value); } });
    }
    if (k) { params.set("k", k); }
    if (sel && sel.clip !== null && sel.clip !== undefined) { params.set("clip", sel.clip); }
    var presenting = pres && pres.length > 0;
    if (presenting) { params.set("present", "1"); }
    var max = maxRestored ? maximised() : new URLSearchParams(window.location.search).get("max");
    if (max) { params.set("max", max); }
    document.body.classList.toggle("presentation", !!presenting);
    fitMapsSoon();
    var url = window.location.pathname + "?" + params.toString();
    if (url !== window.location.pathname + window.location.search) {
      window.history.replaceState(null, "", url);
    }
    return url;
  }

  /* ---------------------------------------------------------------- highlight layer */
  function graphDiv(view) { return document.querySelector("#view-" + view + " .js-plotly-plot"); }

  function project3d(s, size, p) {
    // plotly.js's own projection of a 3D point to the page (as for 3D annotations)
    var cam = s.camera, ds = s.dataScale, dom = s.domain;
    var v = [p[0] * ds[0], p[1] * ds[1], p[2] * ds[2], 1];
    function mul(m, x) {
      var r = [0, 0, 0, 0];
      for (var i = 0; i < 4; ++i) { for (var j = 0; j < 4; ++j) { r[j] += m[4 * i + j] * x[i]; } }
      return r;
    }
    var c = mul(cam.projection, mul(cam.view, mul(cam.model, v)));
    return [size.l + dom.x[0] * size.w + 0.5 * (1 + c[0] / c[3]) * size.w * (dom.x[1] - dom.x[0]),
            size.t + (1 - dom.y[1]) * size.h + 0.5 * (1 - c[1] / c[3]) * size.h * (dom.y[1] - dom.y[0])];
  }

  function geometry(gd, dim) {
    // -> {rect: [x, y, w, h] of the plot area, toPixel(point), signature}, or null before Plotly has drawn
    var L = plotly.layout(gd), size = L && plotly.size(L);
    if (!size) { return null; }
    var paper = plotly.paper(L), page = paper.width + "x" + paper.height + "@" + (window.devicePixelRatio || 1);
    if (dim === 3) {
      var s = plotly.scene(L), cam = s && s.camera;
      if (!cam || !cam.view || !cam.projection || !s.dataScale) { return null; }
      var dom = s.domain;
      return {rect: [size.l + dom.x[0] * size.w, size.t + (1 - dom.y[1]) * size.h, size.w * (dom.x[1] - dom.x[0]),
                     size.h * (dom.y[1] - dom.y[0])],
              toPixel: function (p) { return project3d(s, size, p); },
              signature: Array.prototype.join.call(cam.view, ",") + "|" +
                         Array.prototype.join.call(cam.projection, ",") + "|" + s.dataScale.join(",") + "|" + page};
    }
    var xa = plotly.axis(L, "xaxis"), ya = plotly.axis(L, "yaxis");
    if (!xa || !ya || !xa.c2p || !ya.c2p) { return null; }
    return {rect: [xa.offset, ya.offset, xa.length, ya.length],
            toPixel: function (p) { return [xa.offset + xa.c2p(p[0]), ya.offset + ya.c2p(p[1])]; },
            signature: xa.range.join(",") + "|" + ya.range.join(",") + "|" + xa.offset + "," + ya.offset + "|" +
                       xa.length + "x" + ya.length + "|" + page};
  }

  function layer(gd) {
    // the view's canvas, between Plotly's figure and its top SVG (hover labels, modebar stay above)
    var holder = gd.querySelector(".svg-container"), L = plotly.layout(gd);
    if (!holder || !L) { return null; }
    var canvas = holder.querySelector(":scope > canvas.dacviz-layer");
    if (!canvas) {
      canvas = document.createElement("canvas");
      canvas.className = "dacviz-layer";
    }
    var svgs = holder.querySelectorAll(":scope > .main-svg"), above = svgs.length > 1 ? svgs[svgs.length - 1] : null;
    if (canvas.parentNode !== holder || canvas.nextSibling !== above) {
      holder.insertBefore(canvas, above);  // new, or Plotly rebuilt its SVGs (Plotly.newPlot)
    }
    var paper = plotly.paper(L), w = paper.width, h = paper.height, dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
      canvas.style.width = w + "px";
      canvas.style.height = h + "px";
    }
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }

  function drawView(view, gd, geo) {
    var ctx = layer(gd);
    if (!ctx) { return; }
    var paper = plotly.paper(plotly.layout(gd));
    ctx.clearRect(0, 0, paper.width, paper.height);
    var data = highlight && highlight.views && highlight.views[view];
    var record = {selected: [], neighbours: [], lasso: 0, at: performance.now()};
    if (data && highlight.active) {
      var r = geo.rect, big = highlight.presentation ? 1.5 : 1;
      ctx.save();
      ctx.beginPath();
      ctx.rect(r[0], r[1], r[2], r[3]);
      ctx.clip();
      ctx.fillStyle = "rgba(255,255,255,0.82)";
      ctx.fillRect(r[0], r[1], r[2], r[3]);
      data.lasso.xyz.forEach(function (p, i) {
        // a selected clip keeps its group's colour, enlarged, with a thin dark ring
        var q = geo.toPixel(p);
        ctx.beginPath(); ctx.arc(q[0], q[1], 4.5 * big, 0, 2 * Math.PI);
        ctx.fillStyle = data.lasso.colours[i]; ctx.fill();
        ctx.lineWidth = 1; ctx.strokeStyle = "#222"; ctx.stroke();
      });
      data.neighbours.xyz.forEach(function (p, i) {
        var q = geo.toPixel(p);
        ctx.beginPath(); ctx.arc(q[0], q[1], 6 * big, 0, 2 * Math.PI);
        ctx.fillStyle = data.neighbours.colours[i]; ctx.fill();
        ctx.lineWidth = 2; ctx.strokeStyle = "#111"; ctx.stroke();
      });
      data.selected.xyz.forEach(function (p, i) {
        var q = geo.toPixel(p), s = 11 * big;
        ctx.beginPath();
        ctx.moveTo(q[0], q[1] - s); ctx.lineTo(q[0] + s, q[1]); ctx.lineTo(q[0], q[1] + s);
        ctx.lineTo(q[0] - s, q[1]); ctx.closePath();
        ctx.fillStyle = data.selected.colours[i]; ctx.fill();
        ctx.lineWidth = 3; ctx.strokeStyle = "#000"; ctx.stroke();
      });
      (data.query ? data.query.xyz : []).forEach(function (p) {
        // a query by voice: a black five-pointed star with a white rim and the word "query"
        var q = geo.toPixel(p), outer = 13 * big, inner = 5.5 * big;
        ctx.beginPath();
        for (var i = 0; i < 10; i++) {
          var radius = i % 2 ? inner : outer, angle = -Math.PI / 2 + i * Math.PI / 5;
          ctx.lineTo(q[0] + radius * Math.cos(angle), q[1] + radius * Math.sin(angle));
        }
        ctx.closePath();
        ctx.lineWidth = 4; ctx.strokeStyle = "#fff"; ctx.stroke();
        ctx.fillStyle = data.query.colours[0] || "#000"; ctx.fill();
        ctx.font = "bold " + Math.round(12 * big) + "px sans-serif";
        ctx.lineWidth = 3; ctx.strokeText("query", q[0] + outer + 2, q[1] + 4);
        ctx.fillText("query", q[0] + outer + 2, q[1] + 4);
      });
      ctx.restore();
      record = {selected: data.selected.ids, neighbours: data.neighbours.ids,
                query: data.query && data.query.xyz.length ? geo.toPixel(data.query.xyz[0]) : null,
                lasso: data.lasso.ids.length, lassoIds: data.lasso.ids, lassoColours: data.lasso.colours,
                at: performance.now(), rect: r,
                pixels: data.selected.xyz.concat(data.neighbours.xyz).map(geo.toPixel)};
    }
    drawn[view] = record;
  }

  function refresh(view, force) {
    // redraw the layer of a view if its geometry changed since it was last drawn (or if forced)
    var gd = graphDiv(view), geo = gd && geometry(gd, dimOf(view));
    if (!geo) { return; }
    if (force || signatures[view] !== geo.signature || !gd.querySelector("canvas.dacviz-layer")) {
      signatures[view] = geo.signature;
      drawView(view, gd, geo);
    }
  }

  /* A 3D scene computes its camera matrices in its own render loop, on the frame after the mouse
   * moved: during a drag, and once after every event, the layer is looked at again on the next
   * frame (one frame per event, coalesced; nothing runs while the page is idle). */
  var frameAsked = {};
  function refreshNextFrame(view) {
    if (frameAsked[view]) { return; }
    frameAsked[view] = true;
    window.requestAnimationFrame(function () {
      frameAsked[view] = false;
      refresh(view);
    });
  }

  /* Each graph's Plotly events drive its layer. dcc.Graph plots into a div that React may replace,
   * and Plotly.purge (then a new plot) replaces a div's event emitter, Plotly.newPlot on a drawn
   * div drops its listeners: a MutationObserver sees every such re-render and binds again when
   * our listeners are gone, which a private "ping" event on the div tells (its listener answers). */
  var PING = "dacviz_ping";
  var pong = false;
  var handlers = {};
  function handlersOf(view) {
    if (!handlers[view]) {
      handlers[view] = {
        now: function () { refresh(view); refreshNextFrame(view); },
        soon: function () { refreshNextFrame(view); },
        click: onPointClick(view),
        ping: function () { pong = true; }
      };
    }
    return handlers[view];
  }

  function listening(gd) {
    pong = false;
    gd.emit(PING);
    return pong;
  }

  function bind(view) {
    var gd = graphDiv(view);
    if (!gd || typeof gd.on !== "function" || typeof gd.emit !== "function" || listening(gd)) { return; }
    var h = handlersOf(view);
    gd.on(PING, h.ping);
    gd.on("plotly_afterplot", h.now);     // every (re)draw: a new figure, a resize, a legend click
    gd.on("plotly_relayout", h.now);      // zoom, pan, camera, autorange: when done
    gd.on("plotly_redraw", h.now);
    gd.on("plotly_relayouting", h.soon);  // zoom, pan and the 3D camera during a drag
    gd.on("plotly_click", h.click);       // /clip-at: start the audio before the Dash round trip
    refresh(view, true);
    refreshNextFrame(view);
  }

  function bindAll() { views().forEach(function (v) { bind(v.name); }); restoreMaximised(); fitMapsSoon(); }

  /* The views share the window's height under the header: --maps-top is where the legend starts
   * (the CSS adds one legend row). Set only when it moves by more than 2 px: a new height makes
   * Plotly redraw, which at 100k clips costs a second. */
  var fitAsked = false;
  function fitMaps() {
    fitAsked = false;
    var legend = document.getElementById("legend");
    if (!legend) { return; }
    var top = Math.round(legend.getBoundingClientRect().top + window.scrollY);
    var root = document.documentElement, now = parseInt(root.style.getPropertyValue("--maps-top"), 10);
    if (isNaN(now) || Math.abs(now - top) > 2) { root.style.setProperty("--maps-top", top + "px"); }
  }
  function fitMapsSoon() {
    if (!fitAsked) { fitAsked = true; window.requestAnimationFrame(fitMaps); }
  }

  new MutationObserver(bindAll).observe(document.documentElement, {childList: true, subtree: true});
  window.addEventListener("resize", function () {
    views().forEach(function (v) { refreshNextFrame(v.name); });
    fitMapsSoon();
  });
  bindAll();

  function drawEarly(payload) {
    // a click's own neighbours from /clip-at: the box/lasso set and presentation size of the
    // page's current highlight are kept; the Dash payload replaces it when it arrives
    var current = highlight && highlight.views ? highlight : null;
    Object.keys(payload.views || {}).forEach(function (v) {
      if (current && current.views[v]) { payload.views[v].lasso = current.views[v].lasso; }
    });
    payload.presentation = document.body.classList.contains("presentation");
    paint(payload);
  }

  function drawHighlight(payload) {
    pendingHighlight = null;  // the Dash answer for the latest state: an early one is outdated
    return paint(payload);
  }

  function paint(payload) {
    highlight = payload;
    signatures = {};
    bindAll();
    // now, not on a later event: the page may be busy rendering the side panel
    views().forEach(function (v) { refresh(v.name, true); });
    return payload && payload.active ? "highlight" : "none";
  }

  function plotlyMissing() {
    // {view: [private Plotly fields the layer reads that are missing]} for every drawn view (tests)
    var out = {};
    views().forEach(function (v) {
      var gd = graphDiv(v.name);
      out[v.name] = gd ? plotly.missing(gd, v.dim) : ["no graph"];
    });
    return out;
  }

  /* ---------------------------------------------------------------- zoom and camera
   * A view's zoom (2D ranges) or camera (3D), as the user left it, for the representation it was
   * drawn from: the server draws the next figure of the same representation with it (a new
   * colouring, filter or comparison), where Plotly's uirevision would not (dcc.Graph replots
   * after each zoom with the figure Plotly mutated, which clears Plotly's record of the edit). */
  function keepView() {
    // arguments: each view's relayoutData, then each view's figure, then the kept state
    var args = Array.prototype.slice.call(arguments), table = views(), n = table.length;
    var out = Object.assign({}, args[2 * n] || {});
    var context = window.dash_clientside && window.dash_clientside.callback_context;
    var fired = (context && context.triggered || []).map(function (t) { return t.prop_id; });
    table.forEach(function (v, i) {
      if (fired.indexOf("view-" + v.name + ".relayoutData") < 0) { return; }
      var e = args[i], figure = args[n + i];
      var rep = figure && figure.layout && figure.layout.meta && figure.layout.meta.rep;
      if (!e || !rep) { return; }
      var entry = Object.assign({}, out[v.name] && out[v.name].rep === rep ? out[v.name] : {rep: rep});
      ["x", "y"].forEach(function (a) {
        var name = a + "axis";
        if (e[name + ".range[0]"] !== undefined && e[name + ".range[1]"] !== undefined) {
          entry[a] = [e[name + ".range[0]"], e[name + ".range[1]"]];
        } else if (Array.isArray(e[name + ".range"])) { entry[a] = e[name + ".range"]; }
        if (e[name + ".autorange"]) { delete entry[a]; }
      });
      if (e["scene.camera"]) { entry.camera = e["scene.camera"]; }
      out[v.name] = entry;
    });
    return out;
  }

  /* ---------------------------------------------------------------- selections */
  function clearOutlines() {
    // the box/lasso outline Plotly keeps drawn on a 2D view, and its dimming of the other points
    views().forEach(function (v) {
      var gd = graphDiv(v.name);
      if (v.dim !== 2 || !gd || !window.Plotly) { return; }
      var L = plotly.layout(gd);
      if (L && L.selections && L.selections.length) { window.Plotly.relayout(gd, {selections: []}); }
      window.Plotly.restyle(gd, {selectedpoints: [null]});
    });
  }

  function selectClip(clip) {
    // what a click on the clip's point does: select it (its neighbours light up) and play it
    if (window.dash_clientside && window.dash_clientside.set_props) {
      window.dash_clientside.set_props("selection", {data: {clip: clip, cursor: -1, play: clip,
                                                            nonce: Date.now()}});
    }
  }

  /* ---------------------------------------------------------------- one view maximised */
  function maximised() {
    var box = document.querySelector(".view-box.max");
    return box ? box.id.replace(/^box-/, "") : null;
  }

  function maximise(view) {
    // view: a view's name (it fills the window, the others fold), or null (all four again)
    var known = views().some(function (v) { return v.name === view; }) ? view : null;
    document.querySelectorAll(".view-box").forEach(function (box) {
      var on = known !== null && box.id === "box-" + known;
      box.classList.toggle("max", on);
      var button = box.querySelector(".maximise");
      if (button) { button.textContent = on ? "⤡" : "⤢"; button.setAttribute("aria-pressed", on ? "true" : "false"); }
    });
    document.body.classList.toggle("maximised", known !== null);
    var params = new URLSearchParams(window.location.search);
    if (known) { params.set("max", known); } else { params.delete("max"); }
    var url = window.location.pathname + "?" + params.toString();
    if (url !== window.location.pathname + window.location.search) { window.history.replaceState(null, "", url); }
    var box = known && document.getElementById("box-" + known);
    if (box) { box.scrollIntoView({block: "start", behavior: "instant"}); }
    window.dispatchEvent(new Event("resize"));  // Plotly fits the new size; the layer follows
    return known;
  }

  var maxRestored = false;
  function restoreMaximised() {
    // a link's max=: once, when the views are there
    if (maxRestored || !document.querySelector(".view-box") || !views().length) { return; }
    maxRestored = true;
    var wanted = new URLSearchParams(window.location.search).get("max");
    if (wanted) { maximise(wanted); }
  }

  // rows of the selection list: a click plays the clip, a double-click selects it
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".maximise");
    if (button) {
      var view = button.getAttribute("data-view");
      maximise(maximised() === view ? null : view);
      return;
    }
    if (event.target.id === "exit-presentation") {  // the controls are folded away in presentation
      var toggle = document.querySelector("#presentation input");
      if (toggle) { toggle.click(); }
      return;
    }
    var row = event.target.closest && event.target.closest(".lasso-row");
    if (row) { lastStart = {clip: null, at: -1e9}; startPlayer(parseInt(row.getAttribute("data-clip"), 10)); }
  });
  document.addEventListener("dblclick", function (event) {
    var row = event.target.closest && event.target.closest(".lasso-row");
    if (row) { selectClip(parseInt(row.getAttribute("data-clip"), 10)); }
  });

  /* ---------------------------------------------------------------- keyboard */
  function click(id) {
    var el = document.getElementById(id);
    if (el) { el.click(); }
  }

  document.addEventListener("keydown", function (event) {
    var tag = (event.target && event.target.tagName) || "";
    if (event.key === "Enter" && tag === "INPUT" && event.target.closest && event.target.closest("#k")) {
      event.target.blur();  // the k box applies its value now, not only when it loses focus
      return;
    }
    if (/INPUT|TEXTAREA|SELECT/.test(tag) || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var key = event.key;
    if (key === "ArrowRight" || key === "n") { click("key-next"); }
    else if (key === "ArrowLeft" || key === "p") { click("key-prev"); }
    else if (key === "Escape") { click("clear"); clearOutlines(); }
    else if (key === "r") {
      var player = document.getElementById("player");
      if (player && player.getAttribute("src")) { player.currentTime = 0; player.play(); }
    } else if (key === "t") {
      var toggle = document.querySelector("#presentation input");
      if (toggle) { toggle.click(); }
    } else { return; }
    event.preventDefault();
  });

  return {play: play, syncUrl: syncUrl, keepView: keepView, maximise: maximise, drawHighlight: drawHighlight, drawn: drawn, plotlyMissing: plotlyMissing,
          clearOutlines: clearOutlines};
})();
