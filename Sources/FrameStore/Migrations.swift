import FrameCore
import Foundation

/// One versioned schema change: an ordered list of statements applied in a single transaction.
///
/// Statements are kept separate (rather than one script) because every
/// statement goes through `PQexecParams`, which runs exactly one command.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let statements: [String]
}

/// The schema's history, in Swift source so that the binary and its schema can never disagree.
///
/// ``apply(on:)`` runs at coordinator start-up: inside one transaction it
/// takes a transaction-scoped advisory lock (so two coordinators starting at
/// once serialise instead of racing), creates `schema_migrations` if needed,
/// and applies every migration whose version is not recorded yet, in order.
/// Running it again is a no-op. Never edit a released migration; append one.
public enum Migrations {
    /// Arbitrary but fixed key for `pg_advisory_xact_lock` ("FrameFlo" in ASCII).
    static let lockKey: Int64 = 0x4672_616D_6546_6C6F

    public static let all: [Migration] = [migration1, migration2, migration3, migration4, migration5, migration6, migration7, migration8, migration11, migration12, migration13]

    /// The highest version this build knows.
    public static var latestVersion: Int { all.map(\.version).max() ?? 0 }

    static func apply(on database: Database) async throws {
        let applied = try await database.transaction { conn -> [Int] in
            try conn.query("SELECT pg_advisory_xact_lock($1::bigint)", lockKey)
            try conn.query("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
            let done = Set(try conn.query("SELECT version FROM schema_migrations").rows.map { try $0.int("version") })
            if let newest = done.max(), newest > latestVersion {
                // A newer coordinator migrated this database; older code may not understand it.
                database.logger.warning("database schema is newer than this build",
                                        metadata: ["database": "\(newest)", "build": "\(latestVersion)"])
            }
            var newlyApplied: [Int] = []
            for migration in all.sorted(by: { $0.version < $1.version }) where !done.contains(migration.version) {
                for statement in migration.statements { try conn.query(statement) }
                try conn.query("INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)",
                               migration.version, migration.name)
                newlyApplied.append(migration.version)
            }
            return newlyApplied
        }
        if !applied.isEmpty {
            database.logger.info("applied database migrations", metadata: ["versions": "\(applied)"])
        }
    }

    private static func sqlList<S: Sequence>(_ values: S) -> String where S.Element: RawRepresentable, S.Element.RawValue == String {
        values.map { "'\($0.rawValue)'" }.joined(separator: ", ")
    }

    static let migration1 = Migration(version: 1, name: "initial schema", statements: [
        """
        CREATE TABLE users (
            id            uuid PRIMARY KEY,
            email         text NOT NULL CHECK (email = lower(email) AND email <> ''),
            password_hash text NOT NULL,
            name          text NOT NULL DEFAULT '',
            role          text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
            created_at    timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT users_email_key UNIQUE (email)
        )
        """,
        """
        CREATE TABLE jobs (
            id                uuid PRIMARY KEY,
            user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            original_filename text NOT NULL,
            ext               text NOT NULL,
            size_bytes        bigint NOT NULL CHECK (size_bytes >= 0),
            status            text NOT NULL CHECK (status IN (\(sqlList(JobStatus.allCases)))),
            fps_num           integer NOT NULL CHECK (fps_num > 0),
            fps_den           integer NOT NULL CHECK (fps_den > 0),
            format            text NOT NULL,
            quality           integer NOT NULL,
            max_width         integer NOT NULL DEFAULT 0,
            max_height        integer NOT NULL DEFAULT 0,
            duration_seconds  double precision,
            frame_count       bigint NOT NULL DEFAULT 0,
            frames_done       bigint NOT NULL DEFAULT 0,
            segment_count     integer NOT NULL DEFAULT 0,
            segments_done     integer NOT NULL DEFAULT 0,
            max_attempts      integer NOT NULL DEFAULT 3 CHECK (max_attempts > 0),
            error_code        text,
            error_message     text,
            label_requirement jsonb NOT NULL DEFAULT '{}'::jsonb,
            probe             jsonb,
            created_at        timestamptz NOT NULL DEFAULT now(),
            updated_at        timestamptz NOT NULL DEFAULT now(),
            completed_at      timestamptz,
            expires_at        timestamptz
        )
        """,
        "CREATE INDEX jobs_user_created ON jobs (user_id, created_at DESC)",
        "CREATE INDEX jobs_active ON jobs (created_at) WHERE status IN ('QUEUED', 'PROCESSING')",
        "CREATE INDEX jobs_expiry ON jobs (expires_at) WHERE expires_at IS NOT NULL AND status <> 'EXPIRED'",
        """
        CREATE TABLE segments (
            job_id             uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            idx                integer NOT NULL CHECK (idx >= 0),
            spec               jsonb NOT NULL,
            sample_count       integer NOT NULL CHECK (sample_count >= 0),
            state              text NOT NULL DEFAULT 'pending' CHECK (state IN (\(sqlList(SegmentState.allCases)))),
            node               text,
            epoch              bigint NOT NULL DEFAULT 0,
            lease_expires_at   timestamptz,
            attempts           integer NOT NULL DEFAULT 0,
            last_error_code    text,
            last_error_message text,
            not_before         timestamptz NOT NULL DEFAULT '-infinity',
            done_at            timestamptz,
            PRIMARY KEY (job_id, idx),
            CHECK ((state = 'leased') = (node IS NOT NULL AND lease_expires_at IS NOT NULL))
        )
        """,
        // The claim query scans pending segments; the reaper scans leases by expiry; requeue/renew by node.
        "CREATE INDEX segments_pending ON segments (job_id, idx) WHERE state = 'pending'",
        "CREATE INDEX segments_leased_node ON segments (node) WHERE state = 'leased'",
        "CREATE INDEX segments_lease_expiry ON segments (lease_expires_at) WHERE state = 'leased'",
        """
        CREATE TABLE nodes (
            name              text PRIMARY KEY,
            state             text NOT NULL DEFAULT 'offline' CHECK (state IN ('online', 'offline')),
            admin_state       text NOT NULL DEFAULT 'enabled' CHECK (admin_state IN ('enabled', 'draining', 'revoked')),
            slots             integer NOT NULL DEFAULT 0,
            labels            jsonb NOT NULL DEFAULT '{}'::jsonb,
            software_version  text NOT NULL DEFAULT '',
            address           text NOT NULL DEFAULT '',
            connected_at      timestamptz,
            last_heartbeat_at timestamptz,
            active_leases     integer NOT NULL DEFAULT 0,
            frames_total      bigint NOT NULL DEFAULT 0,
            failures          bigint NOT NULL DEFAULT 0,
            created_at        timestamptz NOT NULL DEFAULT now(),
            updated_at        timestamptz NOT NULL DEFAULT now()
        )
        """,
        """
        CREATE TABLE job_events (
            id      bigserial PRIMARY KEY,
            job_id  uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            at      timestamptz NOT NULL DEFAULT clock_timestamp(),
            kind    text NOT NULL,
            segment integer,
            node    text,
            epoch   bigint,
            reason  text,
            detail  text
        )
        """,
        "CREATE INDEX job_events_job ON job_events (job_id, id)",
    ])

    /// The failure policy (proto-spec/leases.md, "Failure policy") and lease resumption.
    ///
    /// - `segments.node_losses`: times the segment's node died holding it (connection lost,
    ///   heartbeats stopped, lease expired), counted apart from `attempts` (decode errors);
    ///   capped by `jobs.max_node_losses`.
    /// - `segments.failed_nodes`: nodes that reported SEGMENT_FAILED for it; claim prefers others.
    /// - `segments.resumable_by`: the node that lost the segment's lease, which may resume it
    ///   under the same epoch while nobody else has claimed it.
    /// - `job_node_failures`: per job and node, failures so far and when the node was blocklisted.
    static let migration2 = Migration(version: 2, name: "failure policy and lease resumption", statements: [
        """
        ALTER TABLE segments
            ADD COLUMN node_losses  integer NOT NULL DEFAULT 0,
            ADD COLUMN failed_nodes text[] NOT NULL DEFAULT '{}',
            ADD COLUMN resumable_by text
        """,
        "ALTER TABLE jobs ADD COLUMN max_node_losses integer NOT NULL DEFAULT 5 CHECK (max_node_losses > 0)",
        """
        CREATE TABLE job_node_failures (
            job_id         uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            node           text NOT NULL,
            failures       integer NOT NULL DEFAULT 0,
            last_failed_at timestamptz NOT NULL DEFAULT now(),
            blocklisted_at timestamptz,
            PRIMARY KEY (job_id, node)
        )
        """,
        "CREATE INDEX job_node_failures_node ON job_node_failures (node, last_failed_at)",
        // `frameflow nodes list` counts each node's failures of the last hour.
        "CREATE INDEX job_events_node_at ON job_events (node, at) WHERE node IS NOT NULL",
    ])

    /// The notification outbox: one row per job event and channel, written in
    /// the transaction that finishes the job, delivered (with retries) by the
    /// coordinator's dispatcher. `next_attempt_at` doubles as a claim: a
    /// dispatcher holding a row pushes it into the future, so a crashed
    /// dispatcher's rows come due again by themselves.
    static let migration3 = Migration(version: 3, name: "notification outbox", statements: [
        """
        CREATE TABLE notification_outbox (
            id              bigserial PRIMARY KEY,
            job_id          uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            event           text NOT NULL CHECK (event IN ('failed', 'completed')),
            channel         text NOT NULL CHECK (channel IN ('email', 'webhook')),
            state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'skipped', 'gave_up')),
            attempts        integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            last_attempt_at timestamptz,
            last_error      text,
            created_at      timestamptz NOT NULL DEFAULT now(),
            delivered_at    timestamptz
        )
        """,
        "CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_at) WHERE state = 'pending'",
        "CREATE INDEX notification_outbox_job ON notification_outbox (job_id)",
    ])

    /// A non-retryable verdict is confirmed on a second node (proto-spec/leases.md, "Failure policy").
    ///
    /// - `segments.verdict_node`, `verdict_code`: the first node's non-retryable SEGMENT_FAILED,
    ///   held while another node tries the segment; the job fails only if that node agrees.
    /// - `nodes.contradicted_verdicts`: how often another node finished a segment this node
    ///   had declared undecodable (`frameflow nodes list`, `GET /admin/nodes`).
    static let migration4 = Migration(version: 4, name: "verdict confirmation", statements: [
        "ALTER TABLE segments ADD COLUMN verdict_node text, ADD COLUMN verdict_code text",
        "ALTER TABLE nodes ADD COLUMN contradicted_verdicts integer NOT NULL DEFAULT 0",
    ])

    /// API clients: resumable (tus) uploads, refresh tokens and the download audit.
    ///
    /// - `tus_uploads`: one row per tus upload; `received` is the durable offset (bytes fsynced
    ///   in `uploads/partial/<id>`), advanced only after the fsync. The id is also the id the
    ///   job gets when the last byte lands, so a finish interrupted by a crash can tell whether
    ///   its job was committed. `options` holds the job options from the upload's metadata.
    /// - `refresh_tokens`: SHA-256 hashes only; a rotated token points at its successor, and
    ///   all tokens of one login share a `family` so reuse of a rotated token revokes them all.
    /// - `download_audit`: who fetched which archive or link, when; rows with `counted` are what the
    ///   per-user download rate limit counts (a ranged request continuing a download is not).
    static let migration5 = Migration(version: 5, name: "tus uploads, refresh tokens, download audit", statements: [
        """
        CREATE TABLE tus_uploads (
            id            uuid PRIMARY KEY,
            user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            filename      text NOT NULL,
            ext           text NOT NULL,
            length        bigint NOT NULL CHECK (length >= 0),
            received      bigint NOT NULL DEFAULT 0 CHECK (received >= 0 AND received <= length),
            options       jsonb NOT NULL,
            metadata      text NOT NULL DEFAULT '',
            state         text NOT NULL DEFAULT 'receiving'
                          CHECK (state IN ('receiving', 'done', 'refused', 'expired', 'terminated')),
            error_code    text,
            error_message text,
            created_at    timestamptz NOT NULL DEFAULT now(),
            updated_at    timestamptz NOT NULL DEFAULT now(),
            expires_at    timestamptz NOT NULL,
            finished_at   timestamptz
        )
        """,
        "CREATE INDEX tus_uploads_user_receiving ON tus_uploads (user_id) WHERE state = 'receiving'",
        "CREATE INDEX tus_uploads_due ON tus_uploads (expires_at) WHERE state = 'receiving'",
        """
        CREATE TABLE refresh_tokens (
            id          uuid PRIMARY KEY,
            user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            family      uuid NOT NULL,
            token_hash  text NOT NULL UNIQUE,
            created_at  timestamptz NOT NULL DEFAULT now(),
            expires_at  timestamptz NOT NULL,
            revoked_at  timestamptz,
            replaced_by uuid
        )
        """,
        "CREATE INDEX refresh_tokens_family ON refresh_tokens (family)",
        """
        CREATE TABLE download_audit (
            id      bigserial PRIMARY KEY,
            user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            job_id  uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            kind    text NOT NULL CHECK (kind IN ('archive', 'link', 'signed_archive')),
            counted boolean NOT NULL,
            remote  text,
            at      timestamptz NOT NULL DEFAULT now()
        )
        """,
        "CREATE INDEX download_audit_user_at ON download_audit (user_id, at)",
    ])

    /// Indexes that bound the lease claim (``LeaseStore/claim(node:limit:)``): it walks each
    /// user's schedulable jobs oldest first and stops after a few candidates, instead of
    /// ranking every pending segment, and counts each user's leased segments per job.
    ///
    /// - `jobs_schedulable_user`: a user's schedulable jobs in claim order (the predicate is the
    ///   claim's own, so the planner can use it).
    /// - `segments_leased_job`: the leased segments of one job.
    static let migration6 = Migration(version: 6, name: "bounded lease claim", statements: [
        """
        CREATE INDEX jobs_schedulable_user ON jobs (user_id, created_at, id)
        WHERE status IN (\(sqlList(JobStatus.allCases.filter(\.isSchedulable))))
        """,
        "CREATE INDEX segments_leased_job ON segments (job_id) WHERE state = 'leased'",
    ])

    /// Keeps the lease tables small under churn. Every lease changes its segment row three or
    /// more times (granted, renewed by each heartbeat batch, done), and none of those updates
    /// could be HOT: `segments_lease_expiry` indexed the renewed column. With a few hundred
    /// leases a second the partial indexes filled with dead entries faster than autovacuum's
    /// defaults (20 % of the table) came round, and every claim walked them: the claim became
    /// most of PostgreSQL's CPU.
    ///
    /// - `segments_lease_expiry` goes: the reaper finds expired leases among the few leased rows
    ///   through `segments_leased_job`, so renewals touch no indexed column and, with room left
    ///   on each page (fillfactor 70), stay on the page (HOT) without new index entries.
    /// - `segments` and `jobs` are vacuumed after 2 % of their rows changed (not 20 %), without
    ///   the cost delay, so dead index entries do not pile up between runs.
    static let migration11 = Migration(version: 11, name: "lease tables under churn", statements: [
        "DROP INDEX IF EXISTS segments_lease_expiry",
        """
        ALTER TABLE segments SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02,
            autovacuum_vacuum_threshold = 200, autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.05)
        """,
        """
        ALTER TABLE jobs SET (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02,
            autovacuum_vacuum_threshold = 100, autovacuum_vacuum_cost_delay = 0)
        """,
    ])

    /// Archives assembled from segment slices in the object store (docs/distributed-assembly.md).
    ///
    /// - `segment_slices`: the manifest of one done segment's slice object
    ///   (`parts/<job>/<segment>-<epoch>.zipslice`), written in the transaction that marks the
    ///   segment done, so only the accepted epoch's slice is ever referenced: its key, length and
    ///   `entries` (a JSON array: name, CRC-32, size, offset within the slice, seconds, DOS time).
    /// - `jobs.assembly_claimed_by`, `assembly_claim_expires_at`: which coordinator assembles the
    ///   job, until when; an expired claim may be taken by any other (``JobStore/claimAssembly``).
    /// - `jobs.assembly_upload_id`: the claimer's multipart upload, so that whoever takes a dead
    ///   claimer's claim over aborts it.
    static let migration7 = Migration(version: 7, name: "segment slices and the assembly claim", statements: [
        """
        CREATE TABLE segment_slices (
            job_id     uuid NOT NULL,
            idx        integer NOT NULL,
            epoch      bigint NOT NULL,
            object_key text NOT NULL,
            length     bigint NOT NULL CHECK (length >= 0),
            entries    jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (job_id, idx),
            FOREIGN KEY (job_id, idx) REFERENCES segments (job_id, idx) ON DELETE CASCADE
        )
        """,
        """
        ALTER TABLE jobs
            ADD COLUMN assembly_claimed_by       text,
            ADD COLUMN assembly_claim_expires_at timestamptz,
            ADD COLUMN assembly_upload_id        text
        """,
    ])

    /// Several coordinators on one database (issue 14). Version 7 is another branch's.
    ///
    /// - `coordinators`: one liveness row per running coordinator process, renewed every
    ///   few seconds; a row past `expires_at` is a dead coordinator, whose leases a survivor
    ///   takes back (``CoordinatorStore/takeOverExpired(by:limit:)``) before deleting the row.
    /// - `segments.coordinator`: the coordinator whose node session holds the lease (set by
    ///   the claim and by a resume), so that a survivor requeues exactly a dead one's leases.
    /// - `nodes.coordinator`: the coordinator the node is connected to; a stale session's end on
    ///   another coordinator does not mark a node offline that has moved on.
    /// - `jobs.assembling_by`, `assembling_since`: a second assembly claim, dropped by
    ///   migration 12 for version 7's columns (one claim for both archive paths).
    static let migration8 = Migration(version: 8, name: "several coordinators", statements: [
        """
        CREATE TABLE coordinators (
            id              text PRIMARY KEY,
            http_address    text NOT NULL DEFAULT '',
            cluster_address text NOT NULL DEFAULT '',
            started_at      timestamptz NOT NULL DEFAULT now(),
            renewed_at      timestamptz NOT NULL DEFAULT now(),
            expires_at      timestamptz NOT NULL
        )
        """,
        "CREATE INDEX coordinators_expiry ON coordinators (expires_at)",
        "ALTER TABLE segments ADD COLUMN coordinator text",
        "CREATE INDEX segments_leased_coordinator ON segments (coordinator) WHERE state = 'leased'",
        "ALTER TABLE nodes ADD COLUMN coordinator text",
        "ALTER TABLE jobs ADD COLUMN assembling_by text, ADD COLUMN assembling_since timestamptz",
    ])

    /// One assembly claim (issue 14). Version 7 (`assembly_claimed_by`, `assembly_claim_expires_at`,
    /// `assembly_upload_id`: a TTL claim, for the slice path) and version 8 (`assembling_by`,
    /// `assembling_since`: a liveness claim, for the local path) came from two branches and gave
    /// a job two independent "who assembles" claims. Version 7's columns are the one claim now,
    /// for both paths (``JobStore/claimAssembly(id:claimer:ttl:)``: free when its TTL lapsed or
    /// its holder's liveness row expired); a version-8 claim in flight is carried over, lasting
    /// as long as its holder's liveness row says (at once takeable when that row is gone).
    static let migration12 = Migration(version: 12, name: "one assembly claim", statements: [
        """
        UPDATE jobs j SET assembly_claimed_by = j.assembling_by,
            assembly_claim_expires_at = coalesce(
                (SELECT c.expires_at FROM coordinators c WHERE c.id = j.assembling_by), now() - interval '1 millisecond')
        WHERE j.assembling_by IS NOT NULL AND j.assembly_claimed_by IS NULL AND j.status = 'PROCESSING'
        """,
        "ALTER TABLE jobs DROP COLUMN assembling_by, DROP COLUMN assembling_since",
    ])

    /// Resumable uploads any coordinator can continue (issue 14). With sources in an object store the
    /// coordinators share no disk, so each durable stretch of a tus upload is also stored as an
    /// object (a "piece"), recorded in `tus_upload_pieces` in the same transaction that advances the
    /// offset. `tus_uploads.staged_by` names the process whose local partial file holds every
    /// acknowledged byte; another coordinator rebuilds its own copy from the pieces before it appends
    /// or finishes. Piece rows outlive their objects only until a sweep has deleted the objects.
    static let migration13 = Migration(version: 13, name: "tus pieces in the object store", statements: [
        "ALTER TABLE tus_uploads ADD COLUMN staged_by text",
        """
        CREATE TABLE tus_upload_pieces (
            upload_id  uuid NOT NULL REFERENCES tus_uploads (id) ON DELETE CASCADE,
            first_byte bigint NOT NULL CHECK (first_byte >= 0),
            end_byte   bigint NOT NULL CHECK (end_byte > first_byte),
            key        text NOT NULL,
            PRIMARY KEY (upload_id, first_byte)
        )
        """,
    ])
}
