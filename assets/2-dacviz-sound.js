/* dacviz: the sound of the playing clip (waveform + log-mel spectrogram of the original, and of
 * the codec's reconstruction under it, same scale, a cursor that follows the audio), a neighbour's
 * on hover, and the original <-> decoded choice (A/B, key "a").
 *
 * The server sends each sound as explore.sound.sound_summary JSON (/sound/<clip>?v=&q=, a few KB:
 * a uint8 spectrogram, 0 = db_floor dBFS, 255 = 0 dBFS). The player's data-src-template is what a
 * click plays; choosing "decoded at q" rewrites it, so every later click plays that depth. */
window.dacvizSound = (function () {
  var summaries = new Map();        // "clip/q" -> Promise of a summary (or null), oldest first
  var MAX_SUMMARIES = 200;          // a few KB each: a long session keeps at most ~1 MB
  var shown = {clip: null, q: 0};   // what the canvas shows
  var drawToken = 0, hoverToken = 0;  // only the newest request draws
  var cursorFrame = null;
  var LUT = colourTable();

  function player() { return document.getElementById("player"); }
  function attr(name) { var p = player(); return p ? p.getAttribute(name) : null; }

  function colourTable() {
    // a perceptual dark-blue -> yellow ramp (viridis stops), 256 entries
    var stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
    var out = [];
    for (var i = 0; i < 256; i++) {
      var t = i / 255 * (stops.length - 1), k = Math.min(Math.floor(t), stops.length - 2), f = t - k;
      out.push(stops[k].map(function (c, j) { return Math.round(c + f * (stops[k + 1][j] - c)); }));
    }
    return out;
  }

  function parse(src) {
    // "/audio/12?v=..&q=4" -> {clip: 12, q: 4}
    var m = /\/audio\/(\d+)/.exec(src || "");
    if (!m) { return null; }
    var q = /[?&]q=(\d+)/.exec(src);
    return {clip: parseInt(m[1], 10), q: q ? parseInt(q[1], 10) : 0};
  }

  function load(clip, q) {
    // one request per clip and depth, however often it is asked for (hover, redraws)
    var key = clip + "/" + q;
    if (summaries.has(key)) { return summaries.get(key); }
    var url = (attr("data-sound-template") || "").replace("{clip}", clip).replace("{q}", q);
    var pending = fetch(url).then(function (r) { return r.ok ? r.json() : null; })
      .catch(function () { return null; })
      .then(function (s) { if (!s) { summaries.delete(key); } return s; });
    summaries.set(key, pending);
    while (summaries.size > MAX_SUMMARIES) { summaries.delete(summaries.keys().next().value); }
    return pending;
  }

  function abChoice() {
    var checked = document.querySelector("#ab input:checked");
    return checked ? parseInt(checked.value, 10) || 0 : 0;
  }

  function decodedDepths() {
    return Array.prototype.map.call(document.querySelectorAll("#ab input"), function (el) {
      return parseInt(el.value, 10) || 0;
    }).filter(function (q) { return q > 0; });
  }

  function sliderDepth() {
    // the codebook slider's q; null when the cache has no depths (its box is hidden)
    var box = document.getElementById("depth-box");
    if (!box || box.hidden) { return null; }
    var handle = document.querySelector("#depth [role=slider]");
    return handle ? parseInt(handle.getAttribute("aria-valuenow"), 10) : null;
  }

  function comparisonDepth() {
    // the reconstruction drawn under the original: the A/B choice, else the stored depth
    // nearest the codebook slider
    var chosen = abChoice(), depths = decodedDepths();
    if (chosen > 0 || !depths.length) { return chosen; }
    var q = sliderDepth() || depths[depths.length - 1];
    return depths.reduce(function (best, d) { return Math.abs(d - q) < Math.abs(best - q) ? d : best; });
  }

  /* ---------------------------------------------------------------- drawing
   * A figure per sound, on a canvas: a caption line above (outside the drawing), the waveform
   * strip, the log-mel spectrogram with its frequency axis in Hz on the left (the mel bands
   * placed by their centre frequencies) and a colour bar in dBFS on the right; blocks stacked
   * on one time axis in seconds (the longest), drawn under the last one. */
  var AXIS_LEFT = 40, COLOURBAR = 50, CAPTION = 16, TIME_AXIS = 28, GAP = 6;
  var SIZES = {main: {wave: 34, spec: 150}, hover: {wave: 22, spec: 84}, query: {wave: 28, spec: 120}};
  var HZ_TICKS = [125, 250, 500, 1000, 2000, 4000, 8000, 16000];

  function fontPx(px) {
    // canvas text follows presentation mode (a projector): 1.3x
    return Math.round(px * (document.body.classList.contains("presentation") ? 1.3 : 1)) + "px sans-serif";
  }

  function hzLabel(f) { return f >= 1000 ? (f / 1000) + "k" : String(f); }

  function bandOf(hz, centres) {
    // the (fractional) mel band whose centre is at hz, interpolated between centres; null outside
    if (!centres || !centres.length || hz < centres[0] || hz > centres[centres.length - 1]) { return null; }
    for (var i = 1; i < centres.length; i++) {
      if (hz <= centres[i]) { return i - 1 + (hz - centres[i - 1]) / (centres[i] - centres[i - 1]); }
    }
    return centres.length - 1;
  }

  function timeStep(duration, width) {
    // a round tick step giving a label every 45 px or more
    var steps = [0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20, 30];
    for (var i = 0; i < steps.length; i++) { if (width * steps[i] / duration >= 45) { return steps[i]; } }
    return steps[steps.length - 1];
  }

  function spectrogramImage(s) {
    var bytes = atob(s.spectrogram), frames = s.n_frames, mels = s.n_mels;
    var tmp = document.createElement("canvas");
    tmp.width = frames; tmp.height = mels;
    var tctx = tmp.getContext("2d"), image = tctx.createImageData(frames, mels);
    for (var m = 0; m < mels; m++) {
      for (var f = 0; f < frames; f++) {
        var v = bytes.charCodeAt(m * frames + f), c = LUT[v], o = ((mels - 1 - m) * frames + f) * 4;
        image.data[o] = c[0]; image.data[o + 1] = c[1]; image.data[o + 2] = c[2]; image.data[o + 3] = 255;
      }
    }
    tctx.putImageData(image, 0, 0);
    return tmp;
  }

  function drawBlock(ctx, s, box, duration, size) {
    // one summary: waveform strip, spectrogram, its Hz axis and dBFS colour bar; returns the ticks
    var x = box.x, w = box.w, used = w * s.duration_s / duration, y = box.y;
    ctx.fillStyle = "#f4f4f4";
    ctx.fillRect(x, y, w, size.wave);
    ctx.strokeStyle = "#333"; ctx.lineWidth = 1;
    ctx.beginPath();
    var env = atob(s.envelope), n = s.envelope_columns, mid = y + size.wave / 2;
    function sample(i) { var b = env.charCodeAt(i); return (b > 127 ? b - 256 : b) / 127; }  // int8
    for (var i = 0; i < n; i++) {
      var px = x + (i + 0.5) * used / n;
      ctx.moveTo(px, mid - sample(n + i) * size.wave / 2);
      ctx.lineTo(px, mid - sample(i) * size.wave / 2 + 0.5);
    }
    ctx.stroke();
    var top = y + size.wave, bottom = top + size.spec;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(spectrogramImage(s), x, top, used, size.spec);
    if (used < w) { ctx.fillStyle = "#eee"; ctx.fillRect(x + used, y, w - used, size.wave + size.spec); }
    // frequency axis (Hz): ticks where a round frequency's band lies
    ctx.fillStyle = "#333"; ctx.strokeStyle = "#333"; ctx.font = fontPx(10);
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    var freq = [], last = 1e9;
    HZ_TICKS.forEach(function (f) {
      var band = bandOf(f, s.mel_hz);
      if (band === null) { return; }
      var ty = bottom - (band + 0.5) / s.n_mels * size.spec;
      if (last - ty < 11) { return; }  // too close to the one below
      last = ty;
      ctx.beginPath(); ctx.moveTo(x - 3, ty); ctx.lineTo(x, ty); ctx.stroke();
      ctx.fillText(hzLabel(f), x - 5, ty);
      freq.push(hzLabel(f));
    });
    ctx.textAlign = "left"; ctx.textBaseline = "bottom";
    ctx.fillText("Hz", 2, top - 1);
    // colour bar (dBFS), the same scale as every block
    var bx = x + w + 8, bw = 9, floor = s.db_floor, bars = [];
    for (var r = 0; r < size.spec; r++) {
      var c = LUT[Math.round(255 * (1 - r / (size.spec - 1)))];
      ctx.fillStyle = "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")";
      ctx.fillRect(bx, top + r, bw, 1);
    }
    ctx.fillStyle = "#333"; ctx.textBaseline = "middle";
    var stepDb = size.spec >= 120 ? 20 : 50;
    for (var db = 0; db >= floor && bars.length < 12; db -= stepDb) {
      var yy = top + (db / floor) * (size.spec - 1);
      ctx.fillText(String(db), bx + bw + 3, yy);
      bars.push(db);
    }
    ctx.textBaseline = "bottom";
    ctx.fillText("dBFS", bx - 2, top - 7);
    return {freq: freq, colourbar: bars};
  }

  function drawTimeAxis(ctx, x, w, y, duration) {
    var step = timeStep(duration, w), ticks = [];
    ctx.strokeStyle = "#333"; ctx.fillStyle = "#333"; ctx.font = fontPx(10);
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + w, y); ctx.stroke();
    for (var t = 0; t <= duration + 1e-9 && ticks.length < 40; t += step) {
      var tx = x + t / duration * w, label = String(Math.round(t * 1000) / 1000);
      ctx.beginPath(); ctx.moveTo(tx, y); ctx.lineTo(tx, y + 3); ctx.stroke();
      ctx.fillText(label, tx, y + 4);
      ticks.push(label);
    }
    ctx.textAlign = "right";
    ctx.fillText("time (s)", x + w, y + 15);
    return ticks;
  }

  function draw(canvas, blocks, captions, kind) {
    // blocks: [summary, ...] stacked, one time axis (the longest), the same dB scale
    if (!canvas) { return; }
    var size = SIZES[kind || "main"];
    var dpr = window.devicePixelRatio || 1, w = canvas.clientWidth || 300;
    var blockH = CAPTION + size.wave + size.spec + GAP, h = blockH * blocks.length + TIME_AXIS;
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
    canvas.style.height = h + "px";
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "white"; ctx.fillRect(0, 0, w, h);
    var plotW = Math.max(w - AXIS_LEFT - COLOURBAR, 40);
    var duration = Math.max.apply(null, blocks.map(function (s) { return s.duration_s; }));
    var axes = null;
    blocks.forEach(function (s, i) {
      var y = i * blockH;
      ctx.fillStyle = "#222"; ctx.font = fontPx(11); ctx.textAlign = "left"; ctx.textBaseline = "alphabetic";
      ctx.fillText(captions[i], AXIS_LEFT, y + 12);
      axes = drawBlock(ctx, s, {x: AXIS_LEFT, y: y + CAPTION, w: plotW}, duration, size);
    });
    var timeTicks = drawTimeAxis(ctx, AXIS_LEFT, plotW, blockH * blocks.length - GAP + 1, duration);
    canvas.dataset.duration = duration;
    canvas.dataset.plotLeft = AXIS_LEFT;
    canvas.dataset.plotWidth = plotW;
    canvas.dataset.plotHeight = h - TIME_AXIS;
    canvas.dataset.drawn = JSON.stringify({
      blocks: blocks.length, captions: captions, frames: blocks.map(function (s) { return s.n_frames; }),
      freqTicks: axes.freq, timeTicks: timeTicks, colourbar: axes.colourbar, size: [w, h],
      spectrogram: [plotW, size.spec]});
  }

  function drawCursor() {
    // the line that follows the audio: an element over the canvas, moved (no canvas redraw)
    var canvas = document.getElementById("sound-canvas"), p = player();
    var line = document.getElementById("sound-cursor");
    if (!canvas || !p || !canvas.dataset.drawn) { return; }
    if (!line) {
      line = document.createElement("div");
      line.id = "sound-cursor";
      line.className = "sound-cursor";
      canvas.parentNode.insertBefore(line, canvas.nextSibling);
    }
    var duration = parseFloat(canvas.dataset.duration) || 1;
    var left = parseFloat(canvas.dataset.plotLeft) || 0, width = parseFloat(canvas.dataset.plotWidth) || 1;
    var x = canvas.offsetLeft + left + Math.min(p.currentTime / duration, 1) * width;
    line.style.top = canvas.offsetTop + "px";
    line.style.height = (parseFloat(canvas.dataset.plotHeight) || canvas.clientHeight) + "px";
    line.style.transform = "translateX(" + x.toFixed(1) + "px)";
  }

  function follow() {
    // one loop at most, only while the audio really plays
    if (cursorFrame !== null) { window.cancelAnimationFrame(cursorFrame); cursorFrame = null; }
    drawCursor();
    var p = player();
    if (p && !p.paused && !p.ended && !p.error) { cursorFrame = window.requestAnimationFrame(follow); }
  }

  function stopFollowing() {
    if (cursorFrame !== null) { window.cancelAnimationFrame(cursorFrame); cursorFrame = null; }
    drawCursor();
  }

  function onError() {
    // a clip without decoded audio at the chosen depth: play its original instead, and say so
    var p = player(), now = parse(p && p.getAttribute("src")), template = attr("data-audio-template");
    stopFollowing();
    if (!now || now.q === 0 || !template) { return; }
    var caption = document.getElementById("sound-caption");
    if (caption) { caption.textContent = "clip " + now.clip + " has no audio decoded from " + now.q +
                                         " codebooks: playing the original"; }
    p.setAttribute("src", template.replace("{clip}", now.clip).replace("{q}", 0));
    var started = p.play();
    if (started && started.catch) { started.catch(function () {}); }
  }

  function show(clip) {
    var q = comparisonDepth(), token = ++drawToken;
    shown = {clip: clip, q: q};
    var wanted = [load(clip, 0)].concat(q > 0 ? [load(clip, q)] : []);
    Promise.all(wanted).then(function (found) {
      if (token !== drawToken) { return; }  // a newer clip or depth was asked for meanwhile
      var blocks = [], captions = [];
      if (found[0]) { blocks.push(found[0]); captions.push("clip " + clip + " · original"); }
      if (found[1]) { blocks.push(found[1]); captions.push("decoded from " + q + " codebooks"); }
      var caption = document.getElementById("sound-caption");
      if (caption) {
        caption.textContent = blocks.length ? "waveform and log-mel spectrogram (" + blocks[0].n_mels +
          " mel bands, " + Math.round(blocks[0].hop_s * 1000) + " ms hop), colour in dBFS" +
          (q > 0 && !found[1] ? " · no decoded audio for this clip" : "") : "";
      }
      if (blocks.length) { draw(document.getElementById("sound-canvas"), blocks, captions); drawCursor(); }
    });
  }

  function showHover(clip, rank) {
    var canvas = document.getElementById("hover-canvas");
    var caption = "neighbour #" + rank + " · clip " + clip;
    if (canvas && !canvas.hidden && canvas.dataset.caption === caption) { return; }  // drawn already
    var token = ++hoverToken;
    load(clip, 0).then(function (s) {
      var canvas = document.getElementById("hover-canvas");
      if (s && canvas && token === hoverToken) {
        canvas.hidden = false;
        draw(canvas, [s], [caption], "hover");
        canvas.dataset.caption = caption;
      }
    });
  }

  /* ---------------------------------------------------------------- A/B */
  function choose(q) {
    // the player plays clip "clip" at depth q from now on (0: the original)
    var p = player(), template = attr("data-audio-template");
    if (!p || !template) { return window.dash_clientside ? window.dash_clientside.no_update : null; }
    q = parseInt(q, 10) || 0;
    p.setAttribute("data-src-template", template.replace("{q}", q));
    var now = parse(p.getAttribute("src"));
    if (now && now.q !== q) {
      p.setAttribute("src", template.replace("{clip}", now.clip).replace("{q}", q));
      try { p.currentTime = 0; } catch (e) { /* not loaded */ }
      var started = p.play();
      if (started && started.catch) { started.catch(function () {}); }
    }
    return "source " + q;
  }

  function toggle() {
    // original <-> decoded at the depth nearest the slider
    var target = abChoice() > 0 ? 0 : comparisonDepth();
    var input = document.querySelector('#ab input[value="' + target + '"]');
    if (input) { input.click(); }
  }

  document.addEventListener("keydown", function (event) {
    var tag = (event.target && event.target.tagName) || "";
    if (/INPUT|TEXTAREA|SELECT/.test(tag) || event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.key === "a") { toggle(); event.preventDefault(); }
  });

  function showTime() {
    // the position and length in seconds (the browser's control reads 0:00 / 0:00 under a second)
    var p = player(), out = document.getElementById("player-time");
    if (!p || !out) { return; }
    var length = p.duration;
    out.textContent = isFinite(length) && length > 0 ?
      (p.currentTime || 0).toFixed(2) + " / " + length.toFixed(2) + " s" : "";
  }

  function attach() {
    var p = player();
    if (!p || p._dacvizSound) { return !!p; }
    p._dacvizSound = true;
    p.addEventListener("loadstart", function () {
      var now = parse(p.getAttribute("src"));
      if (now) { show(now.clip); }
    });
    ["timeupdate", "durationchange", "loadedmetadata", "emptied", "seeked", "ended"].forEach(function (type) {
      p.addEventListener(type, showTime);
    });
    p.addEventListener("play", follow);
    p.addEventListener("seeked", drawCursor);
    p.addEventListener("ended", stopFollowing);
    p.addEventListener("pause", stopFollowing);
    p.addEventListener("error", onError);
    return true;
  }

  document.addEventListener("mouseover", function (event) {
    var row = event.target && event.target.closest && event.target.closest("#neighbour-items li[data-clip]");
    if (!row) { return; }
    var rank = row.querySelector(".rank");
    showHover(parseInt(row.getAttribute("data-clip"), 10), rank ? rank.textContent.replace("#", "") : "?");
  });

  // the player is rendered by Dash after this script runs: attach once it exists
  new MutationObserver(function (_records, observer) {
    if (attach()) { observer.disconnect(); }
  }).observe(document.documentElement, {childList: true, subtree: true});

  function refresh() {
    // the slider or the A/B choice moved: redraw the comparison of the clip on show
    if (shown.clip !== null) { show(shown.clip); }
    return window.dash_clientside ? window.dash_clientside.no_update : null;
  }

  function showQuery(summary, name) {
    // the query by voice's recording, as the server heard it (assets/3-dacviz-query.js)
    var canvas = document.getElementById("query-sound");
    if (!canvas) { return; }
    canvas.hidden = !summary;
    if (!summary) { return; }
    try { draw(canvas, [summary], [(name || "your recording") + " · as encoded"], "query"); }
    catch (e) { canvas.hidden = true; }  // a summary it cannot draw: no figure rather than a broken page
  }

  return {choose: choose, toggle: toggle, show: show, refresh: refresh, showQuery: showQuery,
          summaries: summaries, MAX_SUMMARIES: MAX_SUMMARIES};
})();

// the functions Dash calls in the browser (viewer/callbacks/clientside.py: namespace "dacvizSound")
window.dash_clientside = Object.assign({}, window.dash_clientside);
window.dash_clientside.dacvizSound = {choose: window.dacvizSound.choose, refresh: window.dacvizSound.refresh};
