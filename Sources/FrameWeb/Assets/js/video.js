import { el, mount } from "./dom.js";
import { get } from "./api.js";
import { bytes, duration, when, timestamp, explain } from "./format.js";
import { statusBadge, download, cancel } from "./videos.js";

const THUMBNAILS = 12;

/** One video: its facts, live status, and once COMPLETED a strip of frames with their times. */
export function videoView(main, id, events) {
  const path = `/videos/${encodeURIComponent(id)}`;
  let shownStatus = "";
  const facts = el("dl.facts");
  const header = el("div.row");
  const strip = el("div.strip#thumbnails");
  const failure = el("p.error", { hidden: true });

  const render = async (v) => {
    const meta = v.status === "COMPLETED" && shownStatus !== "COMPLETED" ? await get(`${path}/frames`).catch(() => null) : null;
    mount(header, el("h1.name", { text: v.originalFilename }), statusBadge(v.status), el("span.spacer"),
      (v.status === "QUEUED" || v.status === "PROCESSING") && el("button.secondary", { type: "button", text: "Cancel", on: { click: () => cancel(v.id) } }),
      v.status === "COMPLETED" && el("button", { type: "button", text: "Download ZIP", on: { click: () => download(v.id) } }));
    const items = [
      ["Status", `${v.status}${v.status === "PROCESSING" ? ` · ${Math.round(v.progress * 100)}%` : ""}`],
      ["Duration", duration(v.durationSeconds)], ["Size", bytes(v.sizeBytes)], ["Rate", `${v.fps} frames/s`],
      ["Frames", v.frameCount], ["Output", `${v.format.toUpperCase()}${v.format === "jpg" ? ` q${v.quality}` : ""}${v.maxWidth ? `, max ${v.maxWidth} px wide` : ""}`],
      ["Uploaded", when(v.createdAt)], ["Completed", when(v.completedAt)], ["Expires", when(v.expiresAt)],
    ];
    if (meta) items.splice(2, 0, ["Codec", meta.codec], ["Picture", `${meta.width} × ${meta.height}`]);
    mount(facts, items.map(([k, val]) => [el("dt", { text: k }), el("dd", { text: val })]));
    failure.hidden = v.status !== "FAILED";
    if (v.status === "FAILED") mount(failure, el("code", { text: v.errorCode || "" }), " ", explain(v.errorCode, v.errorMessage));
    if (meta) {
      const n = meta.frames.length;
      const picks = n <= THUMBNAILS ? [...Array(n).keys()] : [...Array(THUMBNAILS).keys()].map((i) => Math.round((i * (n - 1)) / (THUMBNAILS - 1)));
      mount(strip, picks.map((i) => el("figure.thumb", {},
        el("img", { src: `${path}/frames/${i}`, alt: `frame ${i + 1} at ${timestamp(meta.frames[i].seconds)}`, loading: "lazy", width: 160 }),
        el("figcaption", { text: timestamp(meta.frames[i].seconds) }))));
    } else if (v.status !== "COMPLETED") {
      mount(strip, el("p.muted", { text: "Thumbnails appear here when the video is COMPLETED." }));
    }
    shownStatus = v.status;
  };

  mount(main, el("p", {}, el("a", { href: "#/videos", text: "← My videos" })),
    el("section.card#video", {}, header, failure, facts, el("h2", { text: "Frames" }), strip));
  get(path).then(render, (err) => mount(main, el("p.error", { text: explain(err.code, err.detail) })));
  return events.on((v) => { if (v.id === id) render(v); }, () => get(path).then(render));
}
