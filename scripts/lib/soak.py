"""The chaos soak behind scripts/soak (read its header for what it does).

One coordinator, three nodes (node-3 in a network namespace when this runs as
root), a PostgreSQL of its own. A thread uploads a steady stream of short
generated videos; the main loop injects one fault at a time, restores it, and
measures recovery: from the injection until the coordinator answers /ready,
every node is online, and (when work was pending) a segment has finished since.
At the end it waits for every job and checks each ZIP's frames against
`frameflow extract` on the same file and options.
"""

import concurrent.futures
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile

ROOT = os.environ["SOAK_ROOT"]
BIN = os.environ["SOAK_BIN"]
WORK = os.environ["SOAK_WORK"]
SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
SEED = int(os.environ.get("SOAK_SEED") or random.SystemRandom().randrange(1 << 30))
UPLOAD_EVERY = float(os.environ.get("SOAK_UPLOAD_EVERY", "1.0"))
FAULT_GAP = float(os.environ.get("SOAK_FAULT_GAP", "3"))
NODES = 3
RECOVERY_LIMIT = 90.0
rng = random.Random(SEED)
LOGS = os.path.join(WORK, "logs")
os.makedirs(LOGS, exist_ok=True)


def log(message):
    print(f"soak [{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(args, check=True, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {result.returncode}: {result.stdout}{result.stderr}")
    return result


def postgres(snippet):
    lib = os.path.join(ROOT, "scripts/lib/postgres.sh")
    return run(["bash", "-c", f"source '{lib}' && {snippet}"]).stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Island:
    """node-3's network namespace and the veth pair that joins it to the host."""

    IP = "/usr/sbin/ip"

    def __init__(self):
        tag = f"{os.getpid() % 10000}"
        self.namespace = f"ffsoak{tag}"
        self.host_link, self.island_link = f"ffsk{tag}h", f"ffsk{tag}i"
        subnet = os.getpid() % 250
        self.host_address, self.island_address = f"10.214.{subnet}.1", f"10.214.{subnet}.2"

    def create(self):
        steps = [
            ["netns", "add", self.namespace],
            ["link", "add", self.host_link, "type", "veth", "peer", "name", self.island_link],
            ["link", "set", self.island_link, "netns", self.namespace],
            ["addr", "add", f"{self.host_address}/30", "dev", self.host_link],
            ["link", "set", self.host_link, "up"],
            ["netns", "exec", self.namespace, self.IP, "addr", "add", f"{self.island_address}/30", "dev", self.island_link],
            ["netns", "exec", self.namespace, self.IP, "link", "set", self.island_link, "up"],
            ["netns", "exec", self.namespace, self.IP, "link", "set", "lo", "up"],
        ]
        for step in steps:
            run([self.IP] + step)

    def link(self, up):
        run([self.IP, "link", "set", self.host_link, "up" if up else "down"])

    def remove(self):
        run([self.IP, "link", "del", self.host_link], check=False)
        run([self.IP, "netns", "del", self.namespace], check=False)


class Cluster:
    def __init__(self):
        self.dir = WORK
        self.data = os.path.join(WORK, "data")
        self.island = None
        self.coordinator = None
        self.nodes = {}
        self.expected_exits = set()
        self.crashes = []
        self.lock = threading.Lock()

    def start(self):
        pg_port = free_port()
        self.database_url = postgres(f"pg_start '{WORK}/pg' {pg_port} >&2 && echo $DATABASE_URL")
        listen_host = "127.0.0.1"
        if os.geteuid() == 0 and os.path.exists(Island.IP):
            island = Island()
            try:
                island.create()
                self.island, listen_host = island, island.host_address
            except RuntimeError as error:
                island.remove()
                log(f"no network namespace ({error}); the partition fault is skipped")
        else:
            log("not root: the partition fault is skipped")
        certs = os.path.join(WORK, "certs")
        run([f"{BIN}/frameflow", "certs", "init", "--dir", certs])
        for i in range(1, NODES + 1):
            run([f"{BIN}/frameflow", "certs", "issue", f"node-{i}", "--dir", certs])
        self.http_port, cluster_port = free_port(), free_port()
        self.api = f"http://127.0.0.1:{self.http_port}"
        self.admin_token = hashlib.sha256(os.urandom(16)).hexdigest()[:32]
        # A fixed secret so that tokens stay valid across coordinator restarts.
        jwt_secret = hashlib.sha256(os.urandom(16)).hexdigest()
        self.config = os.path.join(WORK, "cluster.yaml")
        with open(self.config, "w") as f:
            f.write(f"""coordinator:
  http_listen: 127.0.0.1:{self.http_port}
  cluster_listen: {listen_host}:{cluster_port}
  database_url: {self.database_url}
  tls: {{ ca: certs/ca.pem, cert: certs/coordinator.pem, key: certs/coordinator.key }}
  storage: {{ uploads_dir: {self.data}/uploads, spool_dir: {self.data}/spool, results_dir: {self.data}/results }}
  admin_token: {self.admin_token}
  jwt_secret: {jwt_secret}
  segment_seconds: 2
  # One user uploads and then downloads every ZIP: per-user limits are not what is tested here.
  downloads_per_minute: 0
  quota: {{ max_active_jobs: 0 }}
node:
  coordinator: {listen_host}:{cluster_port}
  server_name: localhost
  tls: {{ ca: certs/ca.pem }}
  slots: 1
logging:
  format: json
  level: notice
""")
        self.start_coordinator()
        for i in range(1, NODES + 1):
            self.start_node(f"node-{i}")

    def _spawn(self, name, args):
        out = open(os.path.join(LOGS, f"{name}.log"), "a")
        out.write(f"--- started at {time.strftime('%H:%M:%S')}\n")
        out.flush()
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=WORK)

    def start_coordinator(self):
        self.coordinator = self._spawn("coordinator", [f"{BIN}/frameflow-coordinator", "--config", self.config])

    def start_node(self, name):
        launcher = []
        if name == f"node-{NODES}" and self.island:
            launcher = [Island.IP, "netns", "exec", self.island.namespace]
        certs = os.path.join(WORK, "certs")
        self.nodes[name] = self._spawn(name, launcher + [
            f"{BIN}/frameflow-node", "--config", self.config,
            "--cert", f"{certs}/{name}.pem", "--key", f"{certs}/{name}.key"])

    def kill(self, process, sig=signal.SIGKILL):
        with self.lock:
            self.expected_exits.add(process.pid)
        process.send_signal(sig)
        process.wait()

    def check_processes(self):
        """Records (and restarts) any process that exited without being told to: a crash."""
        procs = [("coordinator", self.coordinator)] + list(self.nodes.items())
        for name, process in procs:
            code = process.poll()
            if code is None:
                continue
            with self.lock:
                if process.pid in self.expected_exits:
                    continue
                self.expected_exits.add(process.pid)
            self.crashes.append(f"{name} exited {code} unasked")
            log(f"CRASH: {name} exited with {code}; restarting it")
            if name == "coordinator":
                self.start_coordinator()
            else:
                self.start_node(name)

    # --- HTTP and SQL

    def request(self, method, path, token=None, body=None, timeout=10):
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.api + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (OSError, urllib.error.URLError):
            return 0, b""

    def sql(self, query):
        return run(["psql", self.database_url, "-XAtqc", query], check=False).stdout.strip()

    def ready(self):
        return self.request("GET", "/ready", timeout=2)[0] == 200

    def nodes_online(self):
        status, body = self.request("GET", "/admin/nodes", token=self.admin_token, timeout=3)
        if status != 200:
            return 0
        try:
            items = json.loads(body)["items"]
        except (ValueError, KeyError):
            return 0
        return sum(1 for n in items if n.get("state") == "online")

    def segments_done(self):
        value = self.sql("SELECT count(*) FROM job_events WHERE kind = 'segment_done'")
        return int(value) if value.isdigit() else None

    def work_pending(self):
        value = self.sql("SELECT count(*) FROM jobs WHERE status IN ('QUEUED', 'PROCESSING')")
        return value.isdigit() and int(value) > 0

    def stop(self):
        for process in [self.coordinator] + list(self.nodes.values()):
            if process and process.poll() is None:
                with self.lock:
                    self.expected_exits.add(process.pid)
                process.send_signal(signal.SIGCONT)
                process.terminate()
        for process in [self.coordinator] + list(self.nodes.values()):
            if process:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        if self.island:
            self.island.remove()
        postgres(f"pg_stop '{WORK}/pg'")


def wait_until(predicate, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def make_videos():
    """Short, varied inputs: H.264 in MP4 with audio, H.264 with B-frames in Matroska, MPEG-4 Part 2 in AVI."""
    specs = [
        ("clip-a.mp4", ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=7",
                        "-f", "lavfi", "-i", "sine=frequency=440:duration=7",
                        "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]),
        ("clip-b.mkv", ["-f", "lavfi", "-i", "testsrc=size=320x180:rate=30:duration=9",
                        "-c:v", "libx264", "-preset", "veryfast", "-g", "45", "-bf", "2", "-pix_fmt", "yuv420p"]),
        ("clip-c.avi", ["-f", "lavfi", "-i", "mandelbrot=size=256x144:rate=24",
                        "-t", "6", "-c:v", "mpeg4", "-q:v", "5", "-g", "24"]),
    ]
    videos = []
    for name, args in specs:
        path = os.path.join(WORK, name)
        run(["ffmpeg", "-v", "error", "-y"] + args + [path])
        videos.append(path)
    return videos


class Uploader(threading.Thread):
    """A steady stream of uploads; remembers which were accepted (201)."""

    def __init__(self, cluster, videos, token):
        super().__init__(daemon=True)
        self.cluster, self.videos, self.token = cluster, videos, token
        self.accepted = []  # (job id, video, fps)
        self.refused = {}  # status (0: no answer) -> count
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.first_at = None

    def upload_one(self):
        video = rng.choice(self.videos)
        fps = rng.choice(["1", "2"])
        result = run(["curl", "-sS", "-m", "60", "-o", "-", "-w", "\n%{http_code}",
                      "-H", f"Authorization: Bearer {self.token}",
                      "-F", f"file=@{video}", "-F", f"fps={fps}", f"{self.cluster.api}/videos"], check=False)
        body, _, code = result.stdout.rpartition("\n")
        status = int(code) if code.isdigit() else 0
        with self.lock:
            if status == 201:
                job = json.loads(body)["id"].lower()
                self.accepted.append((job, video, fps))
                self.first_at = self.first_at or time.monotonic()
            else:
                self.refused[status] = self.refused.get(status, 0) + 1

    def run(self):
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            while not self.stopping.is_set():
                pool.submit(self.upload_one)
                self.stopping.wait(UPLOAD_EVERY)


class Faults:
    """Injects one fault, restores it, and measures the recovery."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.kinds = ["node-kill", "node-stop", "coordinator", "postgres"] + (["partition"] if cluster.island else [])
        self.record = []  # (kind, target, started s, outage s, recovery s or None)
        self.deck = []

    def draw(self):
        """Every kind once per round, in a random order: a short soak still sees each."""
        if not self.deck:
            self.deck = rng.sample(self.kinds, len(self.kinds))
        return self.deck.pop()

    def inject(self, kind, started_at):
        c = self.cluster
        if kind == "node-kill":
            target = rng.choice(sorted(c.nodes))
            c.kill(c.nodes[target])
            time.sleep(rng.uniform(1, 3))
            c.start_node(target)
        elif kind == "node-stop":
            target = rng.choice(sorted(c.nodes))
            c.nodes[target].send_signal(signal.SIGSTOP)
            time.sleep(rng.uniform(2, 6))
            c.nodes[target].send_signal(signal.SIGCONT)
        elif kind == "coordinator":
            target = "coordinator"
            c.kill(c.coordinator)
            time.sleep(rng.uniform(0.5, 2))
            c.start_coordinator()
        elif kind == "postgres":
            target = "postgresql"
            postgres(f"pg_restart '{WORK}/pg' {rng.randint(1, 3)} >&2")
        else:
            target = f"node-{NODES}"
            c.island.link(up=False)
            time.sleep(rng.uniform(4, 8))
            c.island.link(up=True)
        return target, time.monotonic() - started_at

    def one(self, t0):
        kind = self.draw()
        c = self.cluster
        done_before = c.segments_done()
        pending = c.work_pending()
        started = time.monotonic()
        target, outage = self.inject(kind, started)

        def recovered():
            c.check_processes()
            if not c.ready() or c.nodes_online() < NODES:
                return False
            if pending and done_before is not None:
                now = c.segments_done()
                return now is not None and now > done_before
            return True

        ok = wait_until(recovered, RECOVERY_LIMIT, step=0.1)
        recovery = time.monotonic() - started if ok else None
        self.record.append((kind, target, started - t0, outage, recovery))
        shown = f"{recovery:.2f} s" if ok else f"NOT within {RECOVERY_LIMIT:.0f} s"
        log(f"fault {kind} on {target}: outage {outage:.2f} s, recovered in {shown}")


def frames_of(zip_path):
    with zipfile.ZipFile(zip_path) as archive:
        return {n: hashlib.sha256(archive.read(n)).hexdigest() for n in archive.namelist() if n.startswith("frame_")}


def main():
    log(f"seed {SEED}, {SECONDS:.0f} s, work directory {WORK}")
    cluster = Cluster()
    failures = []
    try:
        cluster.start()
        if not wait_until(lambda: cluster.ready() and cluster.nodes_online() == NODES, 120, 0.2):
            raise RuntimeError("the cluster did not come up; logs in " + LOGS)
        videos = make_videos()
        email, password = "soak@example.com", "Soak-pass-1"
        cluster.request("POST", "/auth/register", body={"email": email, "password": password})
        status, body = cluster.request("POST", "/auth/login", body={"email": email, "password": password})
        if status != 200:
            raise RuntimeError(f"login failed: {status} {body[:200]}")
        token = json.loads(body)["accessToken"]

        uploader = Uploader(cluster, videos, token)
        faults = Faults(cluster)
        t0 = time.monotonic()
        uploader.start()
        log(f"uploading every {UPLOAD_EVERY:.1f} s; faults: {', '.join(faults.kinds)}")
        while time.monotonic() - t0 < SECONDS:
            time.sleep(min(FAULT_GAP, max(0, SECONDS - (time.monotonic() - t0))))
            cluster.check_processes()
            if time.monotonic() - t0 >= SECONDS:
                break
            faults.one(t0)
        uploader.stopping.set()
        uploader.join()
        soak_end = time.monotonic()

        accepted = {job: (video, fps) for job, video, fps in uploader.accepted}
        log(f"soak over: {len(accepted)} uploads accepted; waiting for every job")

        def all_finished():
            cluster.check_processes()
            value = cluster.sql("SELECT count(*) FROM jobs WHERE status IN ('QUEUED', 'PROCESSING')")
            return value == "0"

        if not wait_until(all_finished, 300, 0.5):
            failures.append("jobs still unfinished 300 s after the soak: "
                            + cluster.sql("SELECT id, status, segments_done, segment_count FROM jobs "
                                          "WHERE status IN ('QUEUED', 'PROCESSING') LIMIT 5"))
        finished_at = cluster.sql("SELECT extract(epoch FROM max(completed_at) - min(created_at)) FROM jobs")
        rows = cluster.sql("SELECT id, status, coalesce(error_code, '') FROM jobs").splitlines()
        statuses = {}
        for row in rows:
            job, status, code = row.split("|")
            statuses[job] = (status, code)
        not_completed = {j: s for j, s in statuses.items() if s[0] != "COMPLETED"}
        for job, (status, code) in sorted(not_completed.items())[:10]:
            failures.append(f"job {job} ended {status} {code}")
        lost = [j for j in accepted if j not in statuses]
        for job in lost:
            failures.append(f"accepted upload {job} is not in the database: lost")

        # Frames: each completed accepted job against frameflow extract on the same file and rate.
        references = {}
        compared = 0
        zips = os.path.join(WORK, "zips")
        os.makedirs(zips, exist_ok=True)
        for job, (video, fps) in accepted.items():
            if statuses.get(job, ("",))[0] != "COMPLETED":
                continue
            key = (video, fps)
            if key not in references:
                reference = os.path.join(zips, f"reference-{os.path.basename(video)}-{fps}.zip")
                run([f"{BIN}/frameflow", "extract", video, "--fps", fps, "--output", reference])
                references[key] = frames_of(reference)
            got = os.path.join(zips, f"{job}.zip")
            result = run(["curl", "-sS", "-f", "-m", "60", "-o", got,
                          "-H", f"Authorization: Bearer {token}", f"{cluster.api}/videos/{job}/download"], check=False)
            if result.returncode != 0:
                failures.append(f"download of {job} failed: {result.stderr.strip()}")
                continue
            ours = frames_of(got)
            if ours != references[key]:
                differing = sorted(set(ours.items()) ^ set(references[key].items()))[:3]
                failures.append(f"job {job} ({os.path.basename(video)} at {fps}/s): frames differ from extract: {differing}")
            else:
                compared += 1
                os.remove(got)

        spool = os.path.join(cluster.data, "spool")
        left = sorted(os.listdir(spool)) if os.path.isdir(spool) else []
        if left:
            failures.append(f"{len(left)} entries left in the spool: {left[:5]}")
        failures.extend(cluster.crashes)
        unrecovered = [f for f in faults.record if f[4] is None]
        for kind, target, at, _, _ in unrecovered:
            failures.append(f"no recovery from {kind} on {target} at {at:.0f} s")

        # Report.
        print()
        print(f"Chaos soak: {SECONDS:.0f} s, seed {SEED}, 1 coordinator + {NODES} nodes x 1 slot, segments of 2 s")
        print(f"{'fault':<12} | {'target':<11} | {'at s':>6} | {'outage s':>8} | {'recovered in s':>14}")
        print("-" * 13 + "+" + "-" * 13 + "+" + "-" * 8 + "+" + "-" * 10 + "+" + "-" * 16)
        for kind, target, at, outage, recovery in faults.record:
            shown = f"{recovery:14.2f}" if recovery is not None else f"{'never':>14}"
            print(f"{kind:<12} | {target:<11} | {at:6.0f} | {outage:8.2f} | {shown}")
        print()
        by_kind = {}
        for kind, _, _, outage, recovery in faults.record:
            if recovery is not None:
                by_kind.setdefault(kind, []).append(recovery - outage)
        for kind, values in sorted(by_kind.items()):
            values.sort()
            print(f"  {kind}: {len(values)} injected, recovery after the fault ended: "
                  f"median {values[len(values) // 2]:.2f} s, max {values[-1]:.2f} s")
        refused = ", ".join(f"{n} x {'no answer' if s == 0 else s}" for s, n in sorted(uploader.refused.items())) or "none"
        completed = sum(1 for s in statuses.values() if s[0] == "COMPLETED")
        span = float(finished_at) if finished_at else soak_end - t0
        print(f"  uploads: {len(accepted)} accepted, refused or unanswered during faults: {refused}")
        print(f"  jobs: {len(statuses)} in the database, {completed} COMPLETED, {compared} ZIPs identical to "
              f"frameflow extract; {completed / span:.2f} jobs/s over {span:.0f} s")
        print(f"  spool entries left: {len(left)}; unexpected process exits: {len(cluster.crashes)}")
        if not faults.record:
            failures.append("no fault was injected (soak too short)")
        print()
        if failures:
            print("FAIL")
            for failure in failures[:30]:
                print(f"  - {failure}")
            return 1
        print("PASS")
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
