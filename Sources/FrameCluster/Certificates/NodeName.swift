/// The rules for a node's name, which is also its certificate's common name.
///
/// Names end up in file names, log fields and URLs, so they are restricted to
/// a conservative ASCII alphabet.
public enum NodeName {
    public static func isValid(_ name: String) -> Bool {
        guard (1...64).contains(name.utf8.count), let first = name.unicodeScalars.first else { return false }
        guard first.properties.isAlphabetic || ("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { c in
            c.isASCII && (("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
                || c == "." || c == "_" || c == "-")
        }
    }
}
