// The HTTP API as the page uses it. The session is an HttpOnly cookie the page
// never sees; state-changing requests carry the CSRF token from GET /auth/session.

let csrf = "";
export function setCsrf(token) { csrf = token || ""; }

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || "";
    this.detail = problem.detail || "";
  }
}

async function problemOf(response) {
  try { return await response.json(); } catch { return { detail: `HTTP ${response.status}` }; }
}

export async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  if (response.status === 204) return null;
  return response.json();
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body);
export const del = (path) => request("DELETE", path);

/**
 * Uploads one file with XMLHttpRequest (fetch cannot report upload progress).
 * Returns {promise, abort}; onProgress(loaded, total) as bytes go out.
 */
export function upload(file, options, onProgress) {
  const xhr = new XMLHttpRequest();
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(options)) if (v !== "" && v != null) query.set(k, v);
  const promise = new Promise((resolve, reject) => {
    xhr.open("POST", `/videos?${query}`);
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener("load", () => {
      const body = xhr.response || {};
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, { detail: "the connection failed" })));
    xhr.addEventListener("abort", () => reject(new ApiError(0, { code: "CANCELLED", detail: "upload cancelled" })));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

/**
 * One EventSource with reconnects (the browser resends Last-Event-ID itself).
 * handlers: {eventName: fn(data)}; returns close().
 */
export function stream(path, handlers) {
  const source = new EventSource(path);
  for (const [name, fn] of Object.entries(handlers)) {
    source.addEventListener(name, (e) => {
      let data = null;
      try { data = JSON.parse(e.data); } catch { return; }
      fn(data, e.lastEventId);
    });
  }
  return () => source.close();
}
