/* Query by voice: record with the microphone (MediaRecorder, a level meter, at most the server's
 * limit) or drop an audio file; the clip goes to POST /query, which encodes it with the cache's
 * own models; the answer's vectors go into the page's "query" store, and the Dash callbacks
 * place it in every view and list its nearest clips exactly as for a clicked clip.
 *
 * MediaRecorder gives compressed audio (webm/opus in Chromium) that the server's soundfile does
 * not read, so a recording is decoded here (decodeAudioData) and sent as a 16-bit PCM WAV. A
 * dropped file is sent as it is (WAV, FLAC, OGG, MP3). The microphone is asked for without echo
 * cancellation, noise suppression or automatic gain: what the codec hears is the voice itself.
 */
window.dacvizQuery = (function () {
  "use strict";

  var recording = null;   // {recorder, stream, context, chunks, started, timer, meter}
  var opening = false;    // the microphone was asked for and has not answered yet
  var sent = 0;           // sequence number of the latest query sent: an older answer is dropped
  var timings = [];       // ms from "stop" (or drop) to the query drawn in the views: for benchmarks
  var pending = null;     // {nonce, since} of the query whose drawing is awaited
  var lastUrl = null;

  function panel() { return document.getElementById("query-panel"); }
  function limitSeconds() { return parseFloat((panel() || {}).getAttribute ? panel().getAttribute("data-max-seconds") : "10") || 10; }
  function limitBytes() { return parseInt(panel().getAttribute("data-max-bytes"), 10) || 8388608; }
  function off() { var p = panel(); return p ? p.getAttribute("data-off") : "no query panel"; }

  function say(text, kind) {
    var el = document.getElementById("query-status");
    if (!el) { return; }
    el.textContent = text;
    el.className = "query-status d-block" + (kind === "error" ? " text-danger" : kind === "busy" ? " text-muted" : "");
  }

  function button() { return document.getElementById("query-record"); }

  /* ------------------------------------------------------------ recording */
  function startRecording() {
    if (!navigator.mediaDevices || !window.MediaRecorder) {
      say("this browser cannot record here (the page needs https or localhost); drop a file instead", "error");
      return;
    }
    var constraints = {audio: {echoCancellation: false, noiseSuppression: false, autoGainControl: false,
                               channelCount: 1}};
    opening = true;
    navigator.mediaDevices.getUserMedia(constraints).then(function (stream) {
      opening = false;
      var recorder, context, analyser;
      try {
        recorder = new MediaRecorder(stream);
        context = new (window.AudioContext || window.webkitAudioContext)();
        analyser = context.createAnalyser();
        analyser.fftSize = 1024;
        context.createMediaStreamSource(stream).connect(analyser);
      } catch (err) {
        stream.getTracks().forEach(function (t) { t.stop(); });
        if (context) { context.close(); }
        say("cannot record: " + (err && err.message ? err.message : err), "error");
        return;
      }
      recording = {recorder: recorder, stream: stream, context: context, analyser: analyser,
                   chunks: [], started: performance.now()};
      recorder.ondataavailable = function (e) { if (e.data && e.data.size) { recording.chunks.push(e.data); } };
      recorder.onstop = finishRecording;
      recorder.start();
      recording.timer = window.setTimeout(stopRecording, limitSeconds() * 1000 - 150);
      button().textContent = "■ Stop";
      button().classList.add("recording");
      say("recording… press ■ Stop (at most " + limitSeconds() + " s)", "busy");
      meter();
    }).catch(function (err) {
      opening = false;
      say("no microphone: " + (err && err.message ? err.message : err), "error");
    });
  }

  function meter() {
    if (!recording) { return; }
    var canvas = document.getElementById("query-level"), data = new Float32Array(recording.analyser.fftSize);
    recording.analyser.getFloatTimeDomainData(data);
    var sum = 0;
    for (var i = 0; i < data.length; i++) { sum += data[i] * data[i]; }
    var rms = Math.sqrt(sum / data.length), db = 20 * Math.log10(rms + 1e-9);
    var level = Math.max(0, Math.min(1, (db + 60) / 60));  // -60 dBFS .. 0 dBFS
    if (canvas) {
      var g = canvas.getContext("2d");
      g.clearRect(0, 0, canvas.width, canvas.height);
      g.fillStyle = level > 0.9 ? "#d62728" : level > 0.6 ? "#e3b505" : "#2ca02c";
      g.fillRect(0, 0, canvas.width * level, canvas.height);
      canvas.setAttribute("data-level", level.toFixed(3));
    }
    var seconds = (performance.now() - recording.started) / 1000;
    button().textContent = "■ Stop " + seconds.toFixed(1) + " s";
    window.requestAnimationFrame(meter);
  }

  function stopRecording() {
    if (!recording || recording.recorder.state === "inactive") { return; }
    recording.stopped = performance.now();
    window.clearTimeout(recording.timer);
    recording.recorder.stop();
  }

  function finishRecording() {
    var done = recording;
    recording = null;
    done.stream.getTracks().forEach(function (t) { t.stop(); });
    button().textContent = "● Record";
    button().classList.remove("recording");
    var canvas = document.getElementById("query-level");
    if (canvas) { canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height); }
    var blob = new Blob(done.chunks, {type: done.recorder.mimeType || "audio/webm"});
    say("decoding the recording…", "busy");
    blob.arrayBuffer().then(function (bytes) { return done.context.decodeAudioData(bytes); })
      .then(function (audio) {
        done.context.close();
        var wav = wavFile(audio);
        send(new File([wav], "recording.wav", {type: "audio/wav"}), "your recording", done.stopped);
      })
      .catch(function (err) {
        done.context.close();
        say("the recording could not be decoded: " + (err && err.message ? err.message : err), "error");
      });
  }

  function wavFile(audio) {
    // an AudioBuffer -> a mono 16-bit PCM WAV (the channels averaged)
    var n = audio.length, rate = audio.sampleRate, mono = new Float32Array(n);
    for (var c = 0; c < audio.numberOfChannels; c++) {
      var data = audio.getChannelData(c);
      for (var i = 0; i < n; i++) { mono[i] += data[i] / audio.numberOfChannels; }
    }
    var buffer = new ArrayBuffer(44 + 2 * n), view = new DataView(buffer);
    function text(at, s) { for (var j = 0; j < s.length; j++) { view.setUint8(at + j, s.charCodeAt(j)); } }
    text(0, "RIFF"); view.setUint32(4, 36 + 2 * n, true); text(8, "WAVE"); text(12, "fmt ");
    view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
    view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true);
    view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, 2 * n, true);
    for (var k = 0; k < n; k++) {
      var s = Math.max(-1, Math.min(1, mono[k]));
      view.setInt16(44 + 2 * k, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    return buffer;
  }

  /* ------------------------------------------------------------ sending */
  function currentRep() {
    var gd = document.querySelector("#view-pca2 .js-plotly-plot");
    return gd && gd.layout && gd.layout.meta && gd.layout.meta.rep;
  }

  function send(file, name, since) {
    if (file.size > limitBytes()) {
      say("the file is larger than " + Math.round(limitBytes() / 1048576) + " MB", "error");
      return;
    }
    var form = new FormData(), link = new URLSearchParams(window.location.search);
    form.append("audio", file);
    form.append("vectors", "1");
    var rep = currentRep();
    if (rep) { form.append("rep", rep); }
    if (link.get("k")) { form.append("k", link.get("k")); }
    var player = document.getElementById("query-player");
    if (player) {
      if (lastUrl) { URL.revokeObjectURL(lastUrl); }
      lastUrl = URL.createObjectURL(file);
      player.src = lastUrl;
      player.hidden = false;
    }
    say("encoding " + name + " with this cache's models…", "busy");
    since = since || performance.now();
    var mine = ++sent;
    fetch("/query", {method: "POST", body: form})
      .then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
      .then(function (answer) {
        if (mine !== sent) { return; }  // a newer query was sent meanwhile: its answer counts
        if (!answer.ok) { say(answer.body.error || "the query failed", "error"); return; }
        var body = answer.body, nonce = Date.now();
        pending = {nonce: nonce, since: since};
        window.dash_clientside.set_props("query", {data: {
          nonce: nonce, vectors: body.vectors, duration_s: body.duration_s, name: name}});
        // what follows the representation shown (its nearest clips) is said under Listen
        say(name + " (" + body.duration_s.toFixed(2) + " s) encoded in " + Math.round(body.encode_ms) +
            " ms" + (body.untrained ? " (DAC UNTRAINED)" : "") + "; its nearest clips are under Listen");
        if (player) { var p = player.play(); if (p && p.catch) { p.catch(function () {}); } }
        if (window.dacviz && window.dacviz.showQueryPath) { window.dacviz.showQueryPath(body.path || null); }
        watchDrawn();
        if (window.dacvizSound) { window.dacvizSound.showQuery(body.sound || null, name); }
      })
      .catch(function (err) { if (mine === sent) { say("the server did not answer: " + err, "error"); } });
  }

  function watchDrawn() {
    // the time from stop to the query drawn in the views, kept for bench/bench_query.py
    var drawn = window.dacviz && window.dacviz.drawn;
    if (!pending) { return; }
    var ready = drawn && Object.keys(drawn).length && Object.keys(drawn).every(function (v) {
      return drawn[v].query && drawn[v].at > pending.since;
    });
    if (ready) { timings.push(performance.now() - pending.since); pending = null; return; }
    if (performance.now() - pending.since > 60000) { pending = null; return; }
    window.requestAnimationFrame(watchDrawn);
  }

  /* ------------------------------------------------------------ dropping or choosing a file */
  function chooseFile() {
    var input = document.createElement("input");
    input.type = "file";
    input.accept = "audio/*,.wav,.flac,.ogg,.mp3";
    input.onchange = function () { if (input.files && input.files[0]) { send(input.files[0], input.files[0].name); } };
    input.click();
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target.id === "query-record") {
      if (off()) { say(off(), "error"); return; }
      if (recording) { stopRecording(); } else if (!opening) { startRecording(); }
    } else if (target.id === "query-drop") {
      if (off()) { say(off(), "error"); return; }
      chooseFile();
    }
  });
  document.addEventListener("dragover", function (event) {
    if (event.target.id === "query-drop") { event.preventDefault(); event.target.classList.add("over"); }
  });
  document.addEventListener("dragleave", function (event) {
    if (event.target.id === "query-drop") { event.target.classList.remove("over"); }
  });
  document.addEventListener("drop", function (event) {
    if (event.target.id !== "query-drop") { return; }
    event.preventDefault();
    event.target.classList.remove("over");
    if (off()) { say(off(), "error"); return; }
    var file = event.dataTransfer && event.dataTransfer.files && event.dataTransfer.files[0];
    if (file) { send(file, file.name); }
  });

  return {timings: timings, send: send, stop: stopRecording};
})();
