import { el, mount, sparkline } from "./dom.js";
import { post, stream } from "./api.js";
import { ago, explain } from "./format.js";

const STATUSES = ["QUEUED", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED", "EXPIRED"];

/** Operators: cluster at a glance, the live nodes table, recent job events. Server push only. */
export function opsView(main) {
  let history = [];                 // cluster frames/s, one point per sample
  const nodeHistory = new Map();    // node name -> frames/s points
  let events = [];
  let last = null;
  const counts = el("div.tiles#job-counts");
  const chart = el("div.chart#fps-chart");
  const nodesBody = el("tbody#node-rows");
  const eventList = el("ol.events#job-events");
  const status = el("span.muted.small#ops-stream", { text: "connecting…" });

  const renderCluster = (s) => {
    mount(counts,
      STATUSES.map((st) => el(`div.tile.s-${st.toLowerCase()}`, { dataset: { status: st } }, el("strong", { text: s.jobs[st] ?? 0 }), el("span", { text: st }))),
      el("div.tile#queue-depth", {}, el("strong", { text: s.queueDepth }), el("span", { text: "segments queued" })),
      el("div.tile", {}, el("strong", { text: s.framesPerSecond.toFixed(1) }), el("span", { text: "frames/s now" })));
    const minutes = Math.max(1, Math.round(history.length / 60));
    mount(chart, el("div.row", {}, el("strong", { text: "Frames/s" }), el("span.muted.small", { text: ` last ${minutes} min · peak ${Math.max(0, ...history).toFixed(1)}` })),
      sparkline(history, 600, 80, "spark big"));
  };

  const renderNodes = (nodes) => {
    mount(nodesBody, nodes.length ? nodes.map(nodeRow) : el("tr", {}, el("td.muted", { colspan: 10, text: "No node has connected yet." })));
  };

  const nodeRow = (n) => {
    const act = (action, question) => el("button.small.secondary", {
      type: "button", text: action[0].toUpperCase() + action.slice(1), dataset: { action },
      on: {
        click: async () => {
          if (!confirm(question)) return;
          try { await post(`/admin/nodes/${encodeURIComponent(n.name)}/${action}`); }
          catch (err) { alert(explain(err.code, err.detail)); }
        },
      },
    });
    const actions = [];
    if (n.adminState === "enabled") actions.push(act("drain", `Drain ${n.name}? It finishes its current segments and takes no new ones.`));
    if (n.adminState !== "enabled") actions.push(act("enable", `Enable ${n.name} again?`));
    if (n.adminState !== "revoked") actions.push(act("revoke", `Revoke ${n.name}? It is disconnected now and its certificate is refused from then on.`));
    const labels = Object.entries(n.labels || {}).map(([k, v]) => el("span.label", { text: `${k}=${v}` }));
    return el("tr", { dataset: { node: n.name, state: n.state } },
      el("td.name", { text: n.name, title: n.address }),
      el("td", {}, el(`span.badge.n-${n.state}`, { text: n.state })),
      el("td", { text: n.slots }), el("td", { text: n.activeLeases }),
      el("td.fps", {}, el("span", { text: n.framesPerSecond.toFixed(1) }), sparkline((nodeHistory.get(n.name) || []).slice(-120))),
      el("td.muted", { text: n.online ? ago(n.lastHeartbeatAt) : "offline" }),
      el("td", { text: n.softwareVersion }), el("td", {}, labels),
      el("td", { text: n.recentFailures }), el("td.actions", {}, actions));
  };

  const renderEvents = () => {
    mount(eventList, events.length ? events.slice().reverse().map((e) => el("li", { dataset: { kind: e.kind } },
      el("span.muted.small", { text: new Date(e.at).toLocaleTimeString() }), " ",
      el("strong", { text: e.kind.replaceAll("_", " ") }), " job ", el("code", { text: e.job.slice(0, 8) }),
      e.segment != null ? ` segment ${e.segment}` : "", e.node ? [" on ", el("code", { text: e.node })] : "",
      e.reason ? el("span.muted", { text: ` — ${e.reason}` }) : ""))
      : el("li.muted", { text: "No job events yet." }));
  };

  const apply = (sample) => {
    last = sample;
    for (const n of sample.nodes) {
      const points = nodeHistory.get(n.name) || [];
      points.push(n.framesPerSecond);
      if (points.length > 120) points.shift();
      nodeHistory.set(n.name, points);
    }
    history.push(sample.framesPerSecond);
    if (history.length > 600) history.shift();
    if (sample.events.length) { events = events.concat(sample.events).slice(-50); renderEvents(); }
    renderCluster(sample);
    renderNodes(sample.nodes);
  };

  mount(main,
    el("section.card", {}, el("div.row", {}, el("h2", { text: "Cluster" }), el("span.spacer"), status), counts, chart),
    el("section.card", {}, el("h2", { text: "Nodes" }),
      el("table.nodes", {}, el("thead", {}, el("tr", {}, ["Node", "State", "Slots", "Leases", "Frames/s", "Last heartbeat", "Version", "Labels", "Failures", ""].map((h) => el("th", { text: h })))), nodesBody)),
    el("section.card", {}, el("h2", { text: "Recent job events" }), eventList));

  const close = stream("/admin/events", {
    snapshot: (snap) => {
      status.textContent = "live";
      history = (snap.history || []).map((p) => p.value);
      nodeHistory.clear();
      for (const [name, points] of Object.entries(snap.nodeHistory || {})) nodeHistory.set(name, points.map((p) => p.value));
      events = snap.events || [];
      renderEvents();
      if (snap.sample) { last = snap.sample; renderCluster(snap.sample); renderNodes(snap.sample.nodes); }
    },
    cluster: (sample) => { status.textContent = "live"; apply(sample); },
  });
  // "Last heartbeat … ago" keeps counting between samples.
  const timer = setInterval(() => { if (last) renderNodes(last.nodes); }, 5000);
  return () => { close(); clearInterval(timer); };
}
