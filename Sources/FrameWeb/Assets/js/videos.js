import { el, mount } from "./dom.js";
import { get, del, ApiError } from "./api.js";
import { bytes, when, explain } from "./format.js";
import { uploadPanel } from "./upload.js";

const STATUSES = ["QUEUED", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED", "EXPIRED"];
const PAGE_SIZE = 10;

export function statusBadge(status) {
  return el(`span.badge.s-${status.toLowerCase()}`, { text: status });
}

export async function download(id) {
  const { url } = await get(`/videos/${encodeURIComponent(id)}/download-url`);
  const a = el("a", { href: url, download: "" });
  document.body.append(a);
  a.click();
  a.remove();
}

export async function cancel(id) {
  try { await del(`/videos/${encodeURIComponent(id)}`); }
  catch (err) { if (!(err instanceof ApiError && err.status === 409)) throw err; }
}

/** "My videos": upload panel plus the paged, filtered, live list. `events` is the job bus. */
export function videosView(main, events) {
  let page = 0, status = "", total = 0;
  const rows = new Map();
  const body = el("tbody#video-rows");
  const pager = el("div.pager");
  const filter = el("select#status-filter", { "aria-label": "Filter by status" },
    el("option", { value: "", text: "All statuses" }), STATUSES.map((s) => el("option", { value: s, text: s })));
  filter.addEventListener("change", () => { status = filter.value; page = 0; load(); });

  let reloadTimer = 0;
  const reloadSoon = () => { clearTimeout(reloadTimer); reloadTimer = setTimeout(load, 300); };

  async function load() {
    const query = new URLSearchParams({ page, size: PAGE_SIZE });
    if (status) query.set("status", status);
    const result = await get(`/videos?${query}`);
    total = result.totalElements;
    rows.clear();
    mount(body, result.items.length ? result.items.map((v) => { const r = row(v); rows.set(v.id, r); return r.tr; })
      : el("tr", {}, el("td.muted", { colspan: 6, text: status ? `No ${status} videos.` : "No videos yet: upload one above." })));
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    mount(pager,
      el("button.small.secondary", { type: "button", text: "‹ Newer", disabled: page === 0, on: { click: () => { page--; load(); } } }),
      el("span.muted", { text: ` page ${page + 1} of ${pages} · ${total} videos ` }),
      el("button.small.secondary", { type: "button", text: "Older ›", disabled: page + 1 >= pages, on: { click: () => { page++; load(); } } }));
  }

  const unsubscribe = events.on((video) => {
    const r = rows.get(video.id);
    if (r && (!status || status === video.status)) r.update(video);
    else if (r || (page === 0 && (!status || status === video.status))) reloadSoon();
  }, () => load());

  mount(main,
    uploadPanel(() => { if (page === 0) reloadSoon(); }),
    el("section.card", {},
      el("div.row", {}, el("h2", { text: "My videos" }), el("span.spacer"), filter),
      el("table.videos", {}, el("thead", {}, el("tr", {}, ["Video", "Status", "Progress", "Frames", "Uploaded", ""].map((h) => el("th", { text: h })))), body),
      pager));
  load();
  return unsubscribe;
}

function row(video) {
  const tr = el("tr", { dataset: { id: video.id } });
  const update = (v) => {
    tr.dataset.status = v.status;
    const actions = el("td.actions");
    if (v.status === "QUEUED" || v.status === "PROCESSING") {
      actions.append(el("button.small.secondary", { type: "button", text: "Cancel", on: { click: () => cancel(v.id) } }));
    }
    if (v.status === "COMPLETED") {
      actions.append(el("button.small", { type: "button", text: "Download ZIP", on: { click: () => download(v.id) } }));
    }
    const progress = el("td.progress", {}, el("progress", { max: 1, value: v.progress }), ` ${Math.round(v.progress * 100)}%`);
    const statusCell = el("td", {}, statusBadge(v.status));
    if (v.status === "FAILED") {
      statusCell.append(el("div.error.small", {}, el("code", { text: v.errorCode || "" }), " ", explain(v.errorCode, v.errorMessage)));
    }
    mount(tr,
      el("td.name", {}, el("a", { href: `#/videos/${v.id}`, text: v.originalFilename, title: v.originalFilename }),
        el("div.muted.small", { text: `${bytes(v.sizeBytes)} · ${v.fps} fps · ${v.format}` })),
      statusCell, progress, el("td", { text: v.frameCount }), el("td.muted", { text: when(v.createdAt) }), actions);
  };
  update(video);
  return { tr, update };
}
