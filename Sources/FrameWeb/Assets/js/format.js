// Numbers and error codes in words people read.

export function bytes(n) {
  if (n == null || !isFinite(n)) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(n >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
}

export function duration(seconds) {
  if (seconds == null || !isFinite(seconds)) return "–";
  seconds = Math.max(0, seconds);
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** A frame timestamp: 1:05.250 */
export function timestamp(seconds) {
  const m = Math.floor(seconds / 60);
  const s = (seconds - m * 60).toFixed(3).padStart(6, "0");
  return `${m}:${s}`;
}

export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function ago(iso, now = Date.now()) {
  if (!iso) return "never";
  const s = Math.max(0, (now - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

const messages = {
  NOT_MEDIA: "This file is not a video we can read. Check that it really is a video file.",
  NO_VIDEO_STREAM: "The file has no video track (audio only?).",
  UNSUPPORTED_CODEC: "The video is encoded in a format we cannot decode.",
  CORRUPT_MEDIA: "The video is damaged: part of it cannot be decoded.",
  ZERO_DURATION: "The video is empty (it lasts no time).",
  ABSURD_DIMENSIONS: "The picture size is not something we can process.",
  DECODE_FAILED: "The video could not be decoded.",
  ENCODE_FAILED: "The frames could not be saved as images.",
  UPLOAD_TOO_LARGE: "The file is larger than this server accepts.",
  UNSUPPORTED_EXTENSION: "This kind of file is not accepted; upload a video (mp4, mov, mkv, webm, …).",
  STORAGE_FULL: "The server is out of disk space; try again later.",
  ATTEMPTS_EXHAUSTED: "Processing failed several times; an operator has been told.",
  NODES_LOST: "The machines processing this video kept failing; try again later.",
  NO_ELIGIBLE_NODE: "No machine can process this video with the labels it asks for.",
  ARCHIVE_FAILED: "The frames were extracted but the ZIP could not be written.",
  INVALID_RATE: "The frame rate is not valid: use a number such as 1, 0.5 or 1/10.",
  INVALID_OPTIONS: "The options are not valid.",
  VALIDATION_FAILED: "Some options are not valid.",
  CANCELLED: "Cancelled.",
  UNAUTHORIZED: "Your session has ended; log in again.",
  FORBIDDEN: "You are not allowed to do that.",
};

/** A sentence for an error code, falling back to the server's own text. */
export function explain(code, detail) {
  const words = messages[code];
  if (words && detail && !detail.startsWith(words)) return `${words} (${detail})`;
  return words || detail || code || "Something went wrong.";
}

/** The password rule of POST /auth/register, checked as the user types. */
export function passwordRules(pw) {
  const bytes = new TextEncoder().encode(pw).length;
  return [
    { text: "at least 8 characters", ok: [...pw].length >= 8 },
    { text: "an upper-case letter", ok: /\p{Lu}/u.test(pw) },
    { text: "a digit", ok: /\p{Nd}/u.test(pw) },
    { text: "a symbol", ok: /[^\p{L}\p{N}\s]/u.test(pw) },
    { text: "at most 72 bytes", ok: bytes <= 72 },
  ];
}
