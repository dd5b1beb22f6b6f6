// tfstyle's page: pick a photo and a style (a served model, or any painting for the
// any-painting network), get the stylized PNG back.
// It uses the server's TF Serving REST API: the model's metadata, then :predict on the
// `stylize_bytes` signature with the photo as {"b64": ...} (columnar format, so inputs
// without a batch dimension, like a multi-style `style_weights` vector, fit too).
"use strict";

const SIGNATURE = "stylize_bytes";
const $ = (id) => document.getElementById(id);
let models = [];        // [{name, version, style_names?}]
let signature = null;   // {bytesInput, controls: [{input, dims, sliders}]}
let resultUrl = null;

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Error(`HTTP ${response.status} from ${url}`);
  }
  if (!response.ok || body.error) throw new Error(body.error || `HTTP ${response.status} from ${url}`);
  return body;
}

async function loadModels() {
  ({ models } = await getJSON("/tfstyle/models"));
  // Trained styles first; the any-painting network, which needs a painting too, last.
  models.sort((a, b) => (a.name === "any_painting") - (b.name === "any_painting"));
  $("model").replaceChildren(...models.map((m) => new Option(`${m.name} (version ${m.version})`, m.name)));
  if (!models.length) throw new Error("The server has no models yet: export one into its --model_base_path.");
  await loadSignature();
}

function slider(label, value) {
  const wrap = document.createElement("label");
  const input = Object.assign(document.createElement("input"), { type: "range", min: 0, max: 1, step: 0.05, value });
  const shown = document.createElement("output");
  shown.textContent = Number(value).toFixed(2);
  input.addEventListener("input", () => (shown.textContent = Number(input.value).toFixed(2)));
  wrap.append(label, input, shown);
  $("controls").append(wrap);
  return input;
}

// Reads the model's signature: the string input `image_bytes` takes the photo, and
// `style_image_bytes` (the any-painting network) a painting the user uploads; float inputs
// named `style_weights` (one slider per style) and `strength` (one slider) get controls.
async function loadSignature() {
  signature = null;
  $("controls").replaceChildren();
  $("painting_label").hidden = true;
  $("painting").required = false;
  const name = $("model").value;
  const meta = await getJSON(`/v1/models/${encodeURIComponent(name)}/metadata`);
  const sig = meta.metadata.signature_def.signature_def[SIGNATURE];
  if (!sig) throw new Error(`model ${name} has no ${SIGNATURE} signature`);
  const inputs = Object.entries(sig.inputs);
  const strings = inputs.filter(([, info]) => info.dtype === "DT_STRING").map(([input]) => input);
  const bytes = strings.find((input) => input !== "style_image_bytes");
  if (!bytes) throw new Error(`${SIGNATURE} of ${name} has no string input`);
  const paintingInput = strings.find((input) => input === "style_image_bytes") || null;
  $("painting_label").hidden = !paintingInput;
  $("painting").required = Boolean(paintingInput);
  const styleNames = (models.find((m) => m.name === name) || {}).style_names || [];
  const controls = [];
  for (const [input, info] of inputs) {
    const dims = ((info.tensor_shape || {}).dim || []).map((d) => Number(d.size));
    if (info.dtype !== "DT_FLOAT") continue;
    if (input === "style_weights") {
      const n = dims[dims.length - 1] > 0 ? dims[dims.length - 1] : styleNames.length;
      const sliders = [...Array(n).keys()].map((i) => slider(styleNames[i] || `style ${i + 1}`, i === 0 ? 1 : 0));
      controls.push({ input, dims, sliders });
    } else if (input === "strength") {
      controls.push({ input, dims, sliders: [slider("strength", 1)] });
    } else {
      throw new Error(`${SIGNATURE} of ${name} has an input this page does not know: ${input}`);
    }
  }
  signature = { bytesInput: bytes, paintingInput, controls };
}

// A control's value in its input's shape: style_weights a vector, strength a scalar, each
// wrapped in one list per further dimension (a batch dimension).
function controlValue({ input, dims, sliders }) {
  let value = sliders.map((s) => Number(s.value));
  if (input !== "style_weights") value = value[0];
  for (let extra = dims.length - (Array.isArray(value) ? 1 : 0); extra > 0; extra--) value = [value];
  return value;
}

// The photo drawn upright (browsers apply EXIF orientation) at most `maxSide` px, as JPEG bytes.
async function preparedPhoto(file, maxSide) {
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, maxSide / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.95));
  return { blob, width: canvas.width, height: canvas.height };
}

function base64Of(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.slice(reader.result.indexOf(",") + 1));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

async function stylize() {
  const file = $("photo").files[0];
  const name = $("model").value;
  if (!file || !signature) return;
  $("go").disabled = true;
  const started = performance.now();
  try {
    say("Stylizing…");
    const photo = await preparedPhoto(file, Number($("max_side").value));
    const inputs = { [signature.bytesInput]: [{ b64: await base64Of(photo.blob) }] };
    if (signature.paintingInput) {
      const painting = $("painting").files[0];
      if (!painting) throw new Error("choose a painting: this network takes any picture as its style");
      inputs[signature.paintingInput] = [{ b64: await base64Of((await preparedPhoto(painting, 1024)).blob) }];
    }
    for (const control of signature.controls) inputs[control.input] = controlValue(control);
    const reply = await getJSON(`/v1/models/${encodeURIComponent(name)}:predict`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ signature_name: SIGNATURE, inputs }),
    });
    const outputs = Array.isArray(reply.outputs) ? reply.outputs : Object.values(reply.outputs)[0];
    const png = Uint8Array.from(atob(outputs[0].b64), (c) => c.charCodeAt(0));
    if (resultUrl) URL.revokeObjectURL(resultUrl);
    resultUrl = URL.createObjectURL(new Blob([png], { type: "image/png" }));
    $("result").src = resultUrl;
    Object.assign($("download"), { href: resultUrl, hidden: false,
      download: `${file.name.replace(/\.[^.]*$/, "")}_${name}.png` });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    say(`Done: ${photo.width}x${photo.height} with ${name} in ${seconds} s.`);
  } catch (e) {
    say(`Error: ${e.message}`, true);
  } finally {
    $("go").disabled = false;
  }
}

// A short clip: its bytes go to POST /tfstyle/video/NAME (the style's current blend and strength
// as query parameters), an .mp4 comes back.
let clipUrl = null;
async function stylizeClip() {
  const file = $("clip").files[0];
  const name = $("model").value;
  if (!file || !signature) return;
  $("clip_go").disabled = true;
  const started = performance.now();
  const status = (text, isError = false) => {
    $("clip_status").textContent = text;
    $("clip_status").className = isError ? "error" : "";
  };
  try {
    status("Stylizing the clip…");
    const query = new URLSearchParams();
    for (const control of signature.controls) query.set(control.input, control.sliders.map((s) => s.value).join(","));
    const response = await fetch(`/tfstyle/video/${encodeURIComponent(name)}?${query}`, { method: "POST", body: file });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.error || `HTTP ${response.status}`);
    }
    if (clipUrl) URL.revokeObjectURL(clipUrl);
    clipUrl = URL.createObjectURL(await response.blob());
    Object.assign($("clip_result"), { src: clipUrl, hidden: false });
    Object.assign($("clip_download"), { href: clipUrl, hidden: false,
      download: `${file.name.replace(/\.[^.]*$/, "")}_${name}.mp4` });
    status(`Done with ${name} in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
  } catch (e) {
    status(`Error: ${e.message}`, true);
  } finally {
    $("clip_go").disabled = false;
  }
}

$("clip_form").addEventListener("submit", (event) => {
  event.preventDefault();
  stylizeClip();
});
$("photo").addEventListener("change", () => {
  const file = $("photo").files[0];
  if (file) $("source").src = URL.createObjectURL(file);
});
$("model").addEventListener("change", () => loadSignature().catch((e) => say(`Error: ${e.message}`, true)));
$("form").addEventListener("submit", (event) => {
  event.preventDefault();
  stylize();
});
loadModels().then(() => say("Choose a photo and a style."), (e) => say(`Error: ${e.message}`, true));
