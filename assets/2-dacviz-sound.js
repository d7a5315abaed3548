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

  /* ---------------------------------------------------------------- drawing */
  function drawBlock(ctx, s, x, y, w, h, duration) {
    // waveform (top quarter) and spectrogram (the rest) of one summary, time scaled to duration
    var wave = Math.round(h * 0.3), spec = h - wave, used = w * s.duration_s / duration;
    ctx.fillStyle = "#f4f4f4";
    ctx.fillRect(x, y, w, wave);
    ctx.strokeStyle = "#333";
    ctx.beginPath();
    var env = atob(s.envelope), n = s.envelope_columns;
    function sample(i) { var b = env.charCodeAt(i); return (b > 127 ? b - 256 : b) / 127; }  // int8
    for (var i = 0; i < n; i++) {
      var px = x + (i + 0.5) * used / n;
      ctx.moveTo(px, y + wave / 2 - sample(n + i) * wave / 2);
      ctx.lineTo(px, y + wave / 2 - sample(i) * wave / 2 + 0.5);
    }
    ctx.stroke();
    var bytes = atob(s.spectrogram), frames = s.n_frames, mels = s.n_mels;
    var image = ctx.createImageData(frames, mels);
    for (var m = 0; m < mels; m++) {
      for (var f = 0; f < frames; f++) {
        var v = bytes.charCodeAt(m * frames + f), c = LUT[v], o = ((mels - 1 - m) * frames + f) * 4;
        image.data[o] = c[0]; image.data[o + 1] = c[1]; image.data[o + 2] = c[2]; image.data[o + 3] = 255;
      }
    }
    var tmp = document.createElement("canvas");
    tmp.width = frames; tmp.height = mels;
    tmp.getContext("2d").putImageData(image, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(tmp, x, y + wave, used, spec);
    if (used < w) { ctx.fillStyle = "#eee"; ctx.fillRect(x + used, y, w - used, h); }
  }

  function draw(canvas, blocks, captions) {
    // blocks: [summary, ...] stacked, one time axis (the longest), the same dB scale
    if (!canvas) { return; }
    var dpr = window.devicePixelRatio || 1, w = canvas.clientWidth || 300;
    var h = 78 * blocks.length + 4;
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
    canvas.style.height = h + "px";
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    var duration = Math.max.apply(null, blocks.map(function (s) { return s.duration_s; }));
    blocks.forEach(function (s, i) {
      drawBlock(ctx, s, 0, i * 78, w, 74, duration);
      ctx.fillStyle = "rgba(255,255,255,0.85)";
      ctx.fillRect(0, i * 78, ctx.measureText(captions[i]).width + 6, 13);
      ctx.fillStyle = "#222"; ctx.font = "10px sans-serif";
      ctx.fillText(captions[i], 3, i * 78 + 10);
    });
    canvas.dataset.duration = duration;
    canvas.dataset.drawn = JSON.stringify({blocks: blocks.length, captions: captions,
                                           frames: blocks.map(function (s) { return s.n_frames; })});
    canvas._base = ctx.getImageData(0, 0, canvas.width, canvas.height);
  }

  function drawCursor() {
    var canvas = document.getElementById("sound-canvas"), p = player();
    if (!canvas || !canvas._base || !p) { return; }
    var ctx = canvas.getContext("2d"), dpr = window.devicePixelRatio || 1;
    ctx.putImageData(canvas._base, 0, 0);
    var duration = parseFloat(canvas.dataset.duration) || 1;
    var x = Math.min(p.currentTime / duration, 1) * canvas.width / dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.strokeStyle = "#e4002b"; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, canvas.height / dpr); ctx.stroke();
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
        caption.textContent = blocks.length ? "waveform and log-mel spectrogram, " + found[0].db_floor +
          "..0 dBFS" + (q > 0 && !found[1] ? " · no decoded audio for this clip" : "") : "";
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
        draw(canvas, [s], [caption]);
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

  function attach() {
    var p = player();
    if (!p || p._dacvizSound) { return !!p; }
    p._dacvizSound = true;
    p.addEventListener("loadstart", function () {
      var now = parse(p.getAttribute("src"));
      if (now) { show(now.clip); }
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

  return {choose: choose, toggle: toggle, show: show, refresh: refresh, summaries: summaries,
          MAX_SUMMARIES: MAX_SUMMARIES};
})();

// the functions Dash calls in the browser (viewer/callbacks/clientside.py: namespace "dacvizSound")
window.dash_clientside = Object.assign({}, window.dash_clientside);
window.dash_clientside.dacvizSound = {choose: window.dacvizSound.choose, refresh: window.dacvizSound.refresh};
