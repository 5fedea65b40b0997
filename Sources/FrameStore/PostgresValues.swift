import Foundation

/// A Swift value that can be bound as a text-format query parameter.
///
/// Every query goes through `PQexecParams` with text parameters, so values are
/// never spliced into SQL: conforming types only say how they spell
/// themselves in PostgreSQL's text input syntax. Use explicit casts in SQL
/// (`$1::uuid`, `$2::jsonb`) so the server does not have to guess the type.
public protocol PostgresParameter: Sendable {
    /// The PostgreSQL text representation of the value.
    var postgresText: String { get }
}

extension String: PostgresParameter { public var postgresText: String { self } }
extension Substring: PostgresParameter { public var postgresText: String { String(self) } }
extension Int: PostgresParameter { public var postgresText: String { String(self) } }
extension Int16: PostgresParameter { public var postgresText: String { String(self) } }
extension Int32: PostgresParameter { public var postgresText: String { String(self) } }
extension Int64: PostgresParameter { public var postgresText: String { String(self) } }
extension UInt8: PostgresParameter { public var postgresText: String { String(self) } }
extension UInt16: PostgresParameter { public var postgresText: String { String(self) } }
extension UInt32: PostgresParameter { public var postgresText: String { String(self) } }
extension UInt64: PostgresParameter { public var postgresText: String { String(self) } }
extension Double: PostgresParameter { public var postgresText: String { String(self) } }
extension Bool: PostgresParameter { public var postgresText: String { self ? "t" : "f" } }
extension UUID: PostgresParameter { public var postgresText: String { uuidString.lowercased() } }
extension Date: PostgresParameter {
    /// ISO 8601 in UTC with microseconds, which `timestamptz` input accepts exactly.
    public var postgresText: String { PostgresTime.format(self) }
}

/// A value bound as JSON text (use with a `::jsonb` cast), for Codable columns such as segment specs.
public struct PostgresJSON: PostgresParameter {
    public let postgresText: String

    public init<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let text = String(data: try encoder.encode(value), encoding: .utf8) else {
            throw StoreError.decoding("JSON encoding produced invalid UTF-8")
        }
        postgresText = text
    }
}

/// Text conversion of `timestamptz` values.
///
/// Connections set `TimeZone` to UTC and `DateStyle` to ISO, so the server
/// always prints `YYYY-MM-DD HH:MM:SS[.ffffff]+00`; parsing that by hand avoids
/// locale-dependent formatters and keeps microsecond precision.
enum PostgresTime {
    static func format(_ date: Date) -> String {
        let micros = (date.timeIntervalSince1970 * 1_000_000).rounded()
        var seconds = Int64((micros / 1_000_000).rounded(.down))
        let fraction = Int64(micros) - seconds * 1_000_000
        let days = floorDiv(seconds, 86_400)
        seconds -= days * 86_400
        let (y, m, d) = civil(fromDays: days)
        return String(
            format: "%04lld-%02lld-%02lld %02lld:%02lld:%02lld.%06lld+00",
            y, m, d, seconds / 3600, (seconds / 60) % 60, seconds % 60, fraction)
    }

    static func parse(_ text: String) -> Date? {
        if text == "infinity" { return .distantFuture }
        if text == "-infinity" { return .distantPast }
        let u = Array(text.utf8)
        func num(_ start: Int, _ count: Int) -> Int64? {
            guard start + count <= u.count else { return nil }
            var v: Int64 = 0
            for i in start..<start + count {
                let c = u[i]
                guard c >= 48, c <= 57 else { return nil }
                v = v * 10 + Int64(c - 48)
            }
            return v
        }
        guard u.count >= 19, let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2),
              let h = num(11, 2), let mi = num(14, 2), let s = num(17, 2) else { return nil }
        var i = 19
        var micros: Int64 = 0
        if i < u.count, u[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < u.count, u[i] >= 48, u[i] <= 57 {
                if digits < 6 { micros = micros * 10 + Int64(u[i] - 48); digits += 1 }
                i += 1
            }
            while digits < 6 { micros *= 10; digits += 1 }
        }
        var offset: Int64 = 0
        if i < u.count {
            let sign: Int64 = u[i] == UInt8(ascii: "-") ? -1 : 1
            guard let oh = num(i + 1, 2) else { return nil }
            var om: Int64 = 0
            if i + 3 < u.count, u[i + 3] == UInt8(ascii: ":"), let v = num(i + 4, 2) { om = v }
            offset = sign * (oh * 3600 + om * 60)
        }
        let days = daysFromCivil(y, mo, d)
        let total = days * 86_400 + h * 3600 + mi * 60 + s - offset
        return Date(timeIntervalSince1970: Double(total) + Double(micros) / 1_000_000)
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }

    // Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian).
    private static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}

/// Column names of one result, shared by all its rows.
final class PostgresColumns: Sendable {
    let names: [String]
    let index: [String: Int]

    init(_ names: [String]) {
        self.names = names
        var index: [String: Int] = [:]
        for (i, n) in names.enumerated() where index[n] == nil { index[n] = i }
        self.index = index
    }
}

/// One row of a result: text values (nil for SQL NULL) with typed accessors.
///
/// Accessors throw ``StoreError/decoding(_:)`` naming the column when a value
/// is missing or malformed, so a schema/code mismatch surfaces as a clear
/// error instead of a silent default.
public struct PostgresRow: Sendable {
    let columns: PostgresColumns
    /// The raw text values in column order; nil is SQL NULL.
    public let values: [String?]

    init(columns: PostgresColumns, values: [String?]) {
        self.columns = columns
        self.values = values
    }

    /// The raw text of a column, nil for NULL; throws if there is no such column.
    public func optionalString(_ column: String) throws -> String? {
        guard let i = columns.index[column] else {
            throw StoreError.decoding("no column \(column) in result (\(columns.names.joined(separator: ", ")))")
        }
        return values[i]
    }

    public func string(_ column: String) throws -> String {
        guard let v = try optionalString(column) else { throw StoreError.decoding("column \(column) is NULL") }
        return v
    }

    private func convert<T>(_ column: String, _ type: String, _ f: (String) -> T?) throws -> T? {
        guard let text = try optionalString(column) else { return nil }
        guard let v = f(text) else { throw StoreError.decoding("column \(column): \(text.debugDescription) is not a valid \(type)") }
        return v
    }

    private func required<T>(_ column: String, _ v: T?) throws -> T {
        guard let v else { throw StoreError.decoding("column \(column) is NULL") }
        return v
    }

    public func optionalInt(_ column: String) throws -> Int? { try convert(column, "integer") { Int($0) } }
    public func int(_ column: String) throws -> Int { try required(column, optionalInt(column)) }
    public func optionalInt64(_ column: String) throws -> Int64? { try convert(column, "bigint") { Int64($0) } }
    public func int64(_ column: String) throws -> Int64 { try required(column, optionalInt64(column)) }
    public func optionalDouble(_ column: String) throws -> Double? { try convert(column, "double") { Double($0) } }
    public func double(_ column: String) throws -> Double { try required(column, optionalDouble(column)) }
    public func optionalBool(_ column: String) throws -> Bool? {
        try convert(column, "boolean") { $0 == "t" ? true : $0 == "f" ? false : nil }
    }
    public func bool(_ column: String) throws -> Bool { try required(column, optionalBool(column)) }
    public func optionalUUID(_ column: String) throws -> UUID? { try convert(column, "uuid") { UUID(uuidString: $0) } }
    public func uuid(_ column: String) throws -> UUID { try required(column, optionalUUID(column)) }
    public func optionalDate(_ column: String) throws -> Date? { try convert(column, "timestamptz") { PostgresTime.parse($0) } }
    public func date(_ column: String) throws -> Date { try required(column, optionalDate(column)) }

    /// Decodes a `json`/`jsonb` column.
    public func optionalJSON<T: Decodable>(_ column: String, as type: T.Type = T.self) throws -> T? {
        guard let text = try optionalString(column) else { return nil }
        do {
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        } catch {
            throw StoreError.decoding("column \(column): invalid JSON for \(T.self): \(error)")
        }
    }

    public func json<T: Decodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        try required(column, optionalJSON(column, as: type))
    }

    /// A text column holding a `RawRepresentable` enum value (statuses, states, roles).
    public func optionalEnum<E: RawRepresentable>(_ column: String, as type: E.Type = E.self) throws -> E? where E.RawValue == String {
        try convert(column, "\(E.self)") { E(rawValue: $0) }
    }

    public func `enum`<E: RawRepresentable>(_ column: String, as type: E.Type = E.self) throws -> E where E.RawValue == String {
        try required(column, optionalEnum(column, as: type))
    }
}

/// The outcome of one statement: its rows (empty for commands) and the number of rows it affected.
public struct PostgresResult: Sendable {
    public let columns: [String]
    public let rows: [PostgresRow]
    /// `PQcmdTuples`: rows inserted/updated/deleted/selected; 0 when not applicable.
    public let affectedRows: Int

    /// The first row, if any.
    public var first: PostgresRow? { rows.first }
}
