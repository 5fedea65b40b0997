import FrameStore
import Foundation

/// The caller of an authenticated request, as loaded from the `users` table
/// (not from token claims, so a role change or a deleted account takes
/// effect at once rather than when the token expires).
public struct AuthenticatedUser: Sendable, Hashable {
    public var id: UUID
    public var email: String
    public var role: UserRole

    public init(id: UUID, email: String, role: UserRole) {
        self.id = id
        self.email = email
        self.role = role
    }

    public var isAdmin: Bool { role == .admin }
}
