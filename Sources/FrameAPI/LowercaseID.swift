import Foundation

/// A UUID written lower-case in JSON (RFC 9562 §4 asks for lower case on output; `JSONEncoder`
/// writes Foundation's upper-case `uuidString`), so ids in bodies match ids in links and paths.
/// Every id in a response body goes through this wrapper; `LowercaseIDTests` checks the bodies.
@propertyWrapper
public struct LowercaseID: Codable, Sendable, Hashable {
    public var wrappedValue: UUID

    public init(wrappedValue: UUID) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = UUID(uuidString: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a UUID: \(text)"))
        }
        wrappedValue = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue.uuidString.lowercased())
    }
}

/// ``LowercaseID`` for an optional id (absent stays absent).
@propertyWrapper
public struct LowercaseOptionalID: Codable, Sendable, Hashable {
    public var wrappedValue: UUID?

    public init(wrappedValue: UUID?) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        wrappedValue = container.decodeNil() ? nil : try LowercaseID(from: decoder).wrappedValue
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let id = wrappedValue { try container.encode(id.uuidString.lowercased()) } else { try container.encodeNil() }
    }
}

extension KeyedDecodingContainer {
    /// An absent optional id decodes as nil (the synthesized init would otherwise require the key).
    public func decode(_ type: LowercaseOptionalID.Type, forKey key: Key) throws -> LowercaseOptionalID {
        try decodeIfPresent(type, forKey: key) ?? LowercaseOptionalID(wrappedValue: nil)
    }
}

extension KeyedEncodingContainer {
    /// An absent optional id is left out, as a plain optional would be.
    public mutating func encode(_ value: LowercaseOptionalID, forKey key: Key) throws {
        if value.wrappedValue != nil { try encodeIfPresent(value, forKey: key) }
    }
}
