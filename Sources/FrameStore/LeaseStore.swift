import FrameCore
import Foundation

/// Timing rules for leases.
public struct LeasePolicy: Sendable {
    /// How long a grant or renewal keeps a lease alive without a heartbeat.
    public var ttl: Duration
    /// Back-off before a segment that failed with a retryable error is leased
    /// again: `retryBaseDelay * 2^(attempts-1)`, capped at `retryMaxDelay`.
    public var retryBaseDelay: Duration
    public var retryMaxDelay: Duration
    /// A node that fails this many segments of one job (SEGMENT_FAILED) is blocklisted for that job.
    public var blocklistAfter: Int
    /// Pause before a segment handed back untried (SEGMENT_FAILED `SHUTTING_DOWN`) is leased again.
    public var handbackDelay: Duration
    /// How long a segment whose source the object store could not serve waits before it is offered again.
    public var storeOutageDelay: Duration

    public init(
        ttl: Duration = .seconds(30), retryBaseDelay: Duration = .seconds(2), retryMaxDelay: Duration = .seconds(60),
        blocklistAfter: Int = 3, handbackDelay: Duration = .milliseconds(500), storeOutageDelay: Duration = .seconds(2)
    ) {
        self.storeOutageDelay = storeOutageDelay
        self.ttl = ttl
        self.retryBaseDelay = retryBaseDelay
        self.retryMaxDelay = retryMaxDelay
        self.blocklistAfter = max(1, blocklistAfter)
        self.handbackDelay = handbackDelay
    }

    func retryDelay(afterAttempt attempts: Int) -> Duration {
        var delay = retryBaseDelay
        for _ in 1..<max(1, min(attempts, 30)) { delay = min(delay * 2, retryMaxDelay) }
        return min(delay, retryMaxDelay)
    }
}

/// A segment granted to a node: everything the coordinator puts in a LEASE frame.
public struct GrantedLease: Sendable, Hashable {
    public var ref: LeaseRef
    public var spec: SegmentSpec
    public var output: OutputOptions
    public var userID: UUID
    /// Size and extension of the job's input, which the node reads through READ requests.
    public var sourceSizeBytes: Int64
    public var sourceExt: String
    public var expiresAt: Date
    /// 1 for the first grant of this segment, 2 for the first retry, ...
    public var attempt: Int
    /// The source's coded picture size and display rotation, from the job's
    /// probe record (nil without one): what the lease's frames are checked against.
    public var sourceWidth: Int?
    public var sourceHeight: Int?
    public var sourceRotation: Int?
}

/// What the store found when a result arrived for a lease it no longer recognises.
public struct SegmentSnapshot: Sendable, Hashable {
    public var state: SegmentState
    public var epoch: UInt64
    public var node: String?
}

/// The answer to SEGMENT_DONE.
public enum CompletionOutcome: Sendable, Hashable {
    /// Recorded; `allSegmentsDone` tells the caller to assemble the archive.
    case accepted(JobProgress)
    /// The (job, segment, epoch, node) is not the current lease: refuse with STALE_EPOCH.
    /// `current` is nil when the job or segment does not exist.
    case stale(current: SegmentSnapshot?)
}

/// The answer to SEGMENT_FAILED.
public enum FailureOutcome: Sendable, Hashable {
    /// The segment goes back to pending and may be leased again from `notBefore`.
    case retrying(notBefore: Date, attempts: Int, maxAttempts: Int)
    /// A non-retryable verdict from one node: the segment goes to another eligible node
    /// to confirm it before the job fails (its attempt refunded).
    case awaitingConfirmation(verdict: ErrorCode)
    /// The segment failed for good and took its job with it; cancel `cancelledLeases`.
    /// `failure` is nil if the job had already finished (e.g. cancelled meanwhile).
    case jobFailed(failure: JobFailure?)
    /// Not the current lease: ignore (and tell the node STALE_EPOCH).
    case stale(current: SegmentSnapshot?)
}

/// Leases taken back from nodes by ``LeaseStore/requeue(node:reason:code:chargeAttempt:)``
/// or ``LeaseStore/expireOverdue(limit:)``.
public struct LeaseRelease: Sendable, Hashable {
    /// One taken-back lease and what became of its segment.
    public struct Released: Sendable, Hashable {
        public var lease: HeldLease
        /// `pending` (will be leased again) or `failed` (it lost its node `max_node_losses` times).
        public var newState: SegmentState
        public var attempts: Int
        /// Times the segment has now lost its node.
        public var nodeLosses: Int
    }

    public var released: [Released]
    /// Jobs failed because a segment lost its node too often (NODES_LOST); send CANCEL for their other live leases.
    public var failedJobs: [JobFailure]

    public var isEmpty: Bool { released.isEmpty }
}

/// The lease table: grants with fencing epochs, renewal, requeue, expiry,
/// completion and failure of segments.
///
/// Leases live in `segments` (state `leased`, `node`, `epoch`,
/// `lease_expires_at`). Every grant bumps the epoch, and results are accepted
/// only for the current (job, segment, epoch, node), so a node that lost its
/// lease cannot overwrite a newer holder's work. Grants are one statement with
/// `FOR UPDATE SKIP LOCKED`, so concurrent claimers never block each other or
/// receive the same segment. Every grant, requeue, expiry and fence is written
/// to `job_events`. The SQL guards come from ``SegmentState`` and ``JobStatus``.
public struct LeaseStore: Sendable {
    let database: Database
    let lane: DatabaseLane
    public let policy: LeasePolicy
    /// The coordinator whose sessions this store grants and resumes leases for
    /// (`segments.coordinator`): when that coordinator dies, a survivor takes exactly
    /// these leases back (``CoordinatorStore/takeOverExpired(by:limit:)``). Nil: not recorded.
    public let coordinator: String?

    /// The scheduler's statements run in the bulk lane: at a thousand busy nodes they could
    /// otherwise hold every connection while an upload waits for one (and gets a 503).
    public init(database: Database, policy: LeasePolicy = LeasePolicy(), coordinator: String? = nil, lane: DatabaseLane = .bulk) {
        self.lane = lane
        self.database = database
        self.policy = policy
        self.coordinator = coordinator
    }

    /// Whether any segment could be claimed now by some node (pending, due,
    /// of a schedulable job with attempts left). One cheap statement: the
    /// scheduler asks it before offering work to every idle node, so that an
    /// idle cluster costs one statement per tick instead of one claim per node.
    public func hasClaimable() async throws -> Bool {
        try await database.withConnection(lane: lane) { conn in
            try !conn.query(prepared: """
                SELECT 1 FROM jobs j
                WHERE j.status IN (\(Self.schedulableSQL)) AND EXISTS (
                    SELECT 1 FROM segments s
                    WHERE s.job_id = j.id AND s.state = 'pending' AND s.not_before <= now()
                      AND s.attempts < j.max_attempts)
                LIMIT 1
                """).rows.isEmpty
        }
    }

    /// Grants up to `limit` pending segments to `node` in one statement.
    ///
    /// Only an `enabled` registered node gets leases, only for jobs that are
    /// QUEUED or PROCESSING and whose label requirement the node's labels
    /// satisfy, and only for segments whose retry back-off (`not_before`) has
    /// passed. Fairness: each candidate's turn is (segments its user already
    /// has leased) + (its rank within that user's pending work, oldest job
    /// first), so users with fewer running segments go first and one claim
    /// interleaves users instead of draining the oldest job. Each grant bumps
    /// `epoch` and `attempts`; the job moves QUEUED -> PROCESSING.
    ///
    /// Failure policy: a node blocklisted for a job gets none of its
    /// segments, and a segment is not given back to a node that failed it
    /// while another eligible node (online, enabled, label-matching, not
    /// blocklisted for the job, and not among the segment's failed nodes)
    /// exists; if this node is the only one left, it may try again.
    ///
    /// Cost is bounded by the claim, not by the backlog: for each user with
    /// schedulable jobs it walks those jobs oldest first (`jobs_schedulable_user`)
    /// and each job's pending segments in order (`segments_pending`), and stops
    /// after `limit + claimSlack` candidates per user. A segment whose rank within its
    /// user is r <= limit + claimSlack is among them with the same rank as if
    /// every pending segment were ranked, and a segment ranked beyond `limit`
    /// can never be among the `limit` picked (its user has `limit` earlier
    /// ones with a smaller turn), so the picks are the same; the slack only
    /// serves claims running at once, whose picks this one skips (SKIP LOCKED).
    /// The user's load counts leased segments of schedulable jobs: a job
    /// leaving QUEUED/PROCESSING cancels its open segments, so no other job
    /// holds a lease.
    public func claim(node: String, limit: Int) async throws -> [GrantedLease] {
        guard limit > 0 else { return [] }
        let ttl = policy.ttl.seconds
        let limit = min(limit, 10_000)
        return try await database.transaction(lane: lane) { conn in
            try conn.query(prepared: Self.claimStatement, node, limit, ttl, Self.claimSlack, coordinator)
                .rows.map(Self.grantedLease(row:))
        }
    }

    /// Candidates beyond `limit` that a claim looks at, for the picks of concurrent claims it
    /// skips: the coordinator's pool runs at most 8 statements at once, each claiming a node's
    /// free slots (2 by default). Each schedulable job of a user yields up to `limit + claimSlack`
    /// candidates before the user's are cut to as many, so the cost grows with that, not with
    /// the pending backlog.
    static let claimSlack = 16

    /// The SQL literal list of schedulable statuses: spelled out (not a parameter) so that the
    /// planner can match the partial indexes on schedulable jobs.
    static let schedulableSQL = JobStatus.allCases.filter(\.isSchedulable).map { "'\($0.rawValue)'" }
        .joined(separator: ", ")

    /// `$1` node, `$2` limit, `$3` TTL in seconds, `$4` slack, `$5` coordinator; see ``claim(node:limit:)``.
    static let claimStatement = """
        WITH me AS (
            SELECT labels FROM nodes WHERE name = $1 AND admin_state = 'enabled'
        ), users AS (
            SELECT DISTINCT j.user_id FROM jobs j WHERE j.status IN (\(schedulableSQL))
        ), ranked AS (
            SELECT c.job_id, c.idx, c.created_at,
                   l.leased + row_number() OVER (PARTITION BY u.user_id ORDER BY c.created_at, c.job_id, c.idx) AS turn
            FROM users u
            CROSS JOIN LATERAL (
                SELECT count(*) AS leased
                FROM jobs j JOIN segments s ON s.job_id = j.id AND s.state = 'leased'
                WHERE j.user_id = u.user_id AND j.status IN (\(schedulableSQL))
            ) l
            CROSS JOIN LATERAL (
                SELECT j.id AS job_id, j.created_at, p.idx
                FROM jobs j CROSS JOIN me
                CROSS JOIN LATERAL (
                    SELECT s.idx FROM segments s
                    WHERE s.job_id = j.id AND s.state = 'pending' AND s.not_before <= now()
                      AND s.attempts < j.max_attempts
                      AND (NOT ($1 = ANY (s.failed_nodes)) OR NOT EXISTS (
                          SELECT 1 FROM nodes o
                          WHERE o.name <> $1 AND o.state = 'online' AND o.admin_state = 'enabled'
                            AND j.label_requirement <@ o.labels AND NOT (o.name = ANY (s.failed_nodes))
                            AND NOT EXISTS (
                                SELECT 1 FROM job_node_failures b
                                WHERE b.job_id = s.job_id AND b.node = o.name AND b.blocklisted_at IS NOT NULL)))
                    ORDER BY s.idx
                    LIMIT $2::int + $4::int
                ) p
                WHERE j.user_id = u.user_id AND j.status IN (\(schedulableSQL))
                  AND j.label_requirement <@ me.labels
                  AND NOT EXISTS (
                      SELECT 1 FROM job_node_failures b
                      WHERE b.job_id = j.id AND b.node = $1 AND b.blocklisted_at IS NOT NULL)
                ORDER BY j.created_at, j.id, p.idx
                LIMIT $2::int + $4::int
            ) c
        ), picked AS (
            SELECT s.job_id, s.idx, r.turn, r.created_at
            FROM segments s JOIN ranked r ON r.job_id = s.job_id AND r.idx = s.idx
            WHERE s.state = 'pending'
            ORDER BY r.turn, r.created_at, s.job_id, s.idx
            LIMIT $2::int
            FOR UPDATE OF s SKIP LOCKED
        ), granted AS (
            UPDATE segments s
            SET state = 'leased', node = $1, epoch = s.epoch + 1, attempts = s.attempts + 1,
                lease_expires_at = now() + make_interval(secs => $3::float8), resumable_by = NULL,
                coordinator = $5::text
            FROM picked p
            WHERE s.job_id = p.job_id AND s.idx = p.idx
            RETURNING s.job_id, s.idx, s.epoch, s.attempts, s.spec, s.lease_expires_at, p.turn, p.created_at
        ), started AS (
            UPDATE jobs j SET status = 'PROCESSING', updated_at = now()
            WHERE j.id IN (SELECT job_id FROM granted) AND j.status = 'QUEUED'
            RETURNING j.id
        ), grant_events AS (
            INSERT INTO job_events (job_id, kind, segment, node, epoch, reason, detail)
            SELECT job_id, 'lease_granted', idx, $1, epoch, 'claim', 'attempt ' || attempts FROM granted
        ), status_events AS (
            INSERT INTO job_events (job_id, kind, node, reason, detail)
            SELECT id, 'status', $1, 'first lease granted', 'QUEUED->PROCESSING' FROM started
        )
        SELECT g.job_id, g.idx, g.epoch, g.attempts, g.spec, g.lease_expires_at,
               j.user_id, j.format, j.quality, j.max_width, j.max_height, j.size_bytes, j.ext,
               (j.probe->>'width')::int AS probe_width, (j.probe->>'height')::int AS probe_height,
               (j.probe->>'rotation')::int AS probe_rotation
        FROM granted g JOIN jobs j ON j.id = g.job_id
        ORDER BY g.turn, g.created_at, g.job_id, g.idx
        """

    static func grantedLease(row: PostgresRow) throws -> GrantedLease {
                let formatName = try row.string("format")
                guard let format = ImageFormat(name: formatName) else {
                    throw StoreError.decoding("unknown image format \(formatName)")
                }
                return GrantedLease(
                    ref: LeaseRef(jobID: try row.uuid("job_id"), segment: UInt32(try row.int("idx")),
                                  epoch: UInt64(try row.int64("epoch"))),
                    spec: try row.json("spec"),
                    output: OutputOptions(
                        format: format, quality: UInt8(clamping: try row.int("quality")),
                        maxWidth: UInt32(clamping: try row.int("max_width")),
                        maxHeight: UInt32(clamping: try row.int("max_height"))),
                    userID: try row.uuid("user_id"),
                    sourceSizeBytes: try row.int64("size_bytes"),
                    sourceExt: try row.string("ext"),
                    expiresAt: try row.date("lease_expires_at"),
                    attempt: try row.int("attempts"),
                    sourceWidth: try row.optionalInt("probe_width"),
                    sourceHeight: try row.optionalInt("probe_height"),
                    sourceRotation: try row.optionalInt("probe_rotation"))
    }

    /// Extends every lease `node` holds by the TTL (one statement, on each
    /// heartbeat) and returns the leases it still holds, so the caller can
    /// spot leases the node thinks it has but lost.
    public func renew(node: String) async throws -> [LeaseRef] {
        let ttl = policy.ttl.seconds
        return try await database.withConnection(lane: lane) { conn in
            try conn.query("""
                UPDATE segments SET lease_expires_at = now() + make_interval(secs => $2::float8)
                WHERE node = $1 AND state = 'leased'
                RETURNING job_id, idx, epoch
                """, node, ttl).rows.map(Self.leaseRef(row:)).sorted(by: Self.order)
        }
    }

    /// Extends the leases of every node in `nodes` by the TTL in one
    /// statement: heartbeats are batched (the coordinator flushes them every
    /// few hundred milliseconds), so that a thousand idle nodes cost one
    /// statement per flush instead of one per heartbeat. Returns how many
    /// leases were renewed.
    @discardableResult
    public func renew(nodes: [String]) async throws -> Int {
        guard !nodes.isEmpty else { return 0 }
        let ttl = policy.ttl.seconds
        let names = try PostgresJSON(nodes)
        return try await database.withConnection(lane: lane) { conn in
            // Rows locked in key order: one statement touching the leases of many nodes must not
            // deadlock with the completions and failures that lock one of them each.
            try conn.query(prepared: """
                UPDATE segments s SET lease_expires_at = now() + make_interval(secs => $2::float8)
                FROM (
                    SELECT job_id, idx FROM segments
                    WHERE state = 'leased' AND node IN (SELECT jsonb_array_elements_text($1::jsonb))
                    ORDER BY job_id, idx
                    FOR UPDATE
                ) v
                WHERE s.job_id = v.job_id AND s.idx = v.idx AND s.state = 'leased'
                """, names, ttl).affectedRows
        }
    }

    /// The leases a node currently holds.
    public func leases(node: String) async throws -> [LeaseRef] {
        try await database.withConnection(lane: lane) { conn in
            try conn.query("SELECT job_id, idx, epoch FROM segments WHERE node = $1 AND state = 'leased'", node)
                .rows.map(Self.leaseRef(row:)).sorted(by: Self.order)
        }
    }

    /// Whether `lease` is the current lease held by `node` (e.g. to accept a FRAME).
    public func isCurrent(_ lease: LeaseRef, node: String) async throws -> Bool {
        try await database.withConnection(lane: lane) { conn in
            try !conn.query("""
                SELECT 1 FROM segments WHERE job_id = $1::uuid AND idx = $2::int AND epoch = $3::bigint
                  AND node = $4 AND state = 'leased'
                """, lease.jobID, lease.storeSegment, lease.storeEpoch, node).rows.isEmpty
        }
    }

    /// Takes back every lease of `node` at once (its connection dropped, its
    /// heartbeats stopped, it was revoked or drained hard).
    ///
    /// A lost lease never costs a decode attempt (`attempts` counts
    /// SEGMENT_FAILED only); with `chargeAttempt` true (the default) it counts
    /// a node loss instead, and a segment that has lost its node
    /// `max_node_losses` times fails, failing its job with NODES_LOST. Pass
    /// false when the node was not at fault (coordinator shutdown, a stale
    /// session). The node may still resume the segment under the same epoch
    /// (``resume(node:held:)``) until someone else claims it.
    public func requeue(
        node: String, reason: String, code: ErrorCode = .heartbeatTimeout, chargeAttempt: Bool = true
    ) async throws -> LeaseRelease {
        try await database.transaction(lane: lane) { conn in
            try Self.release(
                conn, condition: "node = $4", extra: [node], skipLocked: false, limit: Int.max,
                kind: .leaseRequeued, reason: reason, code: code, countLoss: chargeAttempt)
        }
    }

    /// Hands one lease back to pending without charging anything (the node
    /// was not at fault, e.g. a resumed lease whose frames were lost in the
    /// blip). Returns false if it was not the current lease.
    public func giveBack(_ lease: LeaseRef, node: String, reason: String) async throws -> Bool {
        try await database.transaction(lane: lane) { conn in
            try !Self.release(
                conn, condition: "job_id = $4::uuid AND idx = $5::int AND epoch = $6::bigint AND node = $7",
                extra: [lease.jobID.uuidString.lowercased(), "\(lease.storeSegment)", "\(lease.storeEpoch)", node],
                skipLocked: false, limit: 1, kind: .leaseRequeued, reason: reason, code: .heartbeatTimeout,
                countLoss: false).isEmpty
        }
    }

    /// A node reconnected and offers the leases it kept working on (HELLO
    /// `heldLeases`); returns those it may continue (WELCOME `resumedLeases`).
    ///
    /// A lease is resumed when its job is still QUEUED/PROCESSING, its epoch is
    /// current, and the segment is either still leased to this node (held
    /// through the coordinator's resume grace) or back to pending after this
    /// node lost it and nobody has claimed it since (`resumable_by`). The epoch
    /// does not move: nobody else ever held it, so fencing is unaffected. A
    /// resumed pending segment gets its grant's attempt back and the node loss
    /// it was charged is taken back. Every resumption writes `lease_resumed`.
    /// Every other lease the store still gives this node (from an earlier
    /// session, not offered or not resumable) goes back to pending in the same
    /// transaction, uncharged: the node will not work on it.
    public func resume(node: String, held: [LeaseRef]) async throws -> (resumed: [GrantedLease], released: LeaseRelease) {
        let ttl = policy.ttl.seconds
        let schedulable = PostgresConnection.textArray(JobStatus.allCases.filter(\.isSchedulable))
        return try await database.transaction(lane: lane) { conn in
            var resumed: [GrantedLease] = []
            for ref in held.sorted(by: Self.order) {
                guard let row = try conn.query("""
                    SELECT s.state FROM segments s JOIN jobs j ON j.id = s.job_id
                    WHERE s.job_id = $1::uuid AND s.idx = $2::int AND s.epoch = $3::bigint
                      AND j.status = ANY($5::text[])
                      AND ((s.state = 'leased' AND s.node = $4) OR (s.state = 'pending' AND s.resumable_by = $4))
                    FOR UPDATE OF s
                    """, ref.jobID, ref.storeSegment, ref.storeEpoch, node, schedulable).first
                else {
                    // The segment moved on (claimed by another node, done, or its job ended): the
                    // node will abandon it without sending its results, and the audit trail says so.
                    _ = try Self.fence(conn, ref, node: node, what: "lease offered on reconnect (not resumed)")
                    continue
                }
                let wasPending = try row.string("state") == SegmentState.pending.rawValue
                try conn.query("""
                    UPDATE segments SET state = 'leased', node = $3, resumable_by = NULL,
                        lease_expires_at = now() + make_interval(secs => $4::float8),
                        attempts = attempts + $5::int, node_losses = greatest(node_losses - $5::int, 0),
                        coordinator = $6::text
                    WHERE job_id = $1::uuid AND idx = $2::int
                    """, ref.jobID, ref.segment, node, ttl, wasPending ? 1 : 0, self.coordinator)
                try conn.recordEvent(
                    job: ref.jobID, kind: .leaseResumed, segment: ref.segment, node: node, epoch: ref.epoch,
                    reason: "node reconnected",
                    detail: wasPending ? "reclaimed after requeue (nobody had claimed it)" : "held through the resume grace")
                let info = try conn.query("""
                    SELECT s.job_id, s.idx, s.epoch, s.attempts, s.spec, s.lease_expires_at,
                           j.user_id, j.format, j.quality, j.max_width, j.max_height, j.size_bytes, j.ext,
                       (j.probe->>'width')::int AS probe_width, (j.probe->>'height')::int AS probe_height,
                       (j.probe->>'rotation')::int AS probe_rotation
                    FROM segments s JOIN jobs j ON j.id = s.job_id
                    WHERE s.job_id = $1::uuid AND s.idx = $2::int
                    """, ref.jobID, ref.segment).first!
                resumed.append(try Self.grantedLease(row: info))
            }
            let keep = "{" + resumed.map { "\($0.ref.jobID.uuidString.lowercased())/\($0.ref.segment)/\($0.ref.epoch)" }
                .joined(separator: ",") + "}"
            let released = try Self.release(
                conn, condition: "node = $4 AND NOT ((job_id::text || '/' || idx || '/' || epoch) = ANY ($5::text[]))",
                extra: [node, keep], skipLocked: false, limit: Int.max, kind: .leaseRequeued,
                reason: "node reconnected without these leases", code: .heartbeatTimeout, countLoss: false)
            return (resumed, released)
        }
    }

    /// The reaper: takes back leases past `lease_expires_at` (their node
    /// stopped renewing), charging a node loss and counting a node failure.
    public func expireOverdue(limit: Int = 1000) async throws -> LeaseRelease {
        try await database.transaction(lane: lane) { conn in
            let result = try Self.release(
                conn, condition: "lease_expires_at < now()", extra: [], skipLocked: true, limit: limit,
                kind: .leaseExpired, reason: "lease expired", code: .heartbeatTimeout, countLoss: true)
            try Self.countNodeFailures(conn, result.released.map(\.lease.node))
            return result
        }
    }

    /// Records a finished segment if `lease` is still the current lease held
    /// by `node`; otherwise records a fence event and reports `.stale`.
    ///
    /// With `slice` (storage kind s3: the segment's frames already written as a slice object),
    /// its manifest row goes into `segment_slices` in the same transaction, so a slice is
    /// referenced exactly when its segment is done, and only under the accepted epoch.
    public func complete(_ lease: LeaseRef, node: String, slice: SegmentSliceRecord? = nil) async throws -> CompletionOutcome {
        if let slice, slice.segment != lease.segment || slice.epoch != lease.epoch {
            throw StoreError.invalidState("slice of segment \(slice.segment) epoch \(slice.epoch) given for lease \(lease)")
        }
        return try await database.transaction(lane: lane) { conn in
            // Lock the job row first (same order as cancel) so that concurrent
            // completions of one job serialise and the last one sees all done.
            guard try conn.query(prepared: "SELECT 1 FROM jobs WHERE id = $1::uuid FOR UPDATE", lease.jobID).first != nil else {
                return .stale(current: nil)
            }
            let done = try conn.query(prepared: """
                UPDATE segments SET state = 'done', done_at = now(), lease_expires_at = NULL
                WHERE job_id = $1::uuid AND idx = $2::int AND epoch = $3::bigint AND node = $4 AND state = 'leased'
                RETURNING sample_count, verdict_node, verdict_code
                """, lease.jobID, lease.storeSegment, lease.storeEpoch, node).first
            guard let done else {
                return .stale(current: try Self.fence(conn, lease, node: node, what: "SEGMENT_DONE"))
            }
            let samples = try done.int("sample_count")
            if let slice {
                try conn.query("""
                    INSERT INTO segment_slices (job_id, idx, epoch, object_key, length, entries)
                    VALUES ($1::uuid, $2::int, $3::bigint, $4, $5::bigint, $6::jsonb)
                    ON CONFLICT (job_id, idx) DO UPDATE SET epoch = EXCLUDED.epoch, object_key = EXCLUDED.object_key,
                        length = EXCLUDED.length, entries = EXCLUDED.entries, created_at = now()
                    """, lease.jobID, lease.storeSegment, lease.storeEpoch, slice.key, slice.length, slice.entriesJSON)
            }
            // A node that declared this segment undecodable was wrong: count it against that node.
            var contradictedNode: String?
            if let wrong = try done.optionalString("verdict_node"), wrong != node {
                contradictedNode = wrong
                try conn.query("""
                    UPDATE nodes SET contradicted_verdicts = contradicted_verdicts + 1, updated_at = now() WHERE name = $1
                    """, wrong)
                try conn.recordEvent(
                    job: lease.jobID, kind: .verdictContradicted, segment: lease.segment, node: wrong,
                    reason: try done.optionalString("verdict_code") ?? "", detail: "node \(node) finished the segment")
            }
            // The job's progress, the node's last activity and the event, in one round trip.
            let row = try conn.query(prepared: """
                WITH progress AS (
                    UPDATE jobs SET frames_done = frames_done + $2::bigint, segments_done = segments_done + 1,
                                    updated_at = now()
                    WHERE id = $1::uuid
                    RETURNING frames_done, frame_count, segments_done, segment_count
                ), touched AS (
                    UPDATE nodes SET updated_at = now() WHERE name = $3
                ), event AS (
                    INSERT INTO job_events (job_id, kind, segment, node, epoch, reason, detail)
                    VALUES ($1::uuid, $4, $5::int, $3, $6::bigint, 'segment done', $2::bigint || ' frames')
                )
                SELECT * FROM progress
                """, lease.jobID, samples, node, JobEventKind.segmentDone.rawValue, lease.storeSegment,
                lease.storeEpoch).first!
            return .accepted(JobProgress(
                jobID: lease.jobID, framesDone: try row.int64("frames_done"), frameCount: try row.int64("frame_count"),
                segmentsDone: try row.int("segments_done"), segmentCount: try row.int("segment_count"),
                contradicted: contradictedNode))
        }
    }

    /// Records a segment failure reported by `node` under `lease`.
    ///
    /// A retryable code with attempts left puts the segment back to pending
    /// after a back-off; a non-retryable code fails the job with that code at
    /// once; the last attempt fails the job with `ATTEMPTS_EXHAUSTED`.
    /// `SHUTTING_DOWN` is a hand-back, not a failure: the segment is requeued
    /// (`lease_requeued`) after `policy.handbackDelay`, its attempt refunded.
    /// `OBJECT_STORE_UNAVAILABLE` (the coordinator's READ could not reach the
    /// store) is requeued likewise after `policy.storeOutageDelay`, uncharged.
    ///
    /// The node joins the segment's `failed_nodes` (claim prefers other
    /// nodes for it) and its failure tally for the job grows; at
    /// `policy.blocklistAfter` failures it is blocklisted for the job
    /// (`node_blocklisted` event), and if no eligible node is left the job
    /// fails with NO_ELIGIBLE_NODE instead of waiting for ever.
    public func fail(_ lease: LeaseRef, node: String, code: ErrorCode, message: String) async throws -> FailureOutcome {
        let policy = self.policy
        return try await database.transaction(lane: lane) { conn in
            guard let job = try conn.query(
                "SELECT max_attempts FROM jobs WHERE id = $1::uuid FOR UPDATE", lease.jobID).first
            else { return .stale(current: nil) }
            let maxAttempts = try job.int("max_attempts")
            guard let seg = try conn.query("""
                SELECT attempts FROM segments
                WHERE job_id = $1::uuid AND idx = $2::int AND epoch = $3::bigint AND node = $4 AND state = 'leased'
                FOR UPDATE
                """, lease.jobID, lease.storeSegment, lease.storeEpoch, node).first
            else {
                return .stale(current: try Self.fence(conn, lease, node: node, what: "SEGMENT_FAILED"))
            }
            let attempts = try seg.int("attempts")
            if code == .objectStoreUnavailable {
                // The coordinator could not read the source from the object store (its READ answered
                // OBJECT_STORE_UNAVAILABLE after retrying): an outage says nothing about the segment or
                // the node, so nothing is charged and the segment waits `storeOutageDelay` before it is
                // offered again. The job waits out the outage instead of running out of attempts.
                let notBefore = try conn.query("""
                    UPDATE segments SET state = 'pending', node = NULL, lease_expires_at = NULL,
                        attempts = greatest(attempts - 1, 0), last_error_code = $3, last_error_message = $4,
                        not_before = clock_timestamp() + make_interval(secs => $5::float8)
                    WHERE job_id = $1::uuid AND idx = $2::int
                    RETURNING not_before
                    """, lease.jobID, lease.segment, code.name, message, policy.storeOutageDelay.seconds).first!.date("not_before")
                try conn.recordEvent(
                    job: lease.jobID, kind: .leaseRequeued, segment: lease.segment, node: node, epoch: lease.epoch,
                    reason: code.name, detail: "\(message) (not charged)")
                return .retrying(notBefore: notBefore, attempts: max(attempts - 1, 0), maxAttempts: maxAttempts)
            }
            if code == .shuttingDown {
                // A lease handed back untried (the node is draining or has no free slot) says nothing
                // about the segment or the node: no failure is counted and the attempt is refunded.
                // Other nodes are preferred for it (failed_nodes), and a short pause keeps a node that
                // keeps handing work back from being offered it again in a tight loop.
                let notBefore = try conn.query("""
                    UPDATE segments SET state = 'pending', node = NULL, lease_expires_at = NULL,
                        attempts = greatest(attempts - 1, 0),
                        failed_nodes = CASE WHEN $3 = ANY (failed_nodes) THEN failed_nodes
                                            ELSE array_append(failed_nodes, $3) END,
                        not_before = clock_timestamp() + make_interval(secs => $4::float8)
                    WHERE job_id = $1::uuid AND idx = $2::int
                    RETURNING not_before
                    """, lease.jobID, lease.segment, node, policy.handbackDelay.seconds).first!.date("not_before")
                try conn.recordEvent(
                    job: lease.jobID, kind: .leaseRequeued, segment: lease.segment, node: node, epoch: lease.epoch,
                    reason: code.name, detail: "\(message) (not charged)")
                return .retrying(notBefore: notBefore, attempts: max(attempts - 1, 0), maxAttempts: maxAttempts)
            }
            try Self.countNodeFailures(conn, [node])
            try conn.query("""
                UPDATE segments SET failed_nodes = array_append(failed_nodes, $3)
                WHERE job_id = $1::uuid AND idx = $2::int AND NOT ($3 = ANY (failed_nodes))
                """, lease.jobID, lease.segment, node)
            let blocklisted = try Self.tallyFailure(conn, job: lease.jobID, node: node, policy: policy)
            if !code.isRetryable {
                // One node's word does not fail a job: the first non-retryable verdict is
                // held while another eligible node tries the segment. A verdict stands when
                // a second node agrees, when the same node says it again (no other was
                // left), or when no other eligible node exists now.
                let verdict = try conn.query(
                    "SELECT verdict_node FROM segments WHERE job_id = $1::uuid AND idx = $2::int",
                    lease.jobID, lease.segment).first?.optionalString("verdict_node")
                if verdict == nil, try Self.otherEligibleNodeExists(conn, job: lease.jobID, segment: lease.segment, node: node) {
                    try conn.query("""
                        UPDATE segments SET state = 'pending', node = NULL, lease_expires_at = NULL,
                            attempts = greatest(attempts - 1, 0), verdict_node = $3, verdict_code = $4,
                            last_error_code = $4, last_error_message = $5, not_before = clock_timestamp()
                        WHERE job_id = $1::uuid AND idx = $2::int
                        """, lease.jobID, lease.segment, node, code.name, message)
                    try conn.recordEvent(
                        job: lease.jobID, kind: .verdictUnconfirmed, segment: lease.segment, node: node,
                        epoch: lease.epoch, reason: code.name, detail: "to be confirmed on another node: \(message)")
                    return .awaitingConfirmation(verdict: code)
                }
                if let verdict, verdict != node {
                    try conn.recordEvent(
                        job: lease.jobID, kind: .segmentFailed, segment: lease.segment, node: node, epoch: lease.epoch,
                        reason: code.name, detail: "confirms the verdict of node \(verdict)")
                }
            }
            if code.isRetryable && attempts < maxAttempts {
                let delay = policy.retryDelay(afterAttempt: attempts).seconds
                let notBefore = try conn.query("""
                    UPDATE segments SET state = 'pending', node = NULL, lease_expires_at = NULL,
                        last_error_code = $3, last_error_message = $4,
                        not_before = clock_timestamp() + make_interval(secs => $5::float8)
                    WHERE job_id = $1::uuid AND idx = $2::int
                    RETURNING not_before
                    """, lease.jobID, lease.segment, code.name, message, delay).first!.date("not_before")
                try conn.recordEvent(
                    job: lease.jobID, kind: .segmentRetry, segment: lease.segment, node: node, epoch: lease.epoch,
                    reason: code.name, detail: message)
                if blocklisted, let failure = try Self.failIfNoEligibleNode(conn, job: lease.jobID, node: node) {
                    return .jobFailed(failure: failure)
                }
                return .retrying(notBefore: notBefore, attempts: attempts, maxAttempts: maxAttempts)
            }
            try conn.query("""
                UPDATE segments SET state = 'failed', lease_expires_at = NULL, last_error_code = $3, last_error_message = $4
                WHERE job_id = $1::uuid AND idx = $2::int
                """, lease.jobID, lease.segment, code.name, message)
            try conn.recordEvent(
                job: lease.jobID, kind: .segmentFailed, segment: lease.segment, node: node, epoch: lease.epoch,
                reason: code.name, detail: message)
            let jobCode: ErrorCode = code.isRetryable ? .attemptsExhausted : code
            let jobMessage = code.isRetryable
                ? "segment \(lease.segment) failed \(attempts) times; last error \(code.name): \(message)"
                : "segment \(lease.segment): \(message)"
            let failure = try conn.failJob(
                lease.jobID, code: jobCode, message: jobMessage, reason: "segment failed", node: node)
            return .jobFailed(failure: failure)
        }
    }

    // MARK: Internals

    static func leaseRef(row: PostgresRow) throws -> LeaseRef {
        LeaseRef(jobID: try row.uuid("job_id"), segment: UInt32(try row.int("idx")), epoch: UInt64(try row.int64("epoch")))
    }

    static func order(_ a: LeaseRef, _ b: LeaseRef) -> Bool {
        (a.jobID.uuidString, a.segment) < (b.jobID.uuidString, b.segment)
    }

    /// Records that a result for a non-current lease was refused; returns what is current.
    static func fence(_ conn: PostgresConnection, _ lease: LeaseRef, node: String, what: String) throws -> SegmentSnapshot? {
        guard let row = try conn.query(
            "SELECT state, epoch, node FROM segments WHERE job_id = $1::uuid AND idx = $2::int",
            lease.jobID, lease.storeSegment).first
        else { return nil }
        let current = SegmentSnapshot(
            state: try row.enum("state"), epoch: UInt64(try row.int64("epoch")), node: try row.optionalString("node"))
        try conn.recordEvent(
            job: lease.jobID, kind: .fenced, segment: lease.segment, node: node, epoch: lease.epoch,
            reason: "stale \(what)",
            detail: "current epoch \(current.epoch), state \(current.state.rawValue), node \(current.node ?? "-")")
        return current
    }

    /// Counts one more SEGMENT_FAILED of `node` for `job`; blocklists the node
    /// for the job when the tally reaches the policy's limit. Returns whether
    /// it was blocklisted just now.
    static func tallyFailure(_ conn: PostgresConnection, job: UUID, node: String, policy: LeasePolicy) throws -> Bool {
        let row = try conn.query("""
            INSERT INTO job_node_failures AS f (job_id, node, failures) VALUES ($1::uuid, $2, 1)
            ON CONFLICT (job_id, node) DO UPDATE SET failures = f.failures + 1, last_failed_at = now()
            RETURNING failures, blocklisted_at IS NOT NULL AS blocked
            """, job, node).first!
        let failures = try row.int("failures")
        guard failures >= policy.blocklistAfter, try row.bool("blocked") == false else { return false }
        try conn.query("UPDATE job_node_failures SET blocklisted_at = now() WHERE job_id = $1::uuid AND node = $2", job, node)
        try conn.recordEvent(
            job: job, kind: .nodeBlocklisted, node: node, reason: "failed \(failures) segments of this job",
            detail: "no more segments of this job go to this node")
        return true
    }

    /// Fails `job` with NO_ELIGIBLE_NODE when every online, enabled,
    /// label-matching node is blocklisted for it (waiting would hang it).
    static func failIfNoEligibleNode(_ conn: PostgresConnection, job: UUID, node: String) throws -> JobFailure? {
        let eligible = try conn.query("""
            SELECT n.name FROM nodes n JOIN jobs j ON j.id = $1::uuid
            WHERE n.state = 'online' AND n.admin_state = 'enabled' AND j.label_requirement <@ n.labels
              AND NOT EXISTS (SELECT 1 FROM job_node_failures b
                              WHERE b.job_id = j.id AND b.node = n.name AND b.blocklisted_at IS NOT NULL)
            LIMIT 1
            """, job).rows
        guard eligible.isEmpty else { return nil }
        let blocked = try conn.query("""
            SELECT node FROM job_node_failures WHERE job_id = $1::uuid AND blocklisted_at IS NOT NULL ORDER BY node
            """, job).rows.map { try $0.string("node") }
        return try conn.failJob(
            job, code: .noEligibleNode,
            message: "every eligible node is blocklisted for this job after repeated segment failures: "
                + blocked.joined(separator: ", "),
            reason: "no eligible node", node: node)
    }

    /// Whether a node other than `node` could take the segment now: online,
    /// enabled, carrying the job's labels, not blocklisted for the job and
    /// not among the segment's failed nodes (the claim's own rule).
    static func otherEligibleNodeExists(_ conn: PostgresConnection, job: UUID, segment: UInt32, node: String) throws -> Bool {
        try !conn.query("""
            SELECT 1 FROM nodes o JOIN jobs j ON j.id = $1::uuid JOIN segments s ON s.job_id = j.id AND s.idx = $2::int
            WHERE o.name <> $3 AND o.state = 'online' AND o.admin_state = 'enabled'
              AND j.label_requirement <@ o.labels AND NOT (o.name = ANY (s.failed_nodes))
              AND NOT EXISTS (SELECT 1 FROM job_node_failures b
                              WHERE b.job_id = j.id AND b.node = o.name AND b.blocklisted_at IS NOT NULL)
            LIMIT 1
            """, job, segment, node).rows.isEmpty
    }

    static func countNodeFailures(_ conn: PostgresConnection, _ nodes: [String]) throws {
        var counts: [String: Int] = [:]
        for n in nodes { counts[n, default: 0] += 1 }
        for (n, c) in counts.sorted(by: { $0.key < $1.key }) {
            try conn.query("UPDATE nodes SET failures = failures + $2::int, updated_at = now() WHERE name = $1", n, c)
        }
    }

    /// Shared by requeue and expiry: leased segments matching `condition`
    /// go back to pending, remembering the node that lost them
    /// (`resumable_by`). The grant's attempt is refunded (a death is not a
    /// decode error); with `countLoss` the segment's `node_losses` grows, and
    /// a segment that reaches `max_node_losses` fails and fails its job with
    /// NODES_LOST.
    static func release(
        _ conn: PostgresConnection, condition: String, extra: [String], skipLocked: Bool, limit: Int,
        kind: JobEventKind, reason: String, code: ErrorCode, countLoss: Bool
    ) throws -> LeaseRelease {
        let loss = countLoss ? 1 : 0
        let params: [(any PostgresParameter)?] = [kind.rawValue, reason, code.name] + extra.map { $0 } + [min(limit, Int(Int32.max))]
        let limitParam = "$\(params.count)"
        let rows = try conn.query("""
            WITH victims AS (
                SELECT job_id, idx, node, epoch FROM segments
                WHERE state = 'leased' AND \(condition)
                ORDER BY job_id, idx
                LIMIT \(limitParam)::int
                FOR UPDATE\(skipLocked ? " SKIP LOCKED" : "")
            ), released AS (
                UPDATE segments s SET
                    attempts = greatest(s.attempts - 1, 0),
                    node_losses = s.node_losses + \(loss),
                    state = CASE WHEN s.node_losses + \(loss) >= j.max_node_losses THEN 'failed' ELSE 'pending' END,
                    node = CASE WHEN s.node_losses + \(loss) >= j.max_node_losses THEN s.node ELSE NULL END,
                    resumable_by = CASE WHEN s.node_losses + \(loss) >= j.max_node_losses THEN NULL ELSE v.node END,
                    lease_expires_at = NULL, not_before = now(),
                    last_error_code = $3, last_error_message = $2
                FROM victims v, jobs j
                WHERE s.job_id = v.job_id AND s.idx = v.idx AND j.id = s.job_id
                RETURNING s.job_id, s.idx, v.node, v.epoch, s.state, s.attempts, s.node_losses, j.max_node_losses
            ), events AS (
                INSERT INTO job_events (job_id, kind, segment, node, epoch, reason, detail)
                SELECT job_id, $1, idx, node, epoch, $2,
                       'segment ' || state || ', node loss ' || node_losses || ' of ' || max_node_losses
                       || \(countLoss ? "''" : "' (not charged)'")
                FROM released
            )
            SELECT job_id, idx, node, epoch, state, attempts, node_losses FROM released ORDER BY job_id, idx
            """, params).rows
        var released: [LeaseRelease.Released] = []
        var exhausted: [(UUID, UInt32, Int, String)] = []
        for row in rows {
            let ref = try leaseRef(row: row)
            let state: SegmentState = try row.enum("state")
            let attempts = try row.int("attempts")
            let losses = try row.int("node_losses")
            let node = try row.string("node")
            released.append(.init(
                lease: HeldLease(ref: ref, node: node), newState: state, attempts: attempts, nodeLosses: losses))
            if state == .failed { exhausted.append((ref.jobID, ref.segment, losses, node)) }
        }
        var failedJobs: [JobFailure] = []
        var seen = Set<UUID>()
        for (job, segment, losses, node) in exhausted where seen.insert(job).inserted {
            let message = "segment \(segment) lost its node \(losses) times (a poison segment?); last: \(reason)"
            if let failure = try conn.failJob(job, code: .nodesLost, message: message, reason: reason, node: node) {
                failedJobs.append(failure)
            }
        }
        return LeaseRelease(released: released, failedJobs: failedJobs)
    }
}

extension LeaseRef {
    /// `segment` and `epoch` as the `segments` table's integer and bigint
    /// columns hold them. A value no stored lease can have (a forged or
    /// corrupted ref from the wire) maps to -1, which matches no row: such a
    /// ref is answered like any unknown lease instead of trapping in an
    /// integer conversion or failing the whole statement.
    var storeSegment: Int32 { Int32(exactly: segment) ?? -1 }
    var storeEpoch: Int64 { Int64(exactly: epoch) ?? -1 }
}
