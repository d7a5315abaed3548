/* dacviz client side, part 6: a clip as a path through the codec's space, heard as it moves.
 *
 * The clip the player holds is drawn in every view as the path of its frames (GET /path/<clip>,
 * explore/paths.py: PCA exact, t-SNE placed frame by frame), coloured by time from its start
 * (a ring) to its end (a square). While the audio plays a red marker runs along the path, in step
 * with the spectrogram's cursor (both read the player's currentTime); pressing on a point of the
 * path plays from that frame, and dragging along it scrubs. A shift-click on another clip draws
 * its path too, dashed (B), with the two paths' time-aligned distance (GET /paths/<a>/<b>). A
 * query by voice brings its own path (its answer's "path"), followed by the query's player.
 * Drawn on a canvas of its own above the highlight layer (assets/1b calls d.drawPaths after
 * each of its redraws); nothing runs while the page is idle. */
(function (d) {
  var MAX_ANSWERS = 100;
  var answers = new Map();        // "rep/clip" -> Promise of a /path answer ({error} when refused)
  var state = {rep: null, first: null, second: null, query: null, comparison: null, hover: null,
               dismissed: null, firstToken: 0, secondToken: 0};  // a token per slot: only the newest answer lands
  var drawnPaths = {};            // view -> {paths: [{name, clip, points, start, end}], marker, at}: tests
  var loop = null;                // the animation frame while a player plays
  var scrub = null;               // {path} while a press on a path holds
  var swallow = false;            // the mouse events of a press on a path are not Plotly's
  var storedShift = false;        // the "click-mode" store's shift, as the page last set it
  var HIT_PX = 6;               // a press this near a drawn frame plays it: the path is on top of the clips
  var RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [53, 183, 121]];  // A's time: start -> end
  var RAMP_B = [[127, 39, 4], [196, 76, 2], [241, 105, 19], [253, 174, 97]];  // B's (dashed): brown -> orange

  function player() { return document.getElementById("player"); }
  function queryPlayer() { return document.getElementById("query-player"); }
  function attr(name) { var p = player(); return p ? p.getAttribute(name) : null; }
  function currentRep() {
    var gd = d.graphDiv("pca2");
    return gd && gd.layout && gd.layout.meta && gd.layout.meta.rep;
  }
  function playingClip() {
    var m = /\/audio\/(\d+)/.exec((player() && player().getAttribute("src")) || "");
    return m ? parseInt(m[1], 10) : null;
  }
  function colour(t, ramp) {
    ramp = ramp || RAMP;
    var x = Math.max(0, Math.min(1, t)) * (ramp.length - 1), k = Math.min(Math.floor(x), ramp.length - 2), f = x - k;
    var c = ramp[k].map(function (v, i) { return Math.round(v + f * (ramp[k + 1][i] - v)); });
    return "rgb(" + c.join(",") + ")";
  }

  /* ---------------------------------------------------------------- answers */
  function fetchJson(url) {
    return fetch(url).then(function (r) {
      return r.json().catch(function () { return {error: "the server said " + r.status}; })
        .then(function (body) { return r.ok ? body : {error: body.error || "the server said " + r.status}; });
    }).catch(function () { return {error: "the server did not answer"}; });
  }
  function load(clip, rep) {
    var key = rep + "/" + clip;
    if (answers.has(key)) { return answers.get(key); }
    var url = (attr("data-path-template") || "").replace("{clip}", clip).replace("{rep}", encodeURIComponent(rep));
    var pending = fetchJson(url).then(function (answer) {
      if (answer.error) { answers.delete(key); }  // a refusal (busy, 409) is asked again next time
      return answer;
    });
    answers.set(key, pending);
    while (answers.size > MAX_ANSWERS) { answers.delete(answers.keys().next().value); }
    return pending;
  }

  function show(clip, answer) {
    // the clip the player holds: its path (a compared clip stays while either of the two plays);
    // ``answer``: its /path answer when the caller has it already (/clip-at sends it)
    var rep = currentRep();
    if (!rep || clip === null) { return; }
    if (answer && answer.rep === rep && answer.clip === clip && !answers.has(rep + "/" + clip)) {
      answers.set(rep + "/" + clip, Promise.resolve(answer));
    }
    var failed = state.first && state.first.answer && state.first.answer.error;  // asked again (busy, off)
    if (state.rep === rep && !failed &&
        ((state.first && state.first.clip === clip) || (state.second && state.second.clip === clip))) {
      return;
    }
    var token = ++state.firstToken;
    state.secondToken++;  // a comparison asked for the previous clip no longer lands
    state.rep = rep;
    state.first = {clip: clip, answer: null};
    state.second = null;
    state.comparison = null;
    return load(clip, rep).then(function (answer) {
      if (token !== state.firstToken) { return; }
      state.first.answer = answer;
      describe();
      redraw();
      state.first.drawnAt = performance.now();  // for benchmarks: when it was first drawn
    });
  }

  function compare(clip) {
    // shift-click: the clicked clip's path beside the shown one, and the two compared (one
    // request after the other: MFCC's both go to the encoder service, one at a time per client);
    // with no path shown yet, the clicked clip's own
    var rep = currentRep();
    if (!rep) { return; }
    if (!state.first) { show(clip); return; }
    if (state.first.clip === clip) { return; }
    var token = ++state.secondToken, first = state.first.clip;
    state.second = {clip: clip, answer: null};
    state.comparison = null;
    var url = (attr("data-paths-template") || "").replace("{first}", first).replace("{second}", clip)
      .replace("{rep}", encodeURIComponent(rep));
    load(clip, rep).then(function (answer) {
      if (token !== state.secondToken) { return null; }
      state.second.answer = answer;
      describe();
      redraw();
      return fetchJson(url);
    }).then(function (comparison) {
      if (!comparison || token !== state.secondToken) { return; }
      state.comparison = comparison;
      describe();
    });
  }

  function showQuery(answer) {
    // a query by voice's path (null: none for this representation), followed by its own player
    state.query = answer ? {answer: answer} : null;
    describe();
    redraw();
  }

  function clear() {
    state.firstToken++;
    state.secondToken++;
    state.dismissed = playingClip();  // not drawn again until the player loads a clip
    state.first = state.second = state.comparison = state.query = null;
    describe();
    redraw();
  }

  /* ---------------------------------------------------------------- the note under the sound */
  // built from DOM nodes and textContent only: labels and speakers are the collection's text
  function node(tag, content, props) {
    // an element of ``tag`` holding ``content``: a string (as text), a node, or a list of them
    var el = document.createElement(tag);
    Object.keys(props || {}).forEach(function (k) { el[k] = props[k]; });
    (Array.isArray(content) ? content : [content]).forEach(function (part) {
      if (part === null || part === undefined || part === "") { return; }
      el.appendChild(typeof part === "string" ? document.createTextNode(part) : part);
    });
    return el;
  }
  function strong(s) { return node("strong", s); }
  function muted(s) { return node("span", s, {className: "text-muted"}); }

  function describe() {
    var box = document.getElementById("path-info");
    if (!box) { return; }
    var lines = [], a = state.first && state.first.answer;
    if (a && a.error) {
      lines.push(muted("path A (clip " + state.first.clip + "): no path: " + a.error));
    } else if (a) {
      lines.push([strong("path A"), ": clip " + a.clip + " · " + a.label + " · " + a.speaker + " · " + a.n_frames +
                  " frames of " + Math.round(a.frame_s * 1000) + " ms · " + a.space +
                  (a.decimated ? " · " + a.decimated : ""),
                  a.untrained ? [" · ", strong("DAC UNTRAINED"), ": the path of a random codec"] : ""].flat());
      lines.push([node("span", "", {className: "path-ramp"}), " start (ring) → end (square); the red dot follows the " +
                  "audio; press or drag on a path to play from that frame; shift-click another clip to compare"]);
      lines.push([node("span", "", {id: "path-outside"}), " ",
                  node("button", "fit the views to the paths", {type: "button", id: "path-fit",
                       className: "btn btn-link btn-sm p-0 align-baseline",
                       title: "zoom every view out to hold the paths and the clips (double-click a view: back to the clips)"})]);
      lines.push(muted("placed: PCA " + a.views.pca2.placed + "; t-SNE " + a.views.tsne2.placed));
    }
    var b = state.second && state.second.answer, c = state.comparison;
    if (a && a.error) { b = c = null; }  // the same refusal, said once
    if (b && b.error) { lines.push(muted("path B (clip " + state.second.clip + "): no path: " + b.error)); }
    else if (b) {
      lines.push([strong("path B"), " (dashed, ", node("span", "", {className: "path-ramp path-ramp-b"}), "): clip " + b.clip + " · " + b.label + " · " + b.speaker + " · " +
                  b.n_frames + " frames"]);
    }
    if (c && c.error) { lines.push(muted(c.error)); }
    else if (c && c.dtw !== undefined) {
      var ref = c.reference;
      lines.push([strong("A↔B distance " + c.dtw.toFixed(3)), ": mean " + c.frame_distance + " over the best time " +
                  "alignment (DTW); chance: " + ref.how + ", median " + (ref.median === null ? "–" : ref.median.toFixed(3)) +
                  ", " + ref.closer + " of " + ref.clips + " closer than B" + (c.thinned ? " · " + c.thinned : "") +
                  (c.untrained ? " · DAC UNTRAINED" : "")]);
    }
    var q = state.query && state.query.answer;
    if (q) {
      lines.push([strong("query path"), ": " + q.n_frames + " frames · " + q.space + (q.decimated ? " · " + q.decimated : "")]);
    }
    box.replaceChildren.apply(box, lines.map(function (line) { return node("div", line); }));
    box.hidden = !lines.length;
  }

  /* ---------------------------------------------------------------- drawing */
  function repOf(view) {
    // the representation ``view`` draws now (the views are redrawn one by one after a switch)
    var gd = d.graphDiv(view);
    return gd && gd.layout && gd.layout.meta && gd.layout.meta.rep;
  }

  function paths(view) {
    // [{name, clip, answer, points, dashed, player}] drawable in ``view``
    var out = [], rep = repOf(view);
    [["A", state.first, false], ["B", state.second, true]].forEach(function (entry) {
      var p = entry[1], a = p && p.answer;
      if (a && !a.error && a.views && a.views[view] && a.rep === rep) {
        out.push({name: entry[0], clip: p.clip, answer: a, points: a.views[view].xyz, dashed: entry[2], player: player()});
      }
    });
    var q = state.query && state.query.answer;
    if (q && q.views && q.views[view] && q.rep === rep) {
      out.push({name: "query", clip: null, answer: q, points: q.views[view].xyz, dashed: false, player: queryPlayer()});
    }
    return out;
  }

  function heard(path) {
    // the path's player holds its clip (or the query)
    var p = path.player;
    if (!p || !p.getAttribute("src")) { return false; }
    return path.clip === null ? !p.hidden : playingClip() === path.clip;
  }

  function at(path, seconds) {
    // the fractional index into the drawn points at ``seconds`` of the audio
    var a = path.answer, frames = a.frames, f = seconds / a.frame_s - 0.5;
    f = Math.max(0, Math.min(a.n_frames - 1, f));
    var j = 0;
    while (j < frames.length - 1 && frames[j + 1] <= f) { j++; }
    if (j >= frames.length - 1) { return frames.length - 1; }
    return j + (f - frames[j]) / (frames[j + 1] - frames[j]);
  }

  function canvasOf(gd) {
    var holder = gd.querySelector(".svg-container"), L = d.plotly.layout(gd);
    if (!holder || !L) { return null; }
    var canvas = holder.querySelector(":scope > canvas.dacviz-path");
    var svgs = holder.querySelectorAll(":scope > .main-svg"), above = svgs.length > 1 ? svgs[svgs.length - 1] : null;
    if (!canvas) { canvas = document.createElement("canvas"); canvas.className = "dacviz-path"; }
    if (canvas.parentNode !== holder || canvas.nextSibling !== above) { holder.insertBefore(canvas, above); }
    var paper = d.plotly.paper(L), dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(paper.width * dpr) || canvas.height !== Math.round(paper.height * dpr)) {
      canvas.width = Math.round(paper.width * dpr); canvas.height = Math.round(paper.height * dpr);
      canvas.style.width = paper.width + "px"; canvas.style.height = paper.height + "px";
    }
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, paper.width, paper.height);
    return ctx;
  }

  function drawOne(ctx, path, pixels, big) {
    var n = pixels.length, ramp = path.name === "B" ? RAMP_B : RAMP;
    ctx.lineWidth = 2 * big;
    ctx.globalAlpha = 0.85;
    ctx.setLineDash(path.dashed ? [6 * big, 4 * big] : []);
    for (var i = 0; i < n - 1; i++) {
      ctx.beginPath();
      ctx.moveTo(pixels[i][0], pixels[i][1]);
      ctx.lineTo(pixels[i + 1][0], pixels[i + 1][1]);
      ctx.strokeStyle = colour(i / Math.max(1, n - 2), ramp);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
    if (n <= 120) {
      pixels.forEach(function (q, i) {
        ctx.beginPath(); ctx.arc(q[0], q[1], 1.8 * big, 0, 2 * Math.PI);
        ctx.fillStyle = colour(i / Math.max(1, n - 1), ramp); ctx.fill();
      });
    }
    var s = pixels[0], e = pixels[n - 1];
    ctx.beginPath(); ctx.arc(s[0], s[1], 5 * big, 0, 2 * Math.PI);
    ctx.fillStyle = "#fff"; ctx.fill(); ctx.lineWidth = 2 * big; ctx.strokeStyle = colour(0, ramp); ctx.stroke();
    ctx.fillStyle = colour(1, ramp);
    ctx.fillRect(e[0] - 4 * big, e[1] - 4 * big, 8 * big, 8 * big);
    ctx.font = "bold " + Math.round(11 * big) + "px sans-serif";
    ctx.lineWidth = 3; ctx.strokeStyle = "#fff"; ctx.strokeText(path.name, s[0] + 7 * big, s[1] - 5 * big);
    ctx.fillStyle = "#222"; ctx.fillText(path.name, s[0] + 7 * big, s[1] - 5 * big);
  }

  function drawPaths(view, gd, geo) {
    gd = gd || d.graphDiv(view);
    if (!gd || (!state.first && !state.query && !gd.querySelector("canvas.dacviz-path") && playingClip() === null)) {
      return;  // nothing to draw, nothing drawn
    }
    geo = geo || d.geometry(gd, d.dimOf(view));
    if (!geo) { return; }
    if (state.first && state.rep !== currentRep()) { resync(); }
    else if (!state.first && currentRep() && playingClip() !== null && playingClip() !== state.dismissed) {
      show(playingClip());  // the player got its clip before the views were drawn (a link)
    }
    var shown = paths(view);
    if (!shown.length && !gd.querySelector("canvas.dacviz-path")) {  // nothing drawn, nothing to clear
      drawnPaths[view] = {paths: [], marker: null, at: performance.now(), outside: 0, total: 0};
      return;
    }
    var ctx = canvasOf(gd);
    if (!ctx) { return; }
    var big = document.body.classList.contains("presentation") ? 1.5 : 1, record = {paths: [], marker: null, at: performance.now()};
    var r = geo.rect;
    ctx.save();
    ctx.beginPath(); ctx.rect(r[0], r[1], r[2], r[3]); ctx.clip();
    shown.forEach(function (path) {
      var pixels = path.points.map(geo.toPixel);
      if (!pixels.length) { return; }
      drawOne(ctx, path, pixels, big);
      record.paths.push({name: path.name, clip: path.clip, points: pixels.length, start: pixels[0],
                         end: pixels[pixels.length - 1]});
      if (heard(path) && (path.player.currentTime > 0 || !path.player.paused)) {
        var f = at(path, path.player.currentTime || 0), j = Math.floor(f), u = f - j;
        var p = pixels[j], q = pixels[Math.min(j + 1, pixels.length - 1)];
        var m = [p[0] + u * (q[0] - p[0]), p[1] + u * (q[1] - p[1])];
        ctx.beginPath(); ctx.arc(m[0], m[1], 8 * big, 0, 2 * Math.PI);
        ctx.fillStyle = "#fff"; ctx.fill();  // a white halo, then the spectrogram cursor's red, ringed black
        ctx.beginPath(); ctx.arc(m[0], m[1], 6 * big, 0, 2 * Math.PI);
        ctx.fillStyle = "#e4002b"; ctx.fill(); ctx.lineWidth = 2; ctx.strokeStyle = "#000"; ctx.stroke();
        record.marker = m;
        record.markerOf = path.name;
        record.time = path.player.currentTime || 0;
      }
      var h = state.hover;
      if (h && h.view === view && h.name === path.name && pixels[h.index]) {
        var hp = pixels[h.index], a = path.answer, label = path.name + " · frame " + a.frames[h.index] + " · " +
          (a.frames[h.index] * a.frame_s).toFixed(2) + " s: press to play from here";
        ctx.font = Math.round(11 * big) + "px sans-serif";
        var w = ctx.measureText(label).width + 8, x = Math.min(hp[0] + 8, r[0] + r[2] - w), y = Math.max(hp[1] - 22, r[1] + 2);
        ctx.fillStyle = "rgba(255,255,255,0.92)"; ctx.fillRect(x, y, w, 16);
        ctx.fillStyle = "#111"; ctx.fillText(label, x + 4, y + 12);
        ctx.beginPath(); ctx.arc(hp[0], hp[1], 4 * big, 0, 2 * Math.PI); ctx.strokeStyle = "#111"; ctx.lineWidth = 1.5; ctx.stroke();
      }
    });
    ctx.restore();
    var ranges = axisRanges(gd, d.dimOf(view));  // outside the view's axis ranges (for 3D: its box)
    record.outside = ranges ? shown.reduce(function (n, path) {
      return n + path.points.filter(function (p) {
        return ranges.some(function (range, k) {
          return p[k] < Math.min(range[0], range[1]) || p[k] > Math.max(range[0], range[1]);
        });
      }).length;
    }, 0) : 0;
    record.total = record.paths.reduce(function (n, p) { return n + p.points; }, 0);
    drawnPaths[view] = record;
    sayOutside();
  }

  function axisRanges(gd, dim) {
    // [[lo, hi] per axis] the view shows, from its computed layout (public fields)
    var L = d.plotly.layout(gd);
    if (!L) { return null; }
    var axes = dim === 3 ? (L.scene ? [L.scene.xaxis, L.scene.yaxis, L.scene.zaxis] : []) : [L.xaxis, L.yaxis];
    return axes.length && axes.every(function (a) { return a && a.range; }) ? axes.map(function (a) { return a.range; }) : null;
  }

  function sayOutside() {
    // how much of the paths each view leaves out (frames vary far more than clip averages)
    var el = document.getElementById("path-outside");
    if (!el) { return; }
    var parts = d.views().map(function (v) {
      var r = drawnPaths[v.name];
      return r && r.total && r.outside ? Math.round(100 * r.outside / r.total) + "% outside " + v.title : null;
    }).filter(Boolean);
    var said = parts.length ? "frames vary more than clip averages: " + parts.join(", ") + " ·" : "";
    if (el.textContent !== said) { el.textContent = said; }
  }

  function redraw() { d.views().forEach(function (v) { drawPaths(v.name); }); }

  function fit() {
    // every view zoomed out to hold its paths' points and the map's own range (a relayout, as a
    // zoom: the figure is not rebuilt)
    d.views().forEach(function (v) {
      var gd = d.graphDiv(v.name), L = gd && d.plotly.layout(gd), all = paths(v.name);
      if (!L || !all.length || !window.Plotly) { return; }
      var axes = v.dim === 3 ? ["scene.xaxis", "scene.yaxis", "scene.zaxis"] : ["xaxis", "yaxis"], update = {};
      var ranges = axisRanges(gd, v.dim);
      if (!ranges) { return; }
      axes.forEach(function (name, k) {
        var lo = Math.min(ranges[k][0], ranges[k][1]), hi = Math.max(ranges[k][0], ranges[k][1]);
        all.forEach(function (path) { path.points.forEach(function (p) { lo = Math.min(lo, p[k]); hi = Math.max(hi, p[k]); }); });
        var pad = 0.04 * (hi - lo || 1);
        update[name + ".range"] = [lo - pad, hi + pad];
      });
      // a 3D scene takes its new box on one of its next frames: both layers are drawn again then
      window.Plotly.relayout(gd, update).then(function () {
        window.setTimeout(function () { d.refresh(v.name, true); }, 120);
      });
    });
  }
  document.addEventListener("click", function (event) {
    if (event.target && event.target.id === "path-fit") { fit(); }
  });

  function resync() {
    // the page shows another representation: the shown clips' paths in it (a query's path is of
    // the representation it was made in, and is drawn only where the views show that one)
    var first = state.first && state.first.clip, second = state.second && state.second.clip;
    state.first = null;
    var shown = show(first);
    if (shown && second !== null && second !== undefined) {
      // after A's answer: MFCC's paths come from the encoder service, one request per client at a time
      shown.then(function () {
        if (state.first && state.first.clip === first && state.first.answer && !state.first.answer.error) {
          compare(second);
        }
      });
    }
  }

  /* ---------------------------------------------------------------- the audio drives the marker */
  function follow() {
    if (loop !== null) { window.cancelAnimationFrame(loop); loop = null; }
    redraw();
    var playing = [player(), queryPlayer()].some(function (p) { return p && !p.paused && !p.ended; });
    if (playing) { loop = window.requestAnimationFrame(follow); }
  }

  function attach() {
    var p = player(), qp = queryPlayer();
    if (!p || !qp || p._dacvizPath) { return !!(p && qp); }
    p._dacvizPath = true;
    p.addEventListener("loadstart", function () { state.dismissed = null; show(playingClip()); });
    [p, qp].forEach(function (el) {
      ["play", "seeked", "pause", "ended"].forEach(function (name) { el.addEventListener(name, follow); });
    });
    return true;
  }
  new MutationObserver(function (_records, observer) {
    if (attach()) { observer.disconnect(); }
  }).observe(document.documentElement, {childList: true, subtree: true});

  /* ---------------------------------------------------------------- press, drag, hover on a path */
  function viewUnder(event) {
    var name = d.viewAt(event.target);
    return name ? {view: name, gd: d.graphDiv(name)} : null;
  }

  function nearestPoint(view, gd, event, within) {
    // {path, index} of the drawn path point nearest the pointer (within ``within`` px), or null
    var geo = d.geometry(gd, d.dimOf(view));
    if (!geo) { return null; }
    var box = gd.getBoundingClientRect(), x = event.clientX - box.left, y = event.clientY - box.top, best = null;
    paths(view).forEach(function (path) {
      path.points.forEach(function (p, i) {
        var q = geo.toPixel(p), dist = Math.hypot(q[0] - x, q[1] - y);
        if (dist <= within && (!best || dist < best.dist)) { best = {path: path, index: i, dist: dist}; }
      });
    });
    return best;
  }

  function playFrom(path, index) {
    var p = path.player, a = path.answer;
    if (!p) { return; }
    if (path.clip !== null && playingClip() !== path.clip) {
      var src = (p.getAttribute("data-src-template") || "/audio/{clip}").replace("{clip}", path.clip);
      p.setAttribute("src", src);
    }
    var seconds = a.frames[index] * a.frame_s, go = function () {
      try { p.currentTime = seconds; } catch (e) { /* not loaded */ }
      var started = p.play();
      if (started && started.catch) { started.catch(function () {}); }
    };
    if (p.readyState >= 1) { go(); } else { p.addEventListener("loadedmetadata", go, {once: true}); }
  }

  document.addEventListener("pointerdown", function (event) {
    var under = viewUnder(event), shift = !!event.shiftKey;
    if (under && shift !== storedShift && window.dash_clientside && window.dash_clientside.set_props) {
      // the selection callback reads it: a shift-click selects nothing (callbacks/selection.py)
      window.dash_clientside.set_props("click-mode", {data: {shift: shift}});
      storedShift = shift;
    }
    d.lastPointerShift = shift;
    var hit = under && event.button === 0 && !event.shiftKey && nearestPoint(under.view, under.gd, event, HIT_PX);
    if (!hit) { return; }
    scrub = {path: hit.path, view: under.view, gd: under.gd, index: hit.index};
    swallow = true;
    event.stopPropagation(); event.preventDefault();
    playFrom(hit.path, hit.index);
  }, true);

  ["mousedown", "mouseup", "click", "dblclick"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      if (swallow) { event.stopPropagation(); event.preventDefault(); }
    }, true);
  });

  document.addEventListener("pointermove", function (event) {
    if (scrub && event.buttons === 0) { endPress(); }  // released where no pointerup reached us
    if (scrub) {
      var hit = nearestPoint(scrub.view, scrub.gd, event, 1e9);
      if (hit && hit.path.name === scrub.path.name && hit.index !== scrub.index) {
        scrub.index = hit.index;
        var p = scrub.path.player, a = scrub.path.answer;
        try { p.currentTime = a.frames[hit.index] * a.frame_s; } catch (e) { /* not loaded */ }
        redraw();
      }
      event.stopPropagation();
      return;
    }
    var under = viewUnder(event), before = state.hover;
    var near = under && (state.first || state.query) && event.buttons === 0 && nearestPoint(under.view, under.gd, event, HIT_PX);
    state.hover = near ? {view: under.view, name: near.path.name, index: near.index} : null;
    if (under) { under.gd.style.cursor = near ? "pointer" : ""; }
    if (JSON.stringify(before) !== JSON.stringify(state.hover)) {
      if (before) { drawPaths(before.view); }
      if (state.hover && (!before || before.view !== state.hover.view)) { drawPaths(state.hover.view); }
    }
  }, true);

  function endPress() {
    // the press on a path is over: its own mouseup and click still come, then Plotly gets events again
    scrub = null;
    if (swallow) { window.setTimeout(function () { swallow = false; }, 50); }
  }
  document.addEventListener("pointerup", endPress, true);
  document.addEventListener("pointercancel", endPress, true);
  window.addEventListener("blur", endPress);

  document.addEventListener("keydown", function (event) {
    var tag = (event.target && event.target.tagName) || "";
    if (event.key === "Escape" && !/INPUT|TEXTAREA|SELECT/.test(tag)) { clear(); }
  });
  document.addEventListener("click", function (event) {
    if (event.target && event.target.closest && event.target.closest("#clear")) { clear(); }
  });

  d.drawPaths = drawPaths;
  d.showPath = show;
  d.fitPaths = fit;
  d.drawnPaths = drawnPaths;
  d.comparePath = compare;
  d.showQueryPath = showQuery;
  d.pathState = state;
})(window.dacviz);
