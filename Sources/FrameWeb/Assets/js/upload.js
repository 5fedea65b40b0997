import { el, mount } from "./dom.js";
import { upload } from "./api.js";
import { bytes, duration, explain } from "./format.js";

/** The upload panel: options, a drop zone, one row per file with its own progress. */
export function uploadPanel(onAccepted) {
  const fps = el("input#opt-fps", { name: "fps", value: "1", size: 6, title: "frames per second: 1, 0.5, 1/10 …" });
  const format = el("select#opt-format", { name: "format" }, el("option", { value: "jpg", text: "JPEG" }), el("option", { value: "png", text: "PNG" }));
  const quality = el("input#opt-quality", { name: "quality", type: "number", min: 1, max: 31, value: 2, title: "JPEG quality, 1 (best) to 31" });
  const maxWidth = el("input#opt-maxwidth", { name: "maxWidth", type: "number", min: 0, step: 2, placeholder: "original" });
  const options = () => ({
    fps: fps.value.trim(), format: format.value,
    quality: format.value === "jpg" ? quality.value : "", maxWidth: maxWidth.value,
  });
  const picker = el("input#file-input", { type: "file", multiple: true, accept: "video/*,.mp4,.mov,.mkv,.webm,.avi,.m4v,.ts" });
  const list = el("ul.uploads#uploads");
  const zone = el("div.dropzone#dropzone", { tabindex: 0 },
    el("strong", { text: "Drop videos here" }), " or ", el("label.button", {}, "choose files", picker));

  const start = (files) => { for (const file of files) list.prepend(uploadRow(file, options(), onAccepted)); };
  picker.addEventListener("change", () => { start([...picker.files]); picker.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    start([...e.dataTransfer.files]);
  });

  return el("section.card#upload", {},
    el("h2", { text: "Upload" }),
    el("div.options", {},
      el("label", {}, "Frames per second ", fps), el("label", {}, "Format ", format),
      el("label", {}, "Quality ", quality), el("label", {}, "Max width ", maxWidth)),
    zone, list);
}

function uploadRow(file, options, onAccepted) {
  const bar = el("progress", { max: file.size || 1, value: 0 });
  const stats = el("span.stats", { text: `0 of ${bytes(file.size)}` });
  const cancel = el("button.small.secondary", { type: "button", text: "Cancel" });
  const name = el("span.name", { text: file.name, title: file.name });
  const row = el("li.upload", { dataset: { state: "uploading" } }, name, bar, stats, cancel);
  const started = performance.now();
  const job = upload(file, options, (loaded, total) => {
    bar.max = total || 1;
    bar.value = loaded;
    const elapsed = (performance.now() - started) / 1000;
    const rate = elapsed > 0 ? loaded / elapsed : 0;
    const left = rate > 0 ? (total - loaded) / rate : Infinity;
    stats.textContent = loaded >= total
      ? `${bytes(total)} sent · checking the video…`
      : `${bytes(loaded)} of ${bytes(total)} · ${bytes(rate)}/s · ${isFinite(left) ? duration(left) : "–"} left`;
  });
  cancel.addEventListener("click", () => job.abort());
  job.promise.then((video) => {
    row.dataset.state = "accepted";
    bar.value = bar.max;
    stats.textContent = `${bytes(file.size)} · accepted`;
    cancel.remove();
    onAccepted(video);
  }, (err) => {
    row.dataset.state = err.code === "CANCELLED" ? "cancelled" : "refused";
    cancel.remove();
    mount(stats, err.code === "CANCELLED" ? "Cancelled" :
      el("span.error", {}, el("code", { text: err.code || `HTTP ${err.status}` }), " ", explain(err.code, err.detail)));
  });
  return row;
}
