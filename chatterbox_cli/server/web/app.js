// The chatterbox web page: lists come from the API, speech streams over the WebSocket as
// 16-bit PCM and plays as it arrives; Stop silences playback and cancels on the server.
"use strict";
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const extras = {};
for (const key of ["seed", "max_new_tokens"]) {
  if (params.has(key)) extras[key] = Number(params.get(key));
}
if (params.has("token")) localStorage.setItem("chatterbox-token", params.get("token"));
$("token").value = localStorage.getItem("chatterbox-token") || "";
$("token").addEventListener("change", () => {
  localStorage.setItem("chatterbox-token", $("token").value);
  connect();
});

let models = [], socket = null, audio = null, playing = [], nextAt = 0, current = null, seq = 0;
const status = (text) => { $("status").textContent = text; };
const headers = () => {
  const token = $("token").value;
  return token ? { Authorization: `Bearer ${token}` } : {};
};

async function api(path, options = {}) {
  const r = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
  return body;
}

function fill(select, values, label = (v) => v) {
  const keep = select.value;
  select.replaceChildren(...values.map((v) => new Option(label(v), v)));
  if (values.includes(keep)) select.value = keep;
}

async function loadVoices() {
  const model = $("model").value;
  const voices = (await api(`/v1/audio/voices?model=${encodeURIComponent(model)}`)).data;
  fill($("voice"), voices.map((v) => v.voice_id));
  const entry = models.find((m) => m.id === model);
  fill($("language"), entry ? entry.languages : ["en"]);
}

async function loadLists() {
  models = (await api("/v1/models")).data.filter((m) => m.loaded);
  fill($("model"), models.map((m) => m.id));
  await loadVoices();
}

function connect() {
  if (socket) socket.close();
  const token = $("token").value;
  const url = new URL("/v1/audio/stream", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (token) url.searchParams.set("token", token);
  socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  let header = null;
  socket.onmessage = (event) => {
    if (typeof event.data !== "string") {
      if (header && current && header.id === current.id) play(event.data, header.sample_rate);
      header = null;
      return;
    }
    const msg = JSON.parse(event.data);
    if (msg.type === "ready") {
      status(`Ready: ${msg.models.map((m) => m.id).join(", ")} on ${msg.device}`);
      loadLists().catch((e) => status(`Error: ${e.message}`));
    } else if (msg.type === "start" && current && msg.id === current.id) {
      current.rate = msg.sample_rate;
    } else if (msg.type === "chunk") {
      header = { ...msg, sample_rate: current ? current.rate : 24000 };
    } else if (msg.type === "done" && current && msg.id === current.id) {
      const stats = msg.stats || {};
      current.row.cells[2].textContent = stats.rtf != null ? stats.rtf.toFixed(2) : "–";
      current.row.cells[3].textContent = msg.cancelled ? "stopped" : "done";
      finish(msg.cancelled ? "Stopped" : "Done");
    } else if (msg.type === "error") {
      if (current && msg.id === current.id) current.row.cells[3].textContent = "error";
      finish(`Error: ${msg.message}`);
    }
  };
  socket.onclose = () => status("Disconnected; reload the page to reconnect");
}

function play(buffer, rate) {
  const pcm = new Int16Array(buffer);
  if (!pcm.length) return;
  if (current.ttfa == null) {
    current.ttfa = (performance.now() - current.t0) / 1000;
    current.row.cells[1].textContent = `${current.ttfa.toFixed(2)} s`;
    status(`Playing (first audio after ${current.ttfa.toFixed(2)} s)`);
  }
  const samples = Float32Array.from(pcm, (v) => v / 32768);
  const clip = audio.createBuffer(1, samples.length, rate);
  clip.copyToChannel(samples, 0);
  const source = audio.createBufferSource();
  source.buffer = clip;
  source.connect(audio.destination);
  nextAt = Math.max(nextAt, audio.currentTime + 0.05);
  source.start(nextAt);
  nextAt += clip.duration;
  playing.push(source);
  source.onended = () => { playing = playing.filter((s) => s !== source); };
}

function silence() {
  for (const source of playing) source.stop();
  playing = [];
  nextAt = 0;
}

function finish(text) {
  status(text);
  $("speak").disabled = false;
  $("stop").disabled = true;
  current = null;
}

$("speak-form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (!socket || socket.readyState !== WebSocket.OPEN) return status("Not connected yet");
  audio = audio || new AudioContext();
  audio.resume();
  silence();
  const id = `r${++seq}`;
  const row = $("history").tBodies[0].insertRow(0);
  for (const text of [$("text").value.slice(0, 40), "…", "…", "speaking"]) {
    row.insertCell().textContent = text;
  }
  current = { id, row, t0: performance.now(), ttfa: null, rate: 24000 };
  socket.send(JSON.stringify({
    type: "say", id, input: $("text").value, model: $("model").value, voice: $("voice").value,
    language: $("language").value, response_format: "pcm", ...extras,
  }));
  $("speak").disabled = true;
  $("stop").disabled = false;
  status("Speaking…");
});

$("stop").addEventListener("click", () => {
  silence();
  if (current && socket) socket.send(JSON.stringify({ type: "cancel", id: current.id }));
  $("stop").disabled = true;
});

$("model").addEventListener("change", () => loadVoices().catch((e) => status(`Error: ${e.message}`)));

$("voice-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData();
  form.append("name", $("voice-name").value);
  form.append("file", $("voice-file").files[0]);
  form.append("model", $("model").value);
  try {
    const made = await api("/v1/voices", { method: "POST", body: form });
    await loadVoices();
    $("voice").value = made.voice_id;
    status(`Voice ${made.voice_id} added`);
  } catch (e) {
    status(`Error: ${e.message}`);
  }
});

connect();
