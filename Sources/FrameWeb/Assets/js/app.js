// FrameFlow's web app: hash routes over one page, a cookie session, server push.
import { el, mount } from "./dom.js";
import { get, del, setCsrf, stream } from "./api.js";
import { loginView, registerView } from "./auth.js";
import { videosView } from "./videos.js";
import { videoView } from "./video.js";
import { opsView } from "./ops.js";

const main = document.getElementById("main");
let session = null;
let leave = null;

/** The user's job events, shared by whichever view is open. on(fn, onReset) returns off(). */
const jobs = {
  listeners: new Set(),
  close: null,
  open() {
    if (this.close) return;
    this.close = stream("/events", {
      job: (video) => { for (const l of this.listeners) l.change(video); },
      reset: () => { for (const l of this.listeners) l.reset(); },
    });
  },
  stop() { if (this.close) this.close(); this.close = null; },
  on(change, reset) {
    const listener = { change, reset };
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  },
};

function setSession(s) {
  session = s;
  setCsrf(s?.csrfToken);
  const nav = document.getElementById("nav");
  nav.hidden = !s;
  document.getElementById("nav-ops").hidden = !s?.operator;
  document.querySelector('[data-nav="videos"]').hidden = !s?.user;
  document.getElementById("logout").hidden = !s;
  document.getElementById("whoami").textContent = s ? (s.user ? s.user.email : "operator (admin token)") : "";
  if (s?.user) jobs.open(); else jobs.stop();
}

function route() {
  if (leave) { leave(); leave = null; }
  const hash = location.hash.replace(/^#\/?/, "");
  const [page, id] = hash.split("/");
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === page);
  if (!session) {
    if (page === "register") return registerView(main, loggedIn);
    return loginView(main, loggedIn);
  }
  if (page === "ops" && session.operator) { leave = opsView(main); return; }
  if (!session.user) { location.hash = "#/ops"; return; }
  if (page === "videos" && id) { leave = videoView(main, decodeURIComponent(id), jobs); return; }
  if (page !== "videos") { location.hash = "#/videos"; return; }
  leave = videosView(main, jobs);
}

function loggedIn(s) {
  setSession(s);
  location.hash = s.user ? "#/videos" : "#/ops";
  route();
}

document.getElementById("logout").addEventListener("click", async () => {
  try { await del("/auth/session"); } finally {
    setSession(null);
    location.hash = "#/login";
    route();
  }
});
window.addEventListener("hashchange", route);

// The session survives a reload: the cookie is still there, so ask who we are.
get("/auth/session").then(setSession, () => setSession(null)).finally(route);
